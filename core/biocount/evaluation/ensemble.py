"""Ensembles of fitted forecasters, weighted on validation origins only.

- ``mean``: equal weights.
- ``inverse``: weights proportional to 1 / validation MSE.
- ``stack``: the convex combination minimising validation MSE: non-negative weights that sum to one
  (unconstrained regression weights overfit short validation sets), shrunk toward equal weights, toward
  equal weights over the members within ``TRIM`` times the best validation MSE (a trimmed mean), or toward
  the best single member, by an amount chosen by cross-validation over validation origins
  (:func:`shrunk_stack`): a few validation points cannot fit many weights (the combination puzzle).

:func:`guarded` is the headline's guard: the combination's out-of-fold validation forecasts are tested
(Diebold–Mariano) against each baseline member; one significantly worse falls back to the best
baseline, with a note. Everything reads validation points only.

Weights are pooled over every validation point, or fitted per target feature or per horizon
(``per="pooled" | "feature" | "horizon"``): under MSE persistence is strong one step ahead and weak
further out, so one weight vector per horizon lets the combination follow that.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from biocount.errors import BiocountInputError

METHODS = ("mean", "inverse", "stack")
MIN_POINTS = 10  # validation points needed to fit weights for one feature (or pooled)
SHRINK = (0.0, 0.25, 0.5, 0.75, 1.0)  # how far the stacked weights move toward a simpler rule
FOLDS = 5  # cross-validation folds of validation origins (contiguous blocks of them)
TRIM = 2.0  # the trimmed-mean target keeps members whose validation MSE is within this factor of the best
GUARD_P = 0.05  # a headline significantly worse than a baseline on validation (DM, p below this) falls back


def _columns(preds: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack members' forecasts at observed, fully forecast points: P (n, M), y (n,) and each point's
    origin (its row in the (N, H, F) arrays), the unit cross-validation folds keep together."""
    P = np.stack([p.reshape(-1) for p in preds], axis=1)
    t = y.reshape(-1)
    origin = np.broadcast_to(np.arange(y.shape[0]).reshape(-1, *([1] * (y.ndim - 1))), y.shape).reshape(-1)
    ok = ~np.isnan(t) & np.all(np.isfinite(P), axis=1)
    return P[ok], t[ok], origin[ok]


def _folds(origin: np.ndarray) -> list[np.ndarray]:
    """Boolean masks of the held-out points of each fold: contiguous blocks of the origins present."""
    units = np.unique(origin)
    k = min(FOLDS, units.size)
    return [np.isin(origin, block) for block in np.array_split(units, k)] if k >= 2 else []


def _rules(P: np.ndarray, y: np.ndarray) -> dict[tuple[str, float], np.ndarray]:
    """Candidate weights from (P, y): the simplex stack shrunk by each amount toward equal weights, toward
    equal weights over the members within ``TRIM`` times the lowest MSE (a trimmed mean: one far worse
    member, such as climatology on data without a cycle, cannot take a share), and toward the member with
    the lowest MSE (amount 1: the simpler rule alone)."""
    M = P.shape[1]
    w = simplex_least_squares(P, y)
    mse = np.mean((P - y[:, None]) ** 2, 0)
    near = (mse <= TRIM * mse.min()).astype(float)
    targets = {"equal": np.full(M, 1.0 / M), "trimmed": near / near.sum(), "best": np.eye(M)[int(np.argmin(mse))]}
    return {(name, lam): (1 - lam) * w + lam * e for name, e in targets.items() for lam in SHRINK}


