"""Which modality drove the forecasts: permutation importance on the test origins.

For a fitted forecaster that uses input modalities, each non-target modality in turn (static ones such
as genomic covariates too) has its whole series shuffled between series (its values, observed flags and gaps move together, so each shuffled
series keeps its own temporal structure but no longer belongs to the series it is paired with); the
forecaster predicts the same test origins again, and the importance is the rise in test MSE. Repeated
with different shuffles, the mean and a 95 % interval over repeats are reported. Nothing is refitted,
and only test points are scored, as for every other number in the report.

What it cannot prove: a modality that is redundant with another (or with the target's own history) can
show no importance although it carries signal; a rise in error says the model *uses* the modality on
these origins, not that the biology is causal. ``--ablate-modalities`` (refitting without it) answers the
other question: would a model without it do as well.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np


def _shuffled(aligned: Any, name: str, rng: np.random.Generator) -> Any:
    """``aligned`` with modality ``name``'s series permuted (a derangement where there are 2+ series)."""
    S = aligned.series.size
    order = rng.permutation(S)
    while S > 1 and np.any(order == np.arange(S)):
        order = rng.permutation(S)
    block = aligned.inputs[name]
    moved = replace(block, values=block.values[order], observed=block.observed[order], gap=block.gap[order])
    return replace(aligned, inputs={**aligned.inputs, name: moved})


def _static_shuffled(aligned: Any, prefix: str, rng: np.random.Generator) -> Any:
    """``aligned`` with the static covariates of one modality (columns ``prefix:...``) permuted between series."""
    cols = np.array([str(n).split(":")[0] == prefix for n in aligned.static_names])
    static = aligned.static.copy()
    static[:, cols] = static[rng.permutation(aligned.series.size)][:, cols]
    return replace(aligned, static=static)


def _mse(pred: np.ndarray, y: np.ndarray) -> float:
    ok = ~np.isnan(y)
    return float(np.mean((pred[ok] - y[ok]) ** 2))


def permutation(bt: Any, name: str, *, repeats: int = 10, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per input modality (not the target): the rise in test MSE when it is shuffled between series.

    Parameters
    ----------
    bt
        A backtest (``RunResult.backtest``) holding the fitted forecaster ``name`` and its task.
    name
        The forecaster to explain.
    repeats
        Shuffles per modality.
    seed
        Seed of the shuffles.

    Returns
    -------
    ``{modality: {"delta_mse", "low", "high", "baseline_mse", "repeats"}}``: mean rise and the 2.5 / 97.5 %
    quantiles over repeats; empty when the forecaster has no input besides the target.
    """
    model, task = bt.fitted[name], bt.tasks[name]
    data = task.data
    inputs = [m for m in data.inputs if m != data.target and not m.startswith("_")]
    statics = [] if data.static is None else sorted({str(n).split(":")[0] for n in data.static_names})
    if not inputs + statics or data.series.size < 2:
        return {}
    base = _mse(bt.forecasts[name]["test"].mean, bt.y_test)
    rng = np.random.default_rng(seed)
    out = {}
    for modality in inputs + statics:
        rises = []
        for _ in range(repeats):
            moved = _shuffled(data, modality, rng) if modality in inputs else _static_shuffled(data, modality, rng)
            shuffled = replace(task, data=moved)
            rises.append(_mse(model.predict(shuffled, bt.test_origins).mean, bt.y_test) - base)
        rises = np.asarray(rises)
        out[modality] = {"delta_mse": float(rises.mean()), "low": float(np.quantile(rises, 0.025)),
                         "high": float(np.quantile(rises, 0.975)), "baseline_mse": base, "repeats": repeats}
    return out
