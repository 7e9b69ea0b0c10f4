"""The ARIMA baseline.

One ``statsmodels.tsa.arima.model.ARIMA`` per series and target feature, on the target's encoded
values over the grid (NaN = missing, handled by the Kalman filter). The order is fixed by option or
chosen as R's auto.arima does: d is the smallest order after which a KPSS test (5 %) no longer
rejects stationarity (d <= max_d; a series too short to test is differenced once), then p <= max_p
and q <= max_q by AICc, with a constant when d = 0 and with and without drift when d = 1. AICc is
not compared across d: differencing changes the data the likelihood is computed on. An order needs 3
observations per parameter. When the run declares a cycle (``--period``) and the grid is regular with the
period a whole number s >= 2 of its steps, every order is also tried with a seasonal AR(1) and a seasonal
MA(1) term at lag s (auto.arima's seasonal candidates, P <= max_P, Q <= max_Q, no seasonal differencing),
where the data hold two whole cycles and 3 observations per parameter; the report says why a declared period
gives no seasonal terms.

Estimation: maximum likelihood with the innovation variance concentrated out (one parameter fewer for
the optimiser; it reaches statsmodels' plain optimum, sometimes a higher one) and, on a re-selection,
each candidate warm-started from the previous selection's estimates (shared parameters keep their
values, a new lag starts at zero). Together 1.6x fewer core-seconds over the accuracy suite
(docs/performance.md, 4d). The variance is appended to the estimates, so forecasts run the plain
model with all parameters fixed at values estimated on data up to the selection.

Large studies (from APPROXIMATE_FROM series x target features on, or the option ``approximation``): auto.arima's
approximation. Every candidate of the full search is estimated by conditional sums of squares on all
selections at once (:mod:`.css`), the lowest conditional AICc among stationary and invertible estimates wins,
and the forecasts are Box and Jenkins' recursions at those estimates (:func:`approximate`): 26x fewer
core-seconds per series at 100 points, but on the accuracy suite the conditional AICc often chooses other
orders and the test MSE moves by -9 % to +34 % (docs/performance.md 4g): hence only for large studies.
Gaps and seasonal terms keep the exact path.

Selection schedule, as a statistician would run a rolling-origin study: the order is selected and
the parameters estimated on the training part, and selected and estimated again on all data up to
the point where a series' observed history has grown by ``reselect_growth`` (20 %) since the last
selection: by auto.arima's stepwise step around the current order (p or q one up or down, drift
toggled) while KPSS keeps d, by the full search when d changes. The selection points depend on the
data alone, never on which origins are asked for. Between them, the parameters stay fixed: one Kalman
filter pass over the data up to the last origin gives every origin's dynamic forecasts from that origin
(:func:`dynamic_forecasts`, equal to statsmodels' ``get_prediction(dynamic=True)``, which re-filters the
whole series per origin). Everything about an origin, including the decision to fall back to
persistence (no order fits, or forecasts beyond the range seen so far by 3 ranges), uses data up to
that origin only. Fallbacks are counted and reported; statsmodels' warnings are collected per series,
never printed.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from biocount import Forecast, ForecastTask, map_series

from .options import ArimaOptions

QUANTILES = (0.025, 0.1, 0.9, 0.975)
MIN_KPSS = 25  # below this a KPSS unit-root test has too little power to trust; assume a unit root
MIN_OBS_PER_PARAM = 3  # an order needs this many observations per estimated parameter
# seasonal terms need this many whole cycles of data (one cycle gives a seasonal lag a handful of pairs: on the
# 48-hour liver mRNA table (period 24) they were chosen and the h = 1 MSE rose 0.476 -> 0.590; docs/performance.md 4f)
MIN_CYCLES = 2
# from this many series x target features on, orders are chosen by conditional sums of squares: the exact search
# costs about 0.2 core-seconds per series and feature at 100 points (docs/performance.md 4g)
APPROXIMATE_FROM = 1_000
CHUNK = 4096  # selections estimated together by conditional sums of squares (arrays of CHUNK x length x orders)
DIVERGENCE = 3.0  # forecasts beyond the range seen so far by this many ranges fall back to persistence


NO_SEASON = (0, 0, 0, 0)  # statsmodels' seasonal_order (P, D, Q, s) of a model without seasonal terms
Candidate = tuple[tuple[int, int, int], str, tuple[int, int, int, int]]  # order, trend, seasonal order


@dataclass
class SeriesFit:
    """One selection for one series and feature, on data up to grid index ``at``."""

    at: int
    order: tuple[int, int, int] | None
    trend: str = "n"
    params: np.ndarray | None = None
    fallback: str | None = None  # why persistence is used instead
    warnings: list[str] = field(default_factory=list)
    names: tuple[str, ...] = ()  # statsmodels' names of ``params``
    seasonal: tuple[int, int, int, int] = NO_SEASON  # statsmodels' seasonal_order
    method: str = "mle"  # "css": chosen and estimated by conditional sums of squares (:func:`approximate`)

    @property
    def persistence(self) -> bool:
        """Forecasts equal persistence: a fallback, or a random walk without drift."""
        return self.params is None or (self.order == (0, 1, 0) and self.trend == "n" and self.seasonal == NO_SEASON)


def _model(y: np.ndarray, order: tuple[int, int, int], trend: str, concentrate_scale: bool = False,
           seasonal: tuple[int, int, int, int] = NO_SEASON):
    from statsmodels.tsa.arima.model import ARIMA

    return ARIMA(y, order=order, trend=trend, seasonal_order=seasonal, concentrate_scale=concentrate_scale)


def season_of(times: np.ndarray, period: float | None) -> tuple[int, str | None]:
    """The seasonal lag in grid steps for a cycle of ``period`` time units (0: none), and why none where a
    period was given: seasonal terms need a regular grid with the period a whole number (>= 2) of its steps."""
    if period is None:
        return 0, None
    steps = np.diff(np.asarray(times, dtype=float))
    if steps.size == 0:
        return 0, f"the period {period:g} gives ARIMA no seasonal terms: the grid has a single time point"
    if not np.allclose(steps, steps[0], rtol=1e-6, atol=0):
        return 0, (f"the period {period:g} gives ARIMA no seasonal terms: the time grid is not regular (steps "
                   f"{steps.min():g} to {steps.max():g})")
    s = period / steps[0]
    if abs(s - round(s)) > 1e-6 * max(s, 1.0) or round(s) < 2:
        return 0, (f"the period {period:g} gives ARIMA no seasonal terms: it is not a whole number (>= 2) of the "
                   f"grid's step {steps[0]:g}")
    return int(round(s)), None


def _kpss_d(y: np.ndarray, max_d: int, alpha: float = 0.05) -> int:
    """The smallest d whose d-times differenced series KPSS does not call non-stationary."""
    from statsmodels.tsa.stattools import kpss

    for d in range(max_d):
        z = np.diff(y, n=d)
        if z.size < MIN_KPSS:  # too short to test for a unit root: assume one
            return min(d + 1, max_d)
        if np.ptp(z) == 0 or kpss(z, regression="c", nlags="auto")[1] > alpha:
            return d
    return max_d


def _seasonals(options: ArimaOptions, season: int) -> list[tuple[int, int, int, int]]:
    """The seasonal parts tried with every order: none, and P <= max_P, Q <= max_Q at lag ``season``."""
    if season < 2:
        return [NO_SEASON]
    return [(P, 0, Q, season) if P or Q else NO_SEASON
            for P, Q in itertools.product(range(options.max_P + 1), range(options.max_Q + 1))]


def _candidates(y: np.ndarray, options: ArimaOptions, season: int = 0) -> list[Candidate]:
    if options.order is not None:
        order = tuple(options.order)
        return [(order, "c" if order[1] == 0 else "n", NO_SEASON)]
    d = _kpss_d(y[~np.isnan(y)], options.max_d)
    trends = {0: ["c"], 1: ["n", "t"]}.get(d, ["n"])  # constant; drift (auto.arima's include.drift)
    return [((p, d, q), t, sp) for sp in _seasonals(options, season)
            for p, q in itertools.product(range(options.max_p + 1), range(options.max_q + 1)) for t in trends]


def _neighbours(fit: SeriesFit, options: ArimaOptions, season: int = 0) -> list[Candidate]:
    """auto.arima's stepwise step: the current order, p or q one up or down, drift toggled (d = 1), and with
    a cycle the seasonal AR or MA term toggled."""
    p, d, q = fit.order
    sp = fit.seasonal
    out = [((p, d, q), fit.trend, sp)]
    out += [((p + dp, d, q + dq), fit.trend, sp) for dp, dq in ((1, 0), (-1, 0), (0, 1), (0, -1))
            if 0 <= p + dp <= options.max_p and 0 <= q + dq <= options.max_q]
    if d == 1:
        out.append(((p, d, q), "t" if fit.trend == "n" else "n", sp))
    P, Q = sp[0], sp[2]
    for toggled in ((1 - P, Q), (P, 1 - Q)) if season >= 2 else ():
        if toggled[0] <= options.max_P and toggled[1] <= options.max_Q:
            out.append(((p, d, q), fit.trend, (toggled[0], 0, toggled[1], season) if any(toggled) else NO_SEASON))
    return out


def _lags(order: tuple[int, int, int], seasonal: tuple[int, int, int, int]) -> tuple[list[int], list[int]]:
    """The AR and MA lags of a (seasonal) ARMA: 1..p, and with a seasonal term also s..s+p (the
    multiplicative model's lags, each with a free coefficient in the least squares)."""
    p, _, q = order
    P, _, Q, s = seasonal
    ar = list(range(1, p + 1)) + ([s + i for i in range(p + 1)] if P else [])
    ma = list(range(1, q + 1)) + ([s + j for j in range(q + 1)] if Q else [])
    return ar, ma


def _hannan_rissanen_aicc(z: np.ndarray, candidate: Candidate, start: int, m: int, resid: np.ndarray) -> float:
    """AICc of a (seasonal) ARMA on the differenced series ``z`` by Hannan–Rissanen: least squares of z_t on
    its AR lags and the MA lags of the long AR's residuals ``resid`` (plus a constant), over the common sample
    t >= start."""
    order, trend, seasonal = candidate
    ar, ma = _lags(order, seasonal)
    n = z.size - start
    cols = [z[start - i: z.size - i] for i in ar] + [resid[start - m - j: resid.size - j] for j in ma]
    if trend != "n":
        cols.append(np.ones(n))
    target = z[start:]
    if cols:
        X = np.column_stack(cols)
        beta, *_ = np.linalg.lstsq(X, target, rcond=None)
        rss = float(np.sum((target - X @ beta) ** 2))
    else:
        rss = float(np.sum(target**2))
    k = order[0] + order[2] + seasonal[0] + seasonal[2] + (trend != "n") + 1
    if n - k - 1 <= 0 or rss <= 0:
        return np.inf
    return n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def preselect(y: np.ndarray, candidates: list[Candidate], keep: int) -> list[Candidate]:
    """The ``keep`` candidates with the lowest Hannan–Rissanen AICc (a few least-squares fits on a common
    sample, no likelihood optimisation); all of them when the series has gaps or is too short to rank."""
    if len(candidates) <= keep or np.isnan(y).any():
        return candidates
    d = candidates[0][0][1]
    z = np.diff(y, n=d)
    lags = [_lags(order, seasonal) for order, _, seasonal in candidates]
    max_ar, max_ma = max(max(ar, default=0) for ar, _ in lags), max(max(ma, default=0) for _, ma in lags)
    m = max(max_ar + max_ma, min(int(math.ceil(10 * math.log10(max(z.size, 10)))), z.size // 4))
    start = m + max(max_ar, max_ma)
    if z.size - start < MIN_OBS_PER_PARAM * (max_ar + max_ma + 2) or np.ptp(z) == 0:
        return candidates
    # the long AR(m), fitted once: its residuals stand in for the innovations of every candidate
    lagged = np.column_stack([z[m - i: z.size - i] for i in range(1, m + 1)] + [np.ones(z.size - m)])
    beta, *_ = np.linalg.lstsq(lagged, z[m:], rcond=None)
    resid = z[m:] - lagged @ beta
    scores = [_hannan_rissanen_aicc(z, c, start, m, resid) for c in candidates]
    order = np.argsort(scores, kind="stable")
    return [candidates[i] for i in sorted(order[:keep])]


def _start(model, previous: SeriesFit | None) -> np.ndarray | None:
    """Starting values for a candidate from the previous selection's estimates (a re-selection): the
    parameters the two share keep their values, a new lag starts at zero. None (statsmodels' own
    starting values) where there is no previous fit or the carried-over lags are not stationary and
    invertible (statsmodels would replace them by zeros with a warning)."""
    from statsmodels.tsa.statespace.tools import is_invertible

    if previous is None or previous.params is None:
        return None
    named = dict(zip(previous.names, previous.params, strict=True))
    start = np.array([named.get(n, 0.0) for n in model.param_names])
    for prefix, sign in (("ar.L", -1.0), ("ma.L", 1.0), ("ar.S.L", -1.0), ("ma.S.L", 1.0)):  # each polynomial
        coefs = [start[i] for i, n in enumerate(model.param_names) if n.startswith(prefix)]
        if coefs and not is_invertible(np.r_[1.0, sign * np.asarray(coefs)]):
            return None
    return start


def _estimate(part: np.ndarray, order: tuple[int, int, int], trend: str, previous: SeriesFit | None,
              seasonal: tuple[int, int, int, int] = NO_SEASON) -> tuple[float, np.ndarray, tuple[str, ...]]:
    """Maximum likelihood estimates of one candidate and its AICc (statsmodels' own, from one filter pass at
    the estimates). The variance is concentrated out of the likelihood while optimising (one parameter fewer
    to search over: about a third fewer likelihood evaluations) and appended to the estimates, so the forecasts
    run the plain model with a fixed variance, estimated on data up to the selection only."""
    model = _model(part, order, trend, concentrate_scale=True, seasonal=seasonal)
    params = model.fit(start_params=_start(model, previous), return_params=True) if model.k_params else np.zeros(0)
    res = model.filter(params, cov_type="none")
    return (res.aicc if np.isfinite(res.aicc) else np.inf), np.r_[params, res.scale], (*model.param_names, "sigma2")


def select(y: np.ndarray, at: int, options: ArimaOptions, previous: SeriesFit | None = None,
           season: int = 0) -> SeriesFit:
    """Select the order by AICc and estimate it on ``y[: at + 1]``: the full search, or a stepwise
    search around ``previous`` (a re-selection as the series grows); ``season``: the seasonal lag in grid
    steps (0: none)."""
    part = y[: at + 1]
    observed = int(np.sum(~np.isnan(part)))
    if observed < 4:
        return SeriesFit(at, None, fallback=f"only {observed} observations")
    best, caught = None, []
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        candidates = _candidates(part, options, season)  # settles d by KPSS on the data so far
        stepwise = previous is not None and previous.order is not None and options.order is None \
            and previous.order[1] == candidates[0][0][1]  # same d: auto.arima's stepwise step suffices
        if stepwise:
            candidates = _neighbours(previous, options, season)
        if options.preselect is not None:  # full likelihood fits for the finalists only
            candidates = preselect(part, candidates, options.preselect)
        for order, trend, seasonal in candidates:
            n_params = _n_params((order, trend, seasonal))
            need = MIN_OBS_PER_PARAM * n_params if seasonal == NO_SEASON else \
                max(MIN_OBS_PER_PARAM * n_params, MIN_CYCLES * seasonal[3])
            if observed - order[1] < need:  # too many parameters, or too few cycles, for the data
                continue
            try:  # a re-selection warm-starts every neighbour from the previous estimates
                score, params, names = _estimate(part, order, trend, previous if stepwise else None, seasonal)
            except Exception as exc:  # statsmodels raises LinAlgError, ValueError ...
                label = f"{order}" if seasonal == NO_SEASON else f"{order}x{seasonal}"
                caught.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            if best is None or score < best[0]:
                best = (score, order, trend, params, names, seasonal)
    caught += sorted({f"{w.category.__name__}: {w.message}" for w in record})
    if best is None:
        return SeriesFit(at, None, fallback="no order could be fitted", warnings=caught)
    return SeriesFit(at, best[1], best[2], best[3], None, caught, best[4], best[5])


def _n_params(candidate: Candidate) -> int:
    """Estimated parameters of a candidate: ARMA and seasonal lags, the constant or drift, the variance."""
    order, trend, seasonal = candidate
    return order[0] + order[2] + seasonal[0] + seasonal[2] + (trend != "n") + 1


def _css_names(order: tuple[int, int, int], trend: str) -> tuple[str, ...]:
    """statsmodels' parameter names of a non-seasonal ARIMA (its ``const`` at d = 0, ``x1``, the drift, at d = 1)."""
    head = () if trend == "n" else ("const" if order[1] == 0 else "x1",)
    return (*head, *(f"ar.L{i}" for i in range(1, order[0] + 1)), *(f"ma.L{j}" for j in range(1, order[2] + 1)),
            "sigma2")


def approximate(problems: list[tuple[np.ndarray, int]], options: ArimaOptions) -> list[SeriesFit | None]:
    """Selections by conditional sums of squares, batched over every problem (``y``, ``at``): d by KPSS as in
    the exact search, then every candidate order of the full search estimated by conditional least squares on
    all problems with the same d and length at once (:mod:`.css`), and the lowest conditional AICc among the
    stationary and invertible estimates chosen (auto.arima's ``approximation``). The estimates are returned in
    statsmodels' form (mean or drift, lags, the variance), so a segment with gaps after its selection can run
    statsmodels' Kalman filter with them (the others: :func:`_css_forecasts`). None where the exact search must
    run instead: gaps in the data up to ``at`` (the Kalman filter handles them, conditional sums of squares do
    not), fewer than 4 observations, a constant, or no candidate that could be estimated."""
    from . import css

    out: list[SeriesFit | None] = [None] * len(problems)
    # (d, length) -> the candidates (the same for every member: admissibility depends on the length only), members
    groups: dict[tuple[int, int], tuple[list[Candidate], list[tuple[int, np.ndarray, list[str]]]]] = {}
    for i, (y, at) in enumerate(problems):
        part = y[: at + 1]
        seen = np.flatnonzero(~np.isnan(part))
        if seen.size < 4 or seen[-1] - seen[0] + 1 != seen.size:
            continue
        observed = part[seen[0]: seen[-1] + 1]
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            cands = _candidates(observed, options)  # settles d by KPSS on the data so far
        z = np.diff(observed, n=cands[0][0][1])
        if np.ptp(z) == 0:  # nothing to fit: every order explains a constant exactly; the exact search decides
            continue
        cands = [c for c in cands if z.size >= MIN_OBS_PER_PARAM * _n_params(c)]
        groups.setdefault((cands[0][0][1], z.size), (cands, []))[1].append(
            (i, z, sorted({f"{w.category.__name__}: {w.message}" for w in record})))
    for (_, n), (cands, members) in groups.items():
        if not cands:
            continue
        start = max(c[0][0] for c in cands)  # every order's errors over the same times: comparable AICc
        for lo in range(0, len(members), CHUNK):
            part = members[lo: lo + CHUNK]
            Z = np.stack([z for _, z, _ in part])
            best = np.full(len(part), np.inf)
            chosen: list[tuple[Candidate, np.ndarray, float] | None] = [None] * len(part)
            for cand in cands:
                (p, _, q), trend, _ = cand
                const = trend != "n"
                beta, rss = css.fit(Z, p, q, const, start)
                score = css.aicc(rss, n - start, _n_params(cand))
                ar, ma = beta[:, const: const + p], beta[:, const + p:]
                score[~(css.admissible(ar, -1.0) & css.admissible(ma, 1.0))] = np.inf
                for r in np.flatnonzero(score < best):
                    best[r] = score[r]
                    chosen[r] = (cand, beta[r], float(rss[r]) / (n - start))
            for (i, _, caught), pick in zip(part, chosen, strict=True):
                if pick is None:
                    continue
                (order, trend, _), beta, sigma2 = pick
                const = trend != "n"
                phi = beta[const: const + order[0]]
                head = [beta[0] / (1.0 - phi.sum())] if const else []  # statsmodels' mean (drift), not the intercept
                out[i] = SeriesFit(problems[i][1], order, trend, np.r_[head, beta[const:], sigma2], None, caught,
                                   _css_names(order, trend), NO_SEASON, "css")
    return out


def _css_forecasts(y: np.ndarray, fit: SeriesFit, origins: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (n, H) of a conditional-sums-of-squares fit's forecasts (:func:`.css.forecast`), ``y`` from
    the series' first observation, without gaps up to the last origin (elsewhere the Kalman filter runs at the same
    estimates: it handles gaps)."""
    from . import css

    named = dict(zip(fit.names, fit.params, strict=True))
    phi = np.array([named[f"ar.L{i}"] for i in range(1, fit.order[0] + 1)])
    theta = np.array([named[f"ma.L{j}"] for j in range(1, fit.order[2] + 1)])
    mu = named.get("const", named.get("x1", 0.0))  # statsmodels' mean (drift); the recursion's intercept:
    return css.forecast(y, fit.order[1], mu * (1.0 - phi.sum()), phi, theta, named["sigma2"], origins, horizon)


def selection_points(y: np.ndarray, train_end: int, last: int, growth: float | None) -> list[int]:
    """Grid indices where the order is (re-)selected: the end of training, then every time the observed
    history has grown by ``growth`` since the last selection (up to ``last``). Depends on data only."""
    points = [train_end]
    if growth is None:
        return points
    seen = np.flatnonzero(~np.isnan(y))
    n = max(int(np.sum(seen <= train_end)), 1)
    while True:
        n = max(n + 1, math.ceil(n * (1 + growth) - 1e-9))
        if n > seen.size or seen[n - 1] > last:
            return points
        points.append(int(seen[n - 1]))


def _at(matrix: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A state-space system matrix at times ``t`` (last axis: one column per time), time-invariant or not."""
    return np.repeat(matrix[..., :1], t.size, axis=-1) if matrix.shape[-1] == 1 else matrix[..., t]


def dynamic_forecasts(res, origins: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (n, H) of the dynamic forecasts from every origin in one pass: what
    ``res.get_prediction(start=o + 1, end=o + horizon, dynamic=True)`` gives for each origin ``o``, without
    statsmodels' re-filtering of the whole series per origin. From the one-step predicted state at ``o + 1``
    (data up to ``o`` only) the state and its covariance are carried forward with no observation, as the
    Kalman filter does through missing data. ``res`` (a filter pass) must reach ``origins.max() + horizon``:
    filter data followed by NaN."""
    fr = res.filter_results
    o = np.asarray(origins, dtype=int)
    a = fr.predicted_state[:, o + 1]  # (k, n): state at o + 1 given data up to o
    P = fr.predicted_state_cov[:, :, o + 1]  # (k, k, n)
    mean = np.empty((o.size, horizon))
    var = np.empty((o.size, horizon))
    for j in range(horizon):
        t = o + 1 + j
        Z, d, H = _at(fr.design, t)[0], _at(fr.obs_intercept, t)[0], _at(fr.obs_cov, t)[0, 0]
        T, c, R, Q = _at(fr.transition, t), _at(fr.state_intercept, t), _at(fr.selection, t), _at(fr.state_cov, t)
        mean[:, j] = np.einsum("kn,kn->n", Z, a) + d
        var[:, j] = np.einsum("kn,kln,ln->n", Z, P, Z) + H
        a = np.einsum("kln,ln->kn", T, a) + c
        P = np.einsum("kln,lmn,jmn->kjn", T, P, T) + np.einsum("kqn,qrn,jrn->kjn", R, Q, R)
    return mean, var


def _forecast_series(y: np.ndarray, origins: np.ndarray, horizon: int, train_end: int, options: ArimaOptions,
                     known: dict[int, SeriesFit], season: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, list[SeriesFit], np.ndarray, np.ndarray]:
    """Mean (n, H), quantiles (n, H, 4), the fits used, a per-origin persistence flag and the sd (n, H), at
    sorted ``origins`` (``season``: the seasonal lag in grid steps, 0: none)."""
    from scipy.stats import norm

    n = origins.size
    mean = np.full((n, horizon), np.nan)
    sd = np.full((n, horizon), np.nan)
    quant = np.full((n, horizon, len(QUANTILES)), np.nan)
    persist = np.ones(n, dtype=bool)
    z = norm.ppf(QUANTILES)
    points = selection_points(y, train_end, int(origins.max()) if n else train_end, options.reselect_growth)
    segment = np.maximum(np.searchsorted(points, origins, side="right") - 1, 0)  # the selection in force
    # the divergence check's range at each origin: data up to that origin only
    lo_seen, hi_seen = np.fmin.accumulate(y), np.fmax.accumulate(y)
    first = int(np.argmax(~np.isnan(y)))  # where a conditional-sums-of-squares fit's data begin
    fits: list[SeriesFit] = []
    for k, at in enumerate(points):
        fit = known.get(at) or select(y, at, options, fits[-1] if fits else None, season)
        fits.append(fit)
        rows = np.flatnonzero(segment == k)
        if fit.params is None or rows.size == 0:
            continue
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            end = int(origins[rows].max())
            if fit.method == "css" and not np.isnan(y[first: end + 1]).any():
                m, v = _css_forecasts(y[first: end + 1], fit, origins[rows] - first, horizon)
            else:  # the data up to the last origin, then none: forecasts from an origin read data up to it only
                res = _model(np.r_[y[: end + 1], np.full(horizon, np.nan)], fit.order, fit.trend,
                             seasonal=fit.seasonal).filter(fit.params, cov_type="none")
                m, v = dynamic_forecasts(res, origins[rows], horizon)
            se = np.sqrt(v)  # NaN (a warning, recorded) where a model at the edge of stationarity gives v < 0
        o = origins[rows]
        spread = np.maximum(hi_seen[o] - lo_seen[o], 1e-8)
        lo, hi = lo_seen[o] - DIVERGENCE * spread, hi_seen[o] + DIVERGENCE * spread
        bad = ~np.all(np.isfinite(m), axis=1) | np.any((m < lo[:, None]) | (m > hi[:, None]), axis=1)
        fit.warnings += [f"origin {int(b)}: forecasts beyond {DIVERGENCE:g} ranges of the data seen so far; "
                         "persistence used there" for b in o[bad]]
        good = rows[~bad]
        mean[good], sd[good] = m[~bad], se[~bad]
        quant[good] = m[~bad][..., None] + se[~bad][..., None] * z
        persist[good] = fit.persistence
        fit.warnings += sorted({f"{w.category.__name__}: {w.message}" for w in record} - set(fit.warnings))
    return mean, quant, fits, persist, sd


def _series_job(ys: np.ndarray, origins: np.ndarray, horizon: int, train_end: int, options: ArimaOptions,
                known: list[dict[int, SeriesFit]], season: int = 0):
    """All target features of one series."""
    out = [_forecast_series(ys[:, f], origins, horizon, train_end, options, known[f], season)
           for f in range(ys.shape[1])]
    return (np.stack([o[0] for o in out], axis=-1), np.stack([o[1] for o in out], axis=-2),
            [o[2] for o in out], np.stack([o[3] for o in out], axis=-1), np.stack([o[4] for o in out], axis=-1))


class ArimaForecaster:
    """ARIMA per series and target feature (see the module docstring)."""

    def __init__(self, options: ArimaOptions | None = None) -> None:
        self.options = options or ArimaOptions()
        self.fits: dict[tuple[str, str], dict[int, SeriesFit]] = {}
        self.persistence: dict[tuple[str, str], list[bool]] = {}
        self.season, self.no_season = 0, None  # seasonal lag in grid steps; why a declared period gives none
        self.approximated = False  # selections by conditional sums of squares (:func:`approximate`)

    def fit(self, task: ForecastTask) -> ArimaForecaster:
        self.fits, self.persistence = {}, {}  # local models: selected per series as origins are forecast
        return self

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        data = task.data
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        N, H, F = origins.shape[0], task.horizon, data.y.shape[2]
        mean = np.full((N, H, F), np.nan)
        quant = np.full((N, H, F, len(QUANTILES)), np.nan)
        sd = np.full((N, H, F), np.nan)  # no normal forecast where persistence stands in
        jobs = []
        for s in np.unique(origins[:, 0]):
            rows = np.flatnonzero(origins[:, 0] == s)
            jobs.append((s, rows[np.argsort(origins[rows, 1], kind="stable")]))
        keys = {s: [(str(data.series[s]), str(f)) for f in data.target_features] for s, _ in jobs}
        self.season, self.no_season = season_of(data.times, self.options.period)
        self.approximated = self._approximates(data.y.shape[0] * F)
        if self.approximated:  # batched selections first; the jobs then only forecast
            self._approximate(data, jobs, keys, origins, task.train_end)
        results = map_series(_series_job, [(data.y[s], origins[rows, 1], H, int(task.train_end[s]), self.options,
                                            [self.fits.get(k, {}) for k in keys[s]], self.season) for s, rows in jobs],
                             n_jobs=self.options.n_jobs, labels=[str(data.series[s]) for s, _ in jobs])
        for (s, rows), (m, q, fits, persist, se) in zip(jobs, results, strict=True):
            mean[rows], quant[rows], sd[rows] = m, q, se
            for key, used, flags in zip(keys[s], fits, persist.T, strict=True):
                self.fits.setdefault(key, {}).update({fit.at: fit for fit in used})
                self.persistence[key] = flags.tolist()
        last = data.last_target(origins)
        still = np.isnan(mean)  # persistence where no ARIMA forecast stands (fallbacks, beyond the data)
        mean[still] = np.broadcast_to(last[:, None, :], mean.shape)[still]
        return Forecast(mean=mean, quantiles={q: quant[..., i] for i, q in enumerate(QUANTILES)}, sd=sd)

    def _approximates(self, models: int) -> bool:
        """Whether a run of ``models`` series x target features selects by conditional sums of squares: the option,
        or from APPROXIMATE_FROM on; never with seasonal terms (not part of the approximation)."""
        wanted = self.options.approximation
        return (models >= APPROXIMATE_FROM if wanted is None else wanted) and self.season < 2

    def _approximate(self, data, jobs, keys, origins: np.ndarray, train_end: np.ndarray) -> None:
        """Every selection the jobs will need and do not have yet, by :func:`approximate`, into ``self.fits``."""
        problems, where = [], []
        for s, rows in jobs:
            last = int(origins[rows, 1].max())
            for f, key in enumerate(keys[s]):
                y, known = data.y[s][:, f], self.fits.get(key, {})
                for at in selection_points(y, int(train_end[s]), last, self.options.reselect_growth):
                    if at not in known:
                        problems.append((y, at))
                        where.append((key, at))
        # batches of CHUNK selections: on the worker processes when there are several (each batch is as fast per
        # selection as a bigger one, and a selection's numbers do not depend on its batch)
        batches = [(problems[i: i + CHUNK], self.options) for i in range(0, len(problems), CHUNK)]
        fits = [fit for batch in map_series(approximate, batches, n_jobs=self.options.n_jobs) for fit in batch]
        for (key, at), fit in zip(where, fits, strict=True):
            if fit is not None:
                self.fits.setdefault(key, {})[at] = fit

    def report(self) -> dict:
        """Orders per selection, fallbacks and warnings per series and feature; how often it was persistence."""
        per = {}
        for (s, f), fits in self.fits.items():
            ordered = [fits[k] for k in sorted(fits)]
            per[f"{s}|{f}"] = {"selections": [{"at": fit.at, "order": list(fit.order) if fit.order else None,
                                               "trend": fit.trend, "fallback": fit.fallback}
                                              | ({"seasonal": list(fit.seasonal)} if fit.seasonal != NO_SEASON else {})
                                              | ({"method": "css"} if fit.method == "css" else {})
                                              for fit in ordered],
                               "warnings": sorted({w for fit in ordered for w in fit.warnings})}
        flags = [np.asarray(v, dtype=bool) for v in self.persistence.values() if len(v)]
        always = sum(int(v.all()) for v in flags)
        out = {"series_features": per,
               "fallback": {"series": always, "of": len(flags), "origins": int(sum(v.sum() for v in flags)),
                            "of_origins": int(sum(v.size for v in flags)), "to": "persistence"}}
        notes = []
        if flags and always:
            notes.append(f"ARIMA forecasts equal persistence on {always} of {len(flags)} series x features (fallbacks "
                         "or random walks, typical of short series): there its DM test repeats the one against naive")
        if self.approximated:
            fits = [fit for fits in self.fits.values() for fit in fits.values()]
            css = sum(fit.method == "css" for fit in fits)
            notes.append(f"orders chosen and estimated by conditional sums of squares in {css} of {len(fits)} selections "
                         "(auto.arima's approximation, used from "
                         f"{APPROXIMATE_FROM:,} series x features on or with options arima.approximation; the rest, "
                         "where the data have gaps, by maximum likelihood); forecasts by Box and Jenkins' recursions "
                         "(the Kalman filter where data after a selection have gaps)")
        elif self.options.approximation and self.season >= 2:
            notes.append("no approximation: seasonal terms are chosen by the exact search")
        if self.no_season:
            notes.append(self.no_season)
        elif self.season:
            chosen = sum(fit.seasonal != NO_SEASON for fits in self.fits.values() for fit in fits.values())
            total = sum(len(fits) for fits in self.fits.values())
            notes.append(f"seasonal terms at lag {self.season} grid steps (period {self.options.period:g}): chosen in "
                         f"{chosen} of {total} selections (tried where the data held {MIN_CYCLES * self.season} "
                         "observations, two whole cycles)")
        out["notes"] = notes
        return out