def shrunk_stack(P: np.ndarray, y: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Stacked weights shrunk by the amount, toward the rule, that predicts held-out validation origins
    best (``FOLDS``-fold cross-validation; ties go to more shrinkage). Returns (weights, the choice)."""
    folds = _folds(origin)
    if not folds:  # one origin: nothing to cross-validate over, the middle way
        w = _rules(P, y)[("equal", 0.5)]
        return w, {"toward": "equal", "shrink": 0.5, "folds": 0}
    sse: dict[tuple[str, float], float] = {}
    for held in folds:
        for key, w in _rules(P[~held], y[~held]).items():
            sse[key] = sse.get(key, 0.0) + float(np.sum((P[held] @ w - y[held]) ** 2))
    best = min(sse, key=lambda k: (round(sse[k], 12), -k[1]))
    return _rules(P, y)[best], {"toward": best[0], "shrink": best[1], "folds": len(folds)}


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
    if method == "mean":
        return np.full(len(preds), 1.0 / len(preds))
    P, t, origin = _columns(preds, y)
    _enough(method, t.size)
    return _weights(method, P, t, origin)[0]


def _enough(method: str, n: int) -> None:
    if method != "mean" and n < MIN_POINTS:
        raise BiocountInputError(f"ensemble '{method}' needs at least {MIN_POINTS} observed validation points to fit "
                                 f"weights, got {n}; raise --val-size or use --ensemble mean")


def _weights(method: str, P: np.ndarray, t: np.ndarray, origin: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Weights from rows (P, t) and what was chosen (the stack's shrinkage)."""
    if method == "mean":
        return np.full(P.shape[1], 1.0 / P.shape[1]), {}
    if method == "inverse":
        mse = np.mean((P - t[:, None]) ** 2, axis=0)
        inv = 1.0 / np.maximum(mse, 1e-12)
        return inv / inv.sum(), {}
    if method == "stack":
        return shrunk_stack(P, t, origin)
    raise BiocountInputError(f"unknown ensemble '{method}'; use {', '.join(METHODS)}")


def _per_origin(sq: np.ndarray, origin: np.ndarray) -> pd.Series:
    units = np.unique(origin)
    return pd.Series(np.bincount(np.searchsorted(units, origin), weights=sq), index=units)


def guard(method: str, preds: list[np.ndarray], y: np.ndarray, baselines: dict[int, str], *,
          horizon: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Weights of one scope, checked against the baselines on validation: the combination's out-of-fold
    forecasts (each fold's weights fitted without it) against each baseline member's validation forecasts,
    Diebold–Mariano per origin. If it is significantly worse (p < ``GUARD_P``) than any baseline, the
    weights fall back to the baseline with the lowest validation MSE. Returns (weights, what happened)."""
    from biocount.evaluation.metrics import dm_test

    P, t, origin = _columns(preds, y)
    _enough(method, t.size)
    w, info = _weights(method, P, t, origin)
    folds = _folds(origin)
    if not folds or not baselines:
        return w, info | {"fallback": None}
    oof = np.empty_like(t)
    for held in folds:
        oof[held] = P[held] @ _weights(method, P[~held], t[~held], origin[~held])[0]
    mine = _per_origin((oof - t) ** 2, origin)
    worst = None
    for m, name in baselines.items():
        stat, p, _ = dm_test(mine, _per_origin((P[:, m] - t) ** 2, origin), horizon)
        if np.isfinite(p) and stat > 0 and p < GUARD_P and (worst is None or p < worst[1]):
            worst = (name, float(p))
    info["validation_mse"] = float(np.mean((oof - t) ** 2))
    if worst is None:
        return w, info | {"fallback": None}
    best = min(baselines, key=lambda m: float(np.mean((P[:, m] - t) ** 2)))
    return np.eye(len(preds))[best], info | {"fallback": baselines[best], "worse_than": worst[0], "p": worst[1]}


Per = Literal["pooled", "feature", "horizon"]


def fit(method: str, val_preds: list[np.ndarray], y_val: np.ndarray, *, per: Per = "pooled",
        baselines: dict[int, str] | None = None) -> np.ndarray:
    """Weights of one ensemble: (M,) pooled, (F, M) per target feature or (H, M) per horizon
    (``baselines``: guarded as :func:`guarded` does, the choices dropped)."""
    return guarded(method, val_preds, y_val, per=per, baselines=baselines or {})[0]


def guarded(method: str, val_preds: list[np.ndarray], y_val: np.ndarray, *, per: Per = "pooled",
            baselines: dict[int, str]) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Weights as :func:`fit` returns them and, per scope (one for pooled, one per feature or horizon),
    what was chosen: shrinkage, and a fallback to a baseline member (index -> name in ``baselines``)."""
    if len(val_preds) < 2:
        raise BiocountInputError(f"ensemble '{method}' needs at least two members, got {len(val_preds)}; "
                                 "add forecasters to --models or drop --ensemble")
    H = y_val.shape[1]
    if per == "pooled":
        w, info = guard(method, val_preds, y_val, baselines, horizon=H)
        return w, [info]
    axis = {"feature": 2, "horizon": 1}[per]
    out = [guard(method, [p.take([i], axis=axis) for p in val_preds], y_val.take([i], axis=axis), baselines,
                 horizon=i + 1 if per == "horizon" else H)
           for i in range(y_val.shape[axis])]
    return np.stack([w for w, _ in out]), [info for _, info in out]


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
