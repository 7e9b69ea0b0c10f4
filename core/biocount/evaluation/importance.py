"""Which modality drove the forecasts: permutation importance on the test origins.

For a fitted forecaster that uses input modalities, each non-target modality in turn (static ones such
as genomic covariates too) has its whole series shuffled between series (its values, observed flags and gaps move together, so each shuffled
series keeps its own temporal structure but no longer belongs to the series it is paired with); the
forecaster predicts the same test origins again, and the importance is the rise in test MSE. Repeated
with different shuffles, the mean and a 95 % interval over repeats are reported. Nothing is refitted,
and only test points are scored, as for every other number in the report. A study with more than
:data:`MAX_ORIGINS` test origins is scored on a seeded sample of them (the same for every shuffle, said in
the result): each shuffle is a forecast of every origin scored, so without a bound this stage would grow
with the study (10 forecasts of 100,000 series' test origins per modality).

What it cannot prove: a modality that is redundant with another (or with the target's own history) can
show no importance although it carries signal; a rise in error says the model *uses* the modality on
these origins, not that the biology is causal. ``--ablate-modalities`` (refitting without it) answers the
other question: would a model without it do as well.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from biocount.study.align import modality_of

MAX_ORIGINS = 16_384  # test origins scored per shuffle; above, a seeded sample of this many


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
    cols = np.array([m == prefix for m in aligned.static_modalities()])
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
    ``{modality: {"delta_mse", "low", "high", "baseline_mse", "repeats", "origins", "of"}}``: mean rise and
    the 2.5 / 97.5 % quantiles over repeats, on ``origins`` of the ``of`` test origins (all of them up to
    :data:`MAX_ORIGINS`); empty when the forecaster has no input besides the target.
    """
    model, task = bt.fitted[name], bt.tasks[name]
    data = task.data
    inputs = [m for m in data.inputs if m != data.target and not m.startswith("_")]
    statics = sorted(set(data.static_modalities())) if data.static is not None else []
    if not inputs + statics or data.series.size < 2:
        return {}
    n = bt.test_origins.shape[0]
    # the sample draws from its own generator: below the bound the shuffles are those of every earlier run
    rows = np.arange(n) if n <= MAX_ORIGINS else \
        np.sort(np.random.default_rng([seed, n]).choice(n, MAX_ORIGINS, replace=False))
    origins, y = bt.test_origins[rows], bt.y_test[rows]
    base = _mse(bt.forecasts[name]["test"].mean[rows], y)
    rng = np.random.default_rng(seed)
    out = {}
    for modality in inputs + statics:
        rises = []
        for _ in range(repeats):
            moved = _shuffled(data, modality, rng) if modality in inputs else _static_shuffled(data, modality, rng)
            shuffled = replace(task, data=moved)
            rises.append(_mse(model.predict(shuffled, origins).mean, y) - base)
        rises = np.asarray(rises)
        out[modality] = {"delta_mse": float(rises.mean()), "low": float(np.quantile(rises, 0.025)),
                         "high": float(np.quantile(rises, 0.975)), "baseline_mse": base, "repeats": repeats,
                         "origins": int(rows.size), "of": int(n)}
    return out


