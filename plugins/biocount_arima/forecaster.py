"""The ARIMA baseline.

One ``statsmodels.tsa.arima.model.ARIMA`` per series and target feature, on the target's encoded
values over the grid (NaN = missing, handled by the Kalman filter). The order is fixed by option or
chosen per series and feature on the training part only, as R's auto.arima does: d is the smallest
order after which a KPSS test (5 %) no longer rejects stationarity (d <= max_d; a series too short to
test is differenced once, which forecasts like persistence), then p <= max_p and
q <= max_q by AICc (with a constant when d = 0). AICc is not compared across d: differencing changes
the data the likelihood is computed on. An order needs 3 training observations per parameter. Rolling origins do not refit: the fitted results are extended with the
new observations (``append(..., refit=False)``) and each origin's forecasts are dynamic predictions
from that origin, which use no observation after it. With ``refit_every=k`` the parameters are
re-estimated on all data up to every k-th test origin. A fit that fails falls back to persistence and
is reported; statsmodels' warnings are collected per series, never printed.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass, field

import numpy as np

from biocount import Forecast, ForecastTask

from .options import ArimaOptions

QUANTILES = (0.025, 0.1, 0.9, 0.975)
MIN_KPSS = 25  # below this a KPSS unit-root test has too little power to trust; assume a unit root
MIN_OBS_PER_PARAM = 3  # an order needs this many training observations per estimated parameter
DIVERGENCE = 3.0  # forecasts beyond the training range by this many ranges fall back to persistence


@dataclass
class SeriesFit:
    """What was fitted for one series and feature."""

    order: tuple[int, int, int] | None
    params: np.ndarray | None
    fallback: str | None = None  # why persistence is used instead
    warnings: list[str] = field(default_factory=list)


def _model(y: np.ndarray, order: tuple[int, int, int]):
    from statsmodels.tsa.arima.model import ARIMA

    return ARIMA(y, order=order, trend="c" if order[1] == 0 else "n")


def _kpss_d(y: np.ndarray, max_d: int, alpha: float = 0.05) -> int:
    """The smallest d whose d-times differenced series KPSS does not call non-stationary."""
    from statsmodels.tsa.stattools import kpss

    for d in range(max_d):
        z = np.diff(y, n=d)
        if z.size < MIN_KPSS:  # too short to test for a unit root: assume one (forecasts like persistence)
            return min(d + 1, max_d)
        if np.ptp(z) == 0 or kpss(z, regression="c", nlags="auto")[1] > alpha:
            return d
    return max_d


def _fit_one(y: np.ndarray, options: ArimaOptions) -> SeriesFit:
    caught: list[str] = []
    observed = int(np.sum(~np.isnan(y)))
    if observed < 4:
        return SeriesFit(None, None, f"only {observed} training observations")
    best = None
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        if options.order is not None:
            orders = [tuple(options.order)]
        else:  # AICc cannot compare different d (other data): settle d by KPSS first, as auto.arima does
            d = _kpss_d(y[~np.isnan(y)], options.max_d)
            orders = list(itertools.product(range(options.max_p + 1), [d], range(options.max_q + 1)))
        for order in orders:
            n_params = order[0] + order[2] + (1 if order[1] == 0 else 0) + 1  # + constant, + variance
            if observed - order[1] < MIN_OBS_PER_PARAM * n_params:  # too many parameters for the data
                continue
            try:
                res = _model(y, order).fit()
            except Exception as exc:  # statsmodels raises LinAlgError, ValueError ...
                caught.append(f"{order}: {type(exc).__name__}: {exc}")
                continue
            score = res.aicc if np.isfinite(res.aicc) else np.inf
            if best is None or score < best[0]:
                best = (score, order, np.asarray(res.params))
    caught += sorted({f"{w.category.__name__}: {w.message}" for w in record})
    if best is None:
        return SeriesFit(None, None, "no order could be fitted", caught)
    return SeriesFit(best[1], best[2], None, caught)


def _forecast_series(y: np.ndarray, fit: SeriesFit, origins: np.ndarray, horizon: int, train_end: int,
                     options: ArimaOptions) -> tuple[np.ndarray, np.ndarray, SeriesFit]:
    """Mean (n, H) and quantiles (n, H, 4) at ``origins`` (sorted grid indices) for one series-feature."""
    from scipy.stats import norm

    n = origins.size
    mean = np.full((n, horizon), np.nan)
    quant = np.full((n, horizon, len(QUANTILES)), np.nan)
    if fit.params is None:
        return mean, quant, fit
    z = norm.ppf(QUANTILES)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        params, segment_start = fit.params, 0
        blocks = [origins] if options.refit_every is None else \
            [origins[i:i + options.refit_every] for i in range(0, n, options.refit_every)]
        for k, block in enumerate(blocks):
            if k > 0:  # the documented schedule: re-estimate on everything up to this block's first origin
                try:
                    params = np.asarray(_model(y[: block[0] + 1], fit.order).fit(start_params=params).params)
                except Exception as exc:
                    fit.warnings.append(f"refit at origin {block[0]} failed ({type(exc).__name__}); kept parameters")
            end = int(block.max())
            base = _model(y[: train_end + 1], fit.order).filter(params)
            res = base.append(y[train_end + 1: end + 1], refit=False) if end > train_end else base
            for i, o in enumerate(block):
                if o > res.nobs - 1:
                    continue
                pred = res.get_prediction(start=int(o) + 1, end=int(o) + horizon, dynamic=True) if o < res.nobs - 1 \
                    else res.get_forecast(horizon)
                m = np.asarray(pred.predicted_mean)[:horizon]
                se = np.sqrt(np.asarray(pred.var_pred_mean))[:horizon]
                mean[segment_start + i, : m.size] = m
                quant[segment_start + i, : m.size] = m[:, None] + se[:, None] * z[None, :]
            segment_start += block.size
    fit.warnings += sorted({f"{w.category.__name__}: {w.message}" for w in record})
    seen = y[: train_end + 1][~np.isnan(y[: train_end + 1])]
    spread = max(float(np.ptp(seen)), 1e-8)
    lo, hi = seen.min() - DIVERGENCE * spread, seen.max() + DIVERGENCE * spread
    if np.any(~np.isfinite(mean[~np.isnan(mean)])) or np.any((mean < lo) | (mean > hi)):
        fit.fallback = f"order {fit.order} diverged (forecasts outside the training range by {DIVERGENCE:g}x)"
        fit.params = None
        mean[:] = np.nan
        quant[:] = np.nan
    return mean, quant, fit


def _series_job(ys: np.ndarray, origins: np.ndarray, horizon: int, train_end: int, options: ArimaOptions,
                known: list[SeriesFit | None]):
    """All target features of one series: fit (unless known), then forecast at the series' origins."""
    means, quants, fits = [], [], []
    for f in range(ys.shape[1]):
        fit = known[f] if known[f] is not None and known[f].params is not None else _fit_one(ys[: train_end + 1, f], options)
        mean, quant, fit = _forecast_series(ys[:, f], fit, origins, horizon, train_end, options)
        means.append(mean)
        quants.append(quant)
        fits.append(fit)
    return np.stack(means, axis=-1), np.stack(quants, axis=-2), fits  # (n, H, F), (n, H, F, 4)


