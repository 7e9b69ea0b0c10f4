"""Ensembles of fitted forecasters, weighted on validation origins only.

- ``mean``: equal weights.
- ``inverse``: weights proportional to 1 / validation MSE.
- ``stack``: the convex combination minimising validation MSE: non-negative weights that sum to one
  (unconstrained regression weights overfit short validation sets).

Weights are pooled over every validation point, or fitted per target feature or per horizon
(``per="pooled" | "feature" | "horizon"``): under MSE persistence is strong one step ahead and weak
further out, so one weight vector per horizon lets the combination follow that.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.optimize import nnls

from .errors import BiocountInputError

METHODS = ("mean", "inverse", "stack")
MIN_POINTS = 10  # validation points needed to fit weights for one feature (or pooled)


def _columns(preds: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stack members' forecasts at observed, fully forecast points: P (n, M), y (n,)."""
    P = np.stack([p.reshape(-1) for p in preds], axis=1)
    t = y.reshape(-1)
    ok = ~np.isnan(t) & np.all(np.isfinite(P), axis=1)
    return P[ok], t[ok]


def simplex_least_squares(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin ||P w - y||² over w >= 0, sum(w) = 1.

    Non-negative least squares with the sum-to-one constraint as a heavily weighted extra row (exact
    in the limit), then renormalised.
    """
    scale = max(float(np.linalg.norm(P)), 1.0) * 1e3
    A = np.vstack([P, np.full((1, P.shape[1]), scale)])
    b = np.concatenate([y, [scale]])
    w, _ = nnls(A, b, maxiter=50 * P.shape[1])
    return w / w.sum() if w.sum() > 0 else np.full(P.shape[1], 1 / P.shape[1])


def fit_weights(method: str, preds: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Weights (M,) of one ensemble from members' validation forecasts and the validation targets."""
    M = len(preds)
    if method == "mean":
        return np.full(M, 1.0 / M)
    P, t = _columns(preds, y)
    if t.size < MIN_POINTS:
        raise BiocountInputError(f"ensemble '{method}' needs at least {MIN_POINTS} observed validation points to fit "
                                 f"weights, got {t.size}; raise --val-size or use --ensemble mean")
    if method == "inverse":
        mse = np.mean((P - t[:, None]) ** 2, axis=0)
        inv = 1.0 / np.maximum(mse, 1e-12)
        return inv / inv.sum()
    if method == "stack":
        return simplex_least_squares(P, t)
    raise BiocountInputError(f"unknown ensemble '{method}'; use {', '.join(METHODS)}")


Per = Literal["pooled", "feature", "horizon"]


def fit(method: str, val_preds: list[np.ndarray], y_val: np.ndarray, *, per: Per = "pooled") -> np.ndarray:
    """Weights of one ensemble: (M,) pooled, (F, M) per target feature or (H, M) per horizon."""
    if len(val_preds) < 2:
        raise BiocountInputError(f"ensemble '{method}' needs at least two members, got {len(val_preds)}; "
                                 "add forecasters to --models or drop --ensemble")
    if per == "pooled":
        return fit_weights(method, val_preds, y_val)
    axis = {"feature": 2, "horizon": 1}[per]
    return np.stack([fit_weights(method, [p.take([i], axis=axis) for p in val_preds], y_val.take([i], axis=axis))
                     for i in range(y_val.shape[axis])])


def combine(preds: list[np.ndarray], weights: np.ndarray, per: Per = "pooled") -> np.ndarray:
    """Members' forecasts (each (N, H, F)) combined with pooled (M,), per-feature (F, M) or per-horizon
    (H, M) weights."""
    stack = np.stack(preds, axis=-1)
    weights = np.asarray(weights)
    if per == "pooled":
        return np.tensordot(stack, weights, axes=([-1], [0]))
    return np.einsum("nhfm,fm->nhf" if per == "feature" else "nhfm,hm->nhf", stack, weights)


def ensemble(method: str, val_preds: list[np.ndarray], y_val: np.ndarray, test_preds: list[np.ndarray], *,
             per: Per = "pooled") -> tuple[np.ndarray, np.ndarray]:
    """Fit on validation forecasts, combine the test forecasts; returns (combined, weights)."""
    w = fit(method, val_preds, y_val, per=per)
    return combine(test_preds, w, per), w