class Attributions:
    """Integrated-gradient attributions of one forecaster on the test origins (for the LSTM: :mod:`biocount.forecasters.lstm.attribution`).

    ``abs[modality]`` is the mean |IG| over windows, shaped (horizon, target, lookback step, feature);
    ``days`` (horizon, lookback step) the mean days from each input step to the forecast's target time
    (input steps lie ``every`` days apart when the model reads its history at regular times, else on
    the grid).
    """

    def __init__(self, raw: dict[str, Any], *, data: Any, targets: np.ndarray, origins: np.ndarray,
                 lookback: int, horizon: int, steps: int, every: float | None = None) -> None:
        self.abs, self.static_abs = raw["abs"], raw["static_abs"]
        self.features = {n: np.asarray(data.inputs[n].features).astype(str) for n in self.abs}
        self.static_names = None if data.static_names is None else np.asarray(data.static_names).astype(str)
        self.targets = np.asarray(data.target_features)[targets].astype(str)
        self.offsets = np.arange(-lookback + 1, 1)
        t = origins[:, 1]
        future = data.extended_times(horizon)
        target_time = future[t[:, None] + np.arange(1, horizon + 1)[None, :]]  # (N, H)
        if every is None:
            step_time = data.times[np.clip(t[:, None] + self.offsets[None, :], 0, None)]  # (N, L)
        else:
            step_time = data.times[t][:, None] + every * self.offsets[None, :]
        self.days = (target_time[:, :, None] - step_time[:, None, :]).mean(0)  # (H, L)
        delta, total = raw["delta"], raw["total"]
        self.completeness = float(np.max(np.abs(total - delta)) / max(float(np.max(np.abs(delta))), 1e-12))
        self.windows, self.steps = int(origins.shape[0]), steps

    def totals(self) -> dict[str, float]:
        """Share of the summed |IG| per modality (static covariates under their own modality's name)."""
        out = {n: float(a.sum()) for n, a in self.abs.items()}
        if self.static_abs is not None:
            for j, name in enumerate(self.static_names):
                key = modality_of(name)
                out[key] = out.get(key, 0.0) + float(self.static_abs[..., j].sum())
        whole = sum(out.values()) or 1.0
        return {k: v / whole for k, v in sorted(out.items(), key=lambda kv: -kv[1])}

    def profile(self, target: str, modality: str, feature: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean |IG| of one input feature for one target, by whole days before the target time."""
        k = int(np.flatnonzero(self.targets == target)[0])
        f = int(np.flatnonzero(self.features[modality] == feature)[0])
        values = self.abs[modality][:, k, :, f].ravel()
        days = np.rint(self.days).astype(int).ravel()
        keep = self.days.ravel() >= 0
        grid = np.unique(days[keep])
        return grid, np.array([values[keep & (days == d)].mean() for d in grid])

    def summary(self, *, top: int = 20) -> dict[str, Any]:
        """What run.json and the report keep: shares per modality, per feature and per lookback step."""
        whole = sum(float(a.sum()) for a in self.abs.values())
        whole = (whole + (0.0 if self.static_abs is None else float(self.static_abs.sum()))) or 1.0
        mods = {}
        for n, a in self.abs.items():
            by_feature = a.sum(axis=(0, 1, 2)) / whole
            order = np.argsort(-by_feature)[:top]
            mods[n] = {"share": float(a.sum() / whole), "by_step": (a.sum(axis=(0, 1, 3)) / whole).tolist(),
                       "features": self.features[n][order].tolist(), "by_feature": by_feature[order].tolist(),
                       "matrix": (a.sum(axis=(0, 1))[:, order].T / whole).tolist()}  # (top features, steps)
        per_target = {}
        for k, name in enumerate(self.targets):
            cells = [(float(a[:, k, :, f].sum()), n, str(self.features[n][f]))
                     for n, a in self.abs.items() for f in range(a.shape[-1])]
            cells.sort(reverse=True)
            norm = sum(c[0] for c in cells) or 1.0
            per_target[str(name)] = [[n, f, v / norm] for v, n, f in cells[:5]]
        return {"method": "integrated gradients", "steps": self.steps, "windows": self.windows,
                "targets": self.targets.tolist(), "offsets": self.offsets.tolist(),
                "days_before_target": np.round(self.days, 3).tolist(), "shares": self.totals(),
                "modalities": mods, "top_inputs": per_target, "completeness_error": self.completeness}


def attributions(bt: Any, name: str, *, steps: int = 16, max_windows: int = 256,
                 max_targets: int = 16) -> Attributions | None:
    """Integrated gradients of forecaster ``name`` on (up to ``max_windows`` evenly spaced) test origins.

    The forecaster must declare ``Capabilities.explainable`` (an ``attribute`` method: the shared LSTM); None
    without test origins. With more than ``max_targets`` target features an evenly spaced subset is explained
    (one backward pass per target and horizon), and the summary names which.
    """
    model, task = bt.fitted[name], bt.tasks[name]
    if bt.test_origins.shape[0] == 0:
        return None
    origins = bt.test_origins
    if origins.shape[0] > max_windows:
        origins = origins[np.linspace(0, origins.shape[0] - 1, max_windows).round().astype(int)]
    F = task.data.target_features.size
    targets = np.unique(np.linspace(0, F - 1, min(F, max_targets)).round().astype(int))
    raw = model.attribute(task, origins, targets=targets, steps=steps)
    return Attributions(raw, data=task.data, targets=targets, origins=origins, lookback=model.lookback,
                        horizon=model.horizon, steps=steps, every=getattr(model, "step", None))