class ArimaForecaster:
    """ARIMA per series and target feature (see the module docstring)."""

    def __init__(self, options: ArimaOptions | None = None) -> None:
        self.options = options or ArimaOptions()
        self.fits: dict[tuple[str, str], SeriesFit] = {}

    def fit(self, task: ForecastTask) -> ArimaForecaster:
        self.fits = {}  # local models: fitted per series with the first forecasts (in parallel), then reused
        return self

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        from joblib import Parallel, delayed

        data = task.data
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        N, H, F = origins.shape[0], task.horizon, data.y.shape[2]
        mean = np.full((N, H, F), np.nan)
        quant = np.full((N, H, F, len(QUANTILES)), np.nan)
        jobs = []
        for s in np.unique(origins[:, 0]):
            rows = np.flatnonzero(origins[:, 0] == s)
            rows = rows[np.argsort(origins[rows, 1], kind="stable")]
            jobs.append((s, rows))
        results = Parallel(n_jobs=self.options.n_jobs, backend="loky")(
            delayed(_series_job)(data.y[s], origins[rows, 1], H, int(task.train_end[s]), self.options,
                                 [self.fits.get((str(data.series[s]), str(f))) for f in data.target_features])
            for s, rows in jobs)
        last = data.inputs[data.target].values[origins[:, 0], origins[:, 1]][:, data.target_index]
        for (s, rows), (m, q, fits) in zip(jobs, results, strict=True):
            mean[rows], quant[rows] = m, q
            for f, fit in enumerate(fits):
                self.fits[(str(data.series[s]), str(data.target_features[f]))] = fit
                if fit.params is None:  # persistence fallback, reported in fit_report()
                    mean[rows, :, f] = last[rows, f][:, None]
        still = np.isnan(mean)  # origins the filter could not reach (e.g. beyond the data)
        mean[still] = np.broadcast_to(last[:, None, :], mean.shape)[still]
        return Forecast(mean=mean, quantiles={q: quant[..., i] for i, q in enumerate(QUANTILES)})

    def fit_report(self) -> dict:
        """Orders, fallbacks and warnings per series and feature (for run.json)."""
        return {f"{s}|{f}": {"order": list(fit.order) if fit.order else None, "fallback": fit.fallback,
                             "warnings": fit.warnings} for (s, f), fit in self.fits.items()}
