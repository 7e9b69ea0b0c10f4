"""Probabilistic scores as forecasting hubs compute them (FluSight, the COVID-19 Forecast Hub, NEON).

Every function works point by point on arrays of any shape and returns NaN where ``y`` is NaN, so
callers average over the points they score. The scores come from ``scoringrules`` where it has them:

- CRPS: closed form for normal, Poisson and negative binomial forecasts; from a quantile grid
  (``2 / |Q|`` times the summed pinball loss) otherwise.
- Log score (negative log density or mass) where a density exists: normal, Poisson and negative binomial,
  from scipy's log densities (scoringrules 0.10 underflows in the normal's tail and returns inf for a
  negative binomial whose size is not whole).
- Weighted interval score (Bracher et al. 2021) on the central intervals of a symmetric quantile set
  and its median, with its three parts: dispersion (the intervals' widths), overprediction and
  underprediction (the penalties for an observation below / above them). The parts sum to the WIS.
- Coverage of central intervals; PIT values, randomised for counts (Czado, Gneiting & Held 2009):
  ``F(y - 1) + v (F(y) - F(y - 1))`` with ``v ~ U(0, 1)``, uniform when the forecasts are calibrated.

:data:`QUANTILES` is the FluSight / hubverse quantile set; :data:`COVERAGE` the central levels hubs report.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

QUANTILES = (0.01, 0.025, *(round(0.05 * k, 2) for k in range(1, 20)), 0.975, 0.99)  # the 23 FluSight levels
COVERAGE = (0.5, 0.8, 0.9, 0.95)


def _sr():
    """scoringrules, imported without its numba backend: with numba importable it compiles ~80 gufuncs at
    import (5 s of a 70 s demo run on 2 slow cores, `python -m bench profile`), and biocount only calls its
    numpy backend. numba is hidden for the import only (``sys.modules["numba"] = None`` makes ``import
    numba`` fail) and put back after. The cost of it: in a process that imported scoringrules before biocount
    it keeps its numba backend; one that imports it after biocount's first score gets the numpy backend only
    (``backend="numba"`` then fails) — restart, or import scoringrules first."""
    import sys

    if "scoringrules" not in sys.modules:
        saved = sys.modules.get("numba")
        sys.modules["numba"] = None  # type: ignore[assignment]
        try:
            import scoringrules  # noqa: F401
        finally:
            if saved is None:
                del sys.modules["numba"]
            else:
                sys.modules["numba"] = saved
    return sys.modules["scoringrules"]


def _nan_where_missing(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(y), np.nan, out)


def _filled(y: np.ndarray) -> np.ndarray:
    """y with NaN replaced (the scores of those points are discarded): the libraries reject NaN in some paths."""
    return np.where(np.isnan(y), 0.0, y)


def crps_normal(y: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of N(loc, scale²)."""
    return _nan_where_missing(y, np.asarray(_sr().crps_normal(_filled(y), loc, scale, backend="numpy")))


