"""Prediction intervals and probabilistic scores.

Split-conformal intervals work for any forecaster, ensembles included: per horizon, the absolute
validation residuals, each divided by its series' and feature's naive scale (so features on different
scales share one calibration), give the finite-sample quantile q = the ceil((n + 1) * level)-th smallest;
the interval is forecast +- q * scale. Scores: empirical coverage, mean width, the Winkler (interval)
score, pinball loss at the interval's quantiles and the median, and CRPS approximated from that
quantile grid.
"""

from __future__ import annotations

import math

import numpy as np

from biocount.errors import BiocountInputError


def pct(level: float) -> str:
    """How a level appears in column names: 0.8 -> '80', 0.999 -> '99.9'."""
    return f"{level * 100:g}"


def check_levels(levels: list[float]) -> list[float]:
    bad = [lv for lv in levels if not 0 < lv < 1]
    if bad:
        raise BiocountInputError(f"--levels {bad[0]}: interval levels must lie strictly between 0 and 1, e.g. 0.8,0.95")
    return sorted(set(levels))


def min_calibration(level: float) -> int:
    """Residuals needed so the conformal quantile is finite: ceil((n + 1) level) <= n."""
    return math.ceil(level / (1 - level) - 1e-9)  # 0.8 / 0.2 is 4.000000000000001 in floating point


def conformal(val_pred: np.ndarray, y_val: np.ndarray, val_scale: np.ndarray, test_pred: np.ndarray,
              test_scale: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower and upper bounds (N, H, F) and the calibrated half-width per horizon (H,)."""
    H = y_val.shape[1]
    q = np.zeros(H)
    for h in range(H):
        r = _residuals(val_pred[:, h], y_val[:, h], val_scale[:, h])
        need = min_calibration(level)
        if r.size < need:
            raise BiocountInputError(
                f"conformal {level:.0%} intervals at horizon {h + 1} need at least {need} validation residuals, "
                f"got {r.size}; raise --val-size or lower --levels")
        q[h] = r[math.ceil((r.size + 1) * level - 1e-9) - 1]
    half = q[None, :, None] * test_scale
    return test_pred - half, test_pred + half, q


def _residuals(pred: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    r = np.abs(pred - y) / scale
    return np.sort(r[np.isfinite(r)])


def conformal_quantiles(val_pred: np.ndarray, y_val: np.ndarray, val_scale: np.ndarray,
                        levels) -> tuple[np.ndarray, list[int]]:
    """The conformal predictive distribution as half-widths per horizon and quantile level: (H, K) in units
    of the naive scale, so the quantile tau of a forecast m is m + sign(tau - 1/2) w[h, k] * scale.

    Level tau < 1/2 is the lower end of the central 1 - 2 tau interval, tau > 1/2 the upper end of the
    central 2 tau - 1 one, 1/2 the forecast itself. Where a horizon has fewer validation residuals than
    a level needs for a finite-sample guarantee, the quantile is the largest residual (capped); the
    horizons where that happened are returned, so the caller can say so.
    """
    H, levels = y_val.shape[1], np.asarray(levels, dtype=float)
    central = np.abs(2 * levels - 1)  # the central interval each level bounds
    w = np.zeros((H, levels.size))
    capped = []
    for h in range(H):
        r = _residuals(val_pred[:, h], y_val[:, h], val_scale[:, h])
        if r.size == 0:
            w[h] = np.nan
            continue
        k = np.ceil((r.size + 1) * central - 1e-9).astype(int)
        if np.any(k > r.size):
            capped.append(h + 1)
        w[h] = np.where(central > 0, r[np.clip(k, 1, r.size) - 1], 0.0) * np.sign(levels - 0.5)
    return w, capped


def interval_scores(y: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> dict[str, float]:
    ok = ~np.isnan(y) & np.isfinite(lower) & np.isfinite(upper)
    yo, lo, up = y[ok], lower[ok], upper[ok]
    if yo.size == 0:
        return {"coverage": np.nan, "width": np.nan, "winkler": np.nan}
    alpha = 1 - level
    winkler = (up - lo) + (2 / alpha) * (lo - yo) * (yo < lo) + (2 / alpha) * (yo - up) * (yo > up)
    return {"coverage": float(np.mean((yo >= lo) & (yo <= up))), "width": float(np.mean(up - lo)),
            "winkler": float(np.mean(winkler))}


def pinball(y: np.ndarray, q_pred: np.ndarray, tau: float) -> np.ndarray:
    d = y - q_pred
    return np.maximum(tau * d, (tau - 1) * d)


def quantile_scores(y: np.ndarray, quantiles: dict[float, np.ndarray]) -> dict[str, float]:
    """Mean pinball loss over the quantile grid, and CRPS ~ 2 x that mean (a coarse grid approximation)."""
    losses = []
    for tau, q in sorted(quantiles.items()):
        ok = ~np.isnan(y) & np.isfinite(q)
        losses.append(np.mean(pinball(y[ok], q[ok], tau)) if ok.any() else np.nan)
    finite = [x for x in losses if np.isfinite(x)]
    mean = float(np.mean(finite)) if finite else np.nan
    return {"pinball": mean, "crps": 2 * mean}
