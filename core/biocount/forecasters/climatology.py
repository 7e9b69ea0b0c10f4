"""The ``climatology`` forecaster: what the same phase of earlier cycles looked like.

The baseline ecological and epidemic forecasting hubs score against beside persistence. For a target
time tau = origin time + horizon, the forecast distribution is the series' own observations up to the
origin at the same phase of the cycle (times tau - k * period, k >= 1, within half a grid step); its
mean is the forecast and its empirical quantiles (at :data:`biocount.evaluation.scores.QUANTILES`) the native
predictive distribution. With no ``period``, or fewer than ``min_values`` same-phase observations so
far, it is every observation up to the origin (the running mean: climatology without a cycle).
Only data up to the origin is read, so it passes the truncation test by construction.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount.evaluation.scores import QUANTILES
from biocount.forecast import Forecast, ForecastTask
from biocount.forecasters.climatology_options import ClimatologyOptions

CELLS = 4_000_000  # values held at once per block of origins (32 MB of float64)


class ClimatologyForecaster:
    def __init__(self, options: ClimatologyOptions | None = None) -> None:
        self.options = options or ClimatologyOptions()
        self.cyclic = 0  # forecasts that used the cycle, and all forecasts (report)
        self.total = 0

    def fit(self, task: ForecastTask) -> ClimatologyForecaster:
        self.cyclic = self.total = 0
        return self

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        data, H = task.data, task.horizon
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        N, T, F = origins.shape[0], data.times.size, data.y.shape[2]
        times = data.times.astype(float)
        ahead = data.extended_times(H)[origins[:, 1:2] + np.arange(1, H + 1)[None, :]]  # (N, H) target times
        mean = np.full((N, H, F), np.nan)
        quant = np.full((N, H, F, len(QUANTILES)), np.nan)
        chunk = max(1, CELLS // max(H * T * F, 1))  # origins per block: bounded memory on long series
        for s in np.unique(origins[:, 0]):
            every = np.flatnonzero(origins[:, 0] == s)
            for rows in (every[i: i + chunk] for i in range(0, every.size, chunk)):
                self._block(data.y[s], rows, origins, ahead, times, mean, quant)
        last = data.last_target(origins)
        still = np.isnan(mean)  # nothing observed yet at an origin: the last carried value
        mean[still] = np.broadcast_to(last[:, None, :], mean.shape)[still]
        return Forecast(mean=mean, quantiles={q: quant[..., i] for i, q in enumerate(QUANTILES)})

    def _block(self, y: np.ndarray, rows: np.ndarray, origins: np.ndarray, ahead: np.ndarray, times: np.ndarray,
               mean: np.ndarray, quant: np.ndarray) -> None:
        """Forecasts of some origins of one series (``y``: (T, F), exact observations only), in place."""
        H, T, F = ahead.shape[1], times.size, y.shape[1]
        seen = np.arange(T)[None, None, :] <= origins[rows, 1][:, None, None]  # (n, 1, T): up to the origin
        use = np.broadcast_to(seen, (rows.size, H, T))
        if self.options.period is not None:
            same = _same_phase(ahead[rows], times, self.options.period, _tolerance(times)) & seen
            enough = (same[..., None] & ~np.isnan(y)[None, None]).sum(axis=2) >= self.options.min_values  # (n,H,F)
            self.cyclic += int(enough.sum())
        values = np.where(use[..., None], y[None, None], np.nan)  # (n, H, T, F)
        if self.options.period is not None:
            cyc = np.where(same[..., None], y[None, None], np.nan)
            values = np.where(enough[:, :, None, :], cyc, values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no observation yet: NaN, persistence stands in
            mean[rows] = np.nanmean(values, axis=2)
            quant[rows] = np.moveaxis(np.nanquantile(values, QUANTILES, axis=2), 0, -1)
        self.total += rows.size * H * F

    def report(self) -> dict:
        out: dict = {"period": self.options.period}
        if self.options.period is not None and self.total:
            out["cyclic_share"] = round(self.cyclic / self.total, 4)
            if self.cyclic < self.total:
                out["notes"] = [f"climatology: {self.total - self.cyclic} of {self.total} forecasts had fewer than "
                                f"{self.options.min_values} same-phase observations and used the mean so far"]
        return out


def _tolerance(times: np.ndarray) -> float:
    return 0.5 * float(np.median(np.diff(times))) if times.size > 1 else 0.5


def _same_phase(targets: np.ndarray, times: np.ndarray, period: float, tol: float) -> np.ndarray:
    """(n, H, T): grid time t lies k >= 1 whole periods before the target time, within ``tol``."""
    lag = targets[..., None] - times[None, None, :]
    k = np.round(lag / period)
    return (k >= 1) & (np.abs(lag - k * period) <= tol)


def build(options: ClimatologyOptions) -> ClimatologyForecaster:
    return ClimatologyForecaster(options)
