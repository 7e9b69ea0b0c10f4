"""Forecasts back in the data's own units (kg, counts ...), from the target encoder's :class:`~biocount.Units`.

Models fit and are selected on the encoder's scale (z-scores, log1p rates); people read the data's units.
An encoder declares ``value = (g(x) - center) / scale`` per feature, g = log1p or the identity, so

- **observed values, interval bounds and quantiles** map back exactly: ``x = g⁻¹(value * scale + center)``
  is monotone, and a monotone map keeps quantiles (the median of x is g⁻¹ of the encoded median);
- **point forecasts** are means. With g the identity the map is linear and the mean maps to the mean.
  With g = log1p, ``expm1(point)`` is the *median* of x (for errors symmetric on the log scale) and is
  biased low as a mean (Jensen) when the point is the conditional mean of log1p(x). biocount then reports the
  mean by Duan's smearing estimate (Duan 1983): with r the forecaster's validation residuals on the log scale
  at that horizon and feature, ``E[x] = exp(u) * mean(exp(r)) - 1``, u the point forecast on the log scale.
  Smearing assumes residuals independent of the forecast, which fails for some forecasters (persistence on a
  mean-reverting series: its residuals shrink high values back, and smearing overshoots by ~20 % in the
  tests' rodent study). So per forecaster, horizon and feature the smeared mean is kept only where it has
  the lower MSE in data units on the validation points, else the median ``expm1(u)`` is given. Only
  validation points are read (the truncation contract); with no validation residual, the median.

Counts are clipped at 0 (``Units.nonnegative``). Scores stay on the encoded scale except the columns
named ``data_*`` in metrics.csv.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount.host.contract import Units

MIN_RESIDUALS = 5  # per (horizon, feature) for its own smearing factor; fewer: pooled over the features


def to_data(values: np.ndarray, units: Units, *, rows: np.ndarray | None = None) -> np.ndarray:
    """Encoded values in the data's units: exact for observations, bounds, quantiles. The feature axis is the
    last, or, with ``rows`` (each row's feature position), each row of ``values`` is one feature's."""
    center, scale = units.center, units.scale
    if rows is not None:
        center, scale = center[rows][:, None], scale[rows][:, None]
    g = np.asarray(values, dtype=np.float64) * scale + center
    x = np.expm1(g) if units.log1p else g
    return np.maximum(x, 0.0) if units.nonnegative else x


def smearing(pred: np.ndarray, y: np.ndarray, units: Units) -> np.ndarray:
    """(H, F) factors for :func:`point` from validation forecasts ``pred`` and targets ``y`` (N, H, F): Duan's
    mean(exp(r)), r = (y - pred) * scale on the log scale, where that lowers the validation MSE in data units,
    else 1 (the median); 1 for the identity; NaN where no residual exists at a horizon."""
    H, F = y.shape[1], y.shape[2]
    if not units.log1p:
        return np.ones((H, F))
    r = (y - pred) * units.scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a horizon without residuals: NaN, handled below
        per_cell = np.nanmean(np.exp(r), axis=0)  # (H, F)
        pooled = np.nanmean(np.exp(r), axis=(0, 2))  # (H,)
        factor = np.where(np.sum(~np.isnan(r), axis=0) >= MIN_RESIDUALS, per_cell, pooled[:, None])
        truth = to_data(y, units)
        smeared = np.nanmean((point(pred, factor, units) - truth) ** 2, axis=0)
        median = np.nanmean((point(pred, np.ones_like(factor), units) - truth) ** 2, axis=0)
    return np.where(np.isnan(factor) | ~(smeared < median), np.where(np.isnan(factor), np.nan, 1.0), factor)


def point(pred: np.ndarray, factor: np.ndarray, units: Units) -> np.ndarray:
    """Point forecasts (N, H, F) in the data's units: the mean (smearing ``factor`` (H, F)); the median where
    the factor is NaN (no validation residual)."""
    if not units.log1p:
        return to_data(pred, units)
    u = np.asarray(pred, dtype=np.float64) * units.scale + units.center
    f = np.where(np.isnan(factor), 1.0, factor)
    x = np.exp(u) * f - 1.0
    return np.maximum(x, 0.0) if units.nonnegative else x


def mape(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean absolute percentage error (%) in data units; NaN unless every observed value is positive
    (with a zero or a negative observation a percentage of it means nothing)."""
    ok = ~np.isnan(y) & ~np.isnan(pred)
    if not ok.any() or np.any(y[ok] <= 0):
        return float("nan")
    return float(np.mean(np.abs(pred[ok] - y[ok]) / y[ok]) * 100)


DATA_METRICS = ("data_rmse", "data_mae", "data_mase", "data_mape")


def data_metrics(y: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MASE (errors over ``scale``, the in-sample naive MAE in data units) and MAPE in data units."""
    from biocount.evaluation.metrics import point_metrics

    m = point_metrics(y, pred, scale)
    return {"data_rmse": m["rmse"], "data_mae": m["mae"], "data_mase": m["mase"], "data_mape": mape(y, pred)}