def logs_normal(y: np.ndarray, loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Negative log density of N(loc, scale²) at y, computed in log space (scoringrules 0.10 takes the log of
    the density, which underflows to 0 and gives inf for an observation far in the tail)."""
    from scipy.stats import norm

    return _nan_where_missing(y, -norm.logpdf(_filled(y), loc, scale))


def crps_poisson(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of Poisson(mu)."""
    return _nan_where_missing(y, np.asarray(_sr().crps_poisson(_filled(y), mu, backend="numpy")))


def logs_poisson(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Negative log probability of y under Poisson(mu) (scipy's, as for the negative binomial)."""
    from scipy.stats import poisson

    return _nan_where_missing(y, -poisson.logpmf(_filled(y), mu))


def crps_negbinom(y: np.ndarray, n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Closed-form CRPS of the negative binomial with size ``n`` and mean ``mu`` (variance mu + mu²/n)."""
    return _nan_where_missing(y, np.asarray(_sr().crps_negbinom(_filled(y), n, mu=mu, backend="numpy")))


def logs_negbinom(y: np.ndarray, n: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Negative log probability of y under the negative binomial with size ``n`` and mean ``mu``. scipy's, not
    scoringrules' (0.10 returns inf for a size that is not a whole number, the usual case for a fitted one)."""
    from scipy.stats import nbinom

    n, mu = np.asarray(n, dtype=float), np.asarray(mu, dtype=float)
    return _nan_where_missing(y, -nbinom.logpmf(_filled(y), n, n / (n + mu)))


def crps_quantiles(y: np.ndarray, q: np.ndarray, levels=QUANTILES) -> np.ndarray:
    """CRPS from quantile forecasts ``q`` (..., K) at ``levels`` (K,): 2/K times the summed pinball loss."""
    out = np.asarray(_sr().crps_quantile(_filled(y), q, np.asarray(levels), backend="numpy"))
    return _nan_where_missing(y, out)


def _central(levels) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Indices of the lower and upper quantile of each central interval, their alphas, and the median's index."""
    levels = np.round(np.asarray(levels, dtype=float), 6)
    if 0.5 not in levels:
        raise ValueError("a weighted interval score needs the median (0.5) among the quantile levels")
    lower = [i for i, t in enumerate(levels) if t < 0.5 and np.round(1 - t, 6) in levels]
    upper = [int(np.flatnonzero(levels == np.round(1 - levels[i], 6))[0]) for i in lower]
    return np.array(lower, dtype=int), np.array(upper, dtype=int), 2 * levels[lower], int(np.flatnonzero(levels == 0.5)[0])


def wis(y: np.ndarray, q: np.ndarray, levels=QUANTILES) -> dict[str, np.ndarray]:
    """Weighted interval score and its parts, from quantiles ``q`` (..., K) at symmetric ``levels``.

    WIS = (|y - m| / 2 + sum_k alpha_k / 2 * IS_{alpha_k}) / (K + 1/2) over the K central
    (1 - alpha_k) intervals [l_k, u_k] and the median m; the interval score is
    IS = (u - l) + 2/alpha (l - y)+ + 2/alpha (y - u)+.
    """
    lo_i, up_i, alpha, mid = _central(levels)
    lo, up, m = q[..., lo_i], q[..., up_i], q[..., mid]
    yy = _filled(y)[..., None]
    k = alpha.size + 0.5
    parts = {
        "dispersion": np.sum(alpha / 2 * (up - lo), axis=-1) / k,
        "overprediction": (np.sum(np.maximum(lo - yy, 0), axis=-1) + 0.5 * np.maximum(m - yy[..., 0], 0)) / k,
        "underprediction": (np.sum(np.maximum(yy - up, 0), axis=-1) + 0.5 * np.maximum(yy[..., 0] - m, 0)) / k,
    }
    # the total is the sum of its parts, by definition; not scoringrules' weighted_interval_score, whose numpy
    # backend (0.10.0) adds w_median * median instead of w_median * |y - median| (its numba one is right; tested)
    total = parts["dispersion"] + parts["overprediction"] + parts["underprediction"]
    return {"wis": _nan_where_missing(y, total)} | {k_: _nan_where_missing(y, v) for k_, v in parts.items()}


def covered(y: np.ndarray, q: np.ndarray, level: float, levels=QUANTILES) -> np.ndarray:
    """Whether y lies in the central ``level`` interval of the quantile forecast (NaN where y is)."""
    levels = np.round(np.asarray(levels, dtype=float), 6)
    lo = q[..., int(np.flatnonzero(levels == round((1 - level) / 2, 6))[0])]
    up = q[..., int(np.flatnonzero(levels == round((1 + level) / 2, 6))[0])]
    return _nan_where_missing(y, ((y >= lo) & (y <= up)).astype(float))


def pit_quantiles(y: np.ndarray, q: np.ndarray, rng: np.random.Generator, levels=QUANTILES) -> np.ndarray:
    """PIT of y under the distribution whose quantiles are ``q`` (..., K): the CDF is linear between
    quantiles; below the lowest (above the highest) quantile the grid says nothing more, so the PIT is a
    uniform draw in [0, tau_1) ((tau_K, 1]). Where quantiles tie at y (a point mass, e.g. zeros) the PIT is
    a uniform draw across the tie's levels, as the randomised PIT of a count forecast is."""
    levels = np.asarray(levels, dtype=float)
    K = levels.size
    qs = np.sort(q, axis=-1)  # crossing quantiles (rare, from separate fits) would make the CDF non-monotone
    yy = _filled(y)[..., None]
    left, right = np.sum(qs < yy, axis=-1), np.sum(qs <= yy, axis=-1)  # quantiles below y; at or below y

    def cdf(p: np.ndarray) -> np.ndarray:  # the linear CDF between quantiles p - 1 and p (0 < p < K)
        p = np.clip(p, 1, K - 1)[..., None]
        a, b = np.take_along_axis(qs, p - 1, -1)[..., 0], np.take_along_axis(qs, p, -1)[..., 0]
        frac = np.clip((yy[..., 0] - a) / np.where(b > a, b - a, 1.0), 0.0, 1.0)
        return levels[p[..., 0] - 1] + (levels[p[..., 0]] - levels[p[..., 0] - 1]) * frac

    lo = np.where(left == 0, 0.0, np.where(left == K, levels[-1], cdf(left)))
    hi = np.where(right == K, 1.0, np.where(right == 0, levels[0], cdf(right)))
    return _nan_where_missing(y, lo + rng.random(lo.shape) * (hi - lo))


def pit_counts(y: np.ndarray, cdf: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT for count forecasts: F(y - 1) + v (F(y) - F(y - 1)), v ~ U(0, 1) (Czado et al. 2009).
    ``cdf`` maps integer values (same shape as y) to the forecast's CDF there."""
    yy = _filled(y)
    upper, lower = cdf(yy), np.where(yy >= 1, cdf(yy - 1), 0.0)
    return _nan_where_missing(y, lower + rng.random(yy.shape) * (upper - lower))


def pit_histogram(pit: np.ndarray, bins: int = 10) -> np.ndarray:
    """Counts of PIT values in ``bins`` equal bins of [0, 1] (NaN left out)."""
    v = pit[np.isfinite(pit)]
    return np.histogram(v, bins=bins, range=(0.0, 1.0))[0]
