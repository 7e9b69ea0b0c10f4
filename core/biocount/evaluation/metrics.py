"""Point-forecast metrics and significance tests, on the target's value scale.

Arrays are (N origins, H horizons, F features); NaN in ``y`` means no observation, and such
points are left out of every metric. MASE divides by the in-sample one-step naive MAE of each
series and feature over its training part (pooled over series when a series has too few points).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

METRICS = ("mse", "rmse", "mae", "r2", "mase", "smape")
LOWER_IS_BETTER = {"mse": True, "rmse": True, "mae": True, "r2": False, "mase": True, "smape": True}


def naive_scale(y: np.ndarray, train_end: np.ndarray) -> np.ndarray:
    """(S, F) mean |y_t - y_prev| over consecutive observed training points (MASE's denominator)."""
    S, T, F = y.shape
    scale = np.full((S, F), np.nan)
    for s in range(S):
        part = y[s, : train_end[s] + 1]
        for f in range(F):
            v = part[:, f][~np.isnan(part[:, f])]
            if v.size >= 2:
                scale[s, f] = np.mean(np.abs(np.diff(v)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature flat in every series: no pooled scale
        pooled = np.nanmedian(np.where(scale > 0, scale, np.nan), axis=0)
    scale = np.where((scale > 0) & np.isfinite(scale), scale, pooled[None, :])
    return np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)


def point_metrics(y: np.ndarray, pred: np.ndarray, scale: np.ndarray | None = None) -> dict[str, float]:
    """MSE, RMSE, MAE, R², MASE (errors divided by ``scale``, same shape), sMAPE (%) over observed points."""
    ok = ~np.isnan(y) & ~np.isnan(pred)
    e = (pred - y)[ok]
    yo = y[ok]
    if e.size == 0:
        return dict.fromkeys(METRICS, np.nan) | {"n": 0}
    mse = float(np.mean(e**2))
    sst = float(np.sum((yo - yo.mean()) ** 2))
    denom = np.abs(yo) + np.abs(pred[ok])
    smape = float(np.mean(np.where(denom > 0, 2 * np.abs(e) / np.where(denom > 0, denom, 1), 0.0)) * 100)
    return {
        "mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(e))),
        "r2": float(1 - np.sum(e**2) / sst) if sst > 0 else np.nan,
        "mase": float(np.mean(np.abs(e) / scale[ok])) if scale is not None else np.nan,
        "smape": smape, "n": int(e.size),
    }


def loss_by_unit(y: np.ndarray, pred: np.ndarray, unit: np.ndarray) -> pd.Series:
    """Squared error per unit (e.g. per (series, origin)), sorted by unit.

    Summed over the unit's observed points and divided by the mean number of observed points per
    unit: the mean over units is then exactly the MSE over points, so a DM test on these losses
    weights each point as the MSE does, and their signs agree.
    """
    return unit_loss(np.where(np.isnan(y), np.nan, (pred - y) ** 2), unit)


def unit_loss(loss: np.ndarray, unit: np.ndarray) -> pd.Series:
    """Any pointwise loss (N, ...) (NaN = not scored) per unit, as :func:`loss_by_unit` aggregates squared errors."""
    sq = loss.reshape(loss.shape[0], -1)
    n = np.sum(~np.isnan(sq), axis=1)
    frame = pd.DataFrame({"unit": unit, "loss": np.nansum(sq, axis=1), "n": n})
    frame = frame[frame["n"] > 0].groupby("unit", sort=True)[["loss", "n"]].sum()
    return frame["loss"] / max(float(frame["n"].mean()), 1.0) if len(frame) else frame["loss"]


def dm_test(loss_a: pd.Series, loss_b: pd.Series, horizon: int) -> tuple[float, float, int]:
    """Diebold–Mariano on paired losses (a minus b), Harvey small-sample correction, lags = horizon - 1.

    Negative statistics mean ``a`` has the lower loss. Returns (statistic, p-value, n).
    """
    from statsmodels.tsa.stattools import diebold_mariano_test

    both = pd.concat([loss_a, loss_b], axis=1, join="inner").dropna()
    n = len(both)
    if n < 3 or np.allclose(both.iloc[:, 0], both.iloc[:, 1]):
        return np.nan, np.nan, n
    res = diebold_mariano_test(np.zeros(n), both.iloc[:, 0].to_numpy(), both.iloc[:, 1].to_numpy(),
                               criterion=lambda _y, f: np.asarray(f, dtype=float), lags=max(horizon - 1, 0),
                               harvey_adj=True, horizon=horizon)
    return float(res.statistic), float(res.pvalue), n


def bh(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (NaN kept)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out
