"""Put several encoded modalities on one time grid, looking only backwards in time.

The grid is the target modality's time points (``grid="target"``, default) or the union of all
modalities' time points (``grid="union"``). For every input modality and grid time ``t``:

- ``values[s, t, f]``: the latest observation of feature f of series s at or before t (NaN if none yet);
- ``observed[s, t]``: whether the modality was measured at exactly t (else the value is carried);
- ``gap[s, t]``: time since the modality's latest measurement at or before t (inf if none yet).

Nothing ever looks forward. Series of the target that a modality lacks are kept, fully masked, and
reported; a modality sharing no series with the target is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from biocount.errors import BiocountInputError
from biocount.host.contract import ModalityData, Units


@dataclass(frozen=True)
class AlignedInput:
    """One modality on the grid."""

    features: np.ndarray
    values: np.ndarray  # (S, T, F) float32, carried forward, NaN before the first observation
    observed: np.ndarray  # (S, T) bool
    gap: np.ndarray  # (S, T) float32, inf before the first observation
    meta: dict


@dataclass(frozen=True)
class Aligned:
    """All modalities of a study on the target's grid."""

    target: str
    series: np.ndarray  # (S,)
    times: np.ndarray  # (T,)
    present: np.ndarray  # (S, T) bool: the target was measured (any feature) at this grid time
    y: np.ndarray  # (S, T, F_y) target values, exact observations only, NaN elsewhere
    target_features: np.ndarray
    inputs: dict[str, AlignedInput]
    y_counts: np.ndarray | None = None  # (S, T, F_y) raw counts behind y, when the target is counts
    size_factors: np.ndarray | None = None  # (S, T)
    static: np.ndarray | None = None  # (S, G)
    static_names: np.ndarray | None = None
    report: list[str] = field(default_factory=list)
    target_index: np.ndarray | None = None  # (F_y,) positions of the target features in inputs[target]
    units: Units | None = None  # how y maps back to the data's units (the target encoder's; None: it cannot)

    def static_modalities(self) -> list[str]:
        """The modality each static covariate column comes from (columns are named ``modality:feature``)."""
        return [] if self.static_names is None else [modality_of(n) for n in self.static_names]

    def last_target(self, origins: np.ndarray) -> np.ndarray:
        """(N, F_y) each target feature's last observed value at or before each origin ((N, 2) series and
        grid index): persistence, the forecast every baseline and fallback starts from (NaN before the
        first observation). Plugin API 1.5."""
        return self.inputs[self.target].values[origins[:, 0], origins[:, 1]][:, self.target_index]

    def extended_times(self, horizon: int) -> np.ndarray:
        """The grid's times continued ``horizon`` steps past its end by the median step, so late origins
        still know how far ahead each horizon lies."""
        step = float(np.median(np.diff(self.times))) if self.times.size > 1 else 1.0
        return np.concatenate([self.times, self.times[-1] + step * np.arange(1, horizon + 1)])


def modality_of(static_name: str) -> str:
    """The modality of a static covariate column named ``modality:feature`` (the one place that name is read)."""
    return str(static_name).split(":")[0]


def _on_grid(d: ModalityData, series: np.ndarray, grid: np.ndarray) -> AlignedInput:
    S, T = series.size, grid.size
    row = {s: i for i, s in enumerate(d.series.tolist())}
    take = np.array([row.get(s, -1) for s in series.tolist()])
    have = take >= 0
    values = np.full((S, T, d.values.shape[2]), np.nan, dtype=np.float32)
    observed = np.zeros((S, T), dtype=bool)
    gap = np.full((S, T), np.inf, dtype=np.float32)
    if not have.any():
        return AlignedInput(d.features, values, observed, gap, d.meta.model_dump())
    src = d.values[take[have]]  # (S', Tm, F)
    tm = d.times
    # forward fill along time, feature by feature: index of the last observed entry so far
    obs = ~np.isnan(src)
    idx = np.where(obs, np.arange(tm.size)[None, :, None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(src, np.maximum(idx, 0), axis=1)
    filled[idx < 0] = np.nan
    # the latest modality time at or before each grid time (side="right": t itself counts, nothing later)
    at = np.searchsorted(tm, grid, side="right") - 1
    valid = at >= 0
    picked = np.full((src.shape[0], T, src.shape[2]), np.nan, dtype=np.float32)
    picked[:, valid] = filled[:, at[valid]]
    values[have] = picked
    row_obs = obs.any(axis=2)  # (S', Tm): the modality was measured then
    last = np.where(row_obs, np.arange(tm.size)[None, :], -1)
    np.maximum.accumulate(last, axis=1, out=last)
    last_at = np.where(valid[None, :], last[:, np.maximum(at, 0)], -1)  # (S', T)
    g = np.where(last_at >= 0, grid[None, :] - tm[np.maximum(last_at, 0)], np.inf)
    gap[have] = g
    exact = np.isin(grid, tm)
    fresh = np.zeros((src.shape[0], T), dtype=bool)
    fresh[:, exact] = row_obs[:, np.searchsorted(tm, grid[exact])]
    observed[have] = fresh
    return AlignedInput(d.features, values, observed, gap, d.meta.model_dump())


def align(modalities: dict[str, ModalityData], *, target: str, target_features: list[str] | None = None,
          grid: Literal["target", "union"] = "target") -> Aligned:
    """Align encoded modalities onto the target's grid (see the module docstring).

    Parameters
    ----------
    modalities
        Encoded modalities by name, the target among them.
    target
        Name of the modality to forecast.
    target_features
        Forecast only these features of the target (default: all); the rest stay inputs.
    grid
        ``target``: the target's time points; ``union``: every modality's time points.
    """
    tgt = _target(modalities, target, target_features)
    series = tgt.series
    times = tgt.times if grid == "target" else np.unique(np.concatenate(
        [d.times for d in modalities.values() if d.times.size]))
    report: list[str] = []
    inputs, statics, static_names = {}, [], []
    for name, d in modalities.items():
        shared = np.intersect1d(series, d.series)
        if shared.size == 0:
            raise BiocountInputError(
                f"modality '{name}' has {d.series.size} series, the target '{target}' has {series.size}, and they "
                f"share none (e.g. '{d.series[0]}' vs '{series[0]}'): to share it with every target series use "
                f"--link {name}=all{'' if d.series.size == 1 else ' (one series only)'}, or --link {name}=FILE "
                "mapping each target series to one of its series; otherwise check the series ids or --series-key"
            )
        missing = np.setdiff1d(series, d.series)
        if missing.size:
            report.append(f"modality '{name}' lacks {missing.size} series of the target "
                          f"({', '.join(missing[:5])}): kept, fully masked")
        extra = np.setdiff1d(d.series, series)
        if extra.size:
            report.append(f"modality '{name}' has {extra.size} series the target lacks: ignored")
        if d.static is not None:
            row = {s: i for i, s in enumerate(d.series.tolist())}
            block = np.zeros((series.size, d.static.shape[1]), dtype=np.float32)
            for i, s in enumerate(series.tolist()):
                if s in row:
                    block[i] = d.static[row[s]]
            statics.append(block)
            static_names += [f"{name}:{n}" for n in d.static_names]
        if d.values.shape[1] and d.values.shape[2]:
            inputs[name] = _on_grid(d, series, times)
    at = np.searchsorted(tgt.times, times)
    exact = np.isin(times, tgt.times)
    y = np.full((series.size, times.size, tgt.values.shape[2]), np.nan, dtype=np.float32)
    y[:, exact] = tgt.values[:, at[exact]]
    y_counts = size_factors = None
    if tgt.counts is not None:
        y_counts = np.full_like(y, np.nan)
        y_counts[:, exact] = tgt.counts[:, at[exact]]
    if tgt.size_factors is not None:
        size_factors = np.ones((series.size, times.size), dtype=np.float32)
        size_factors[:, exact] = tgt.size_factors[:, at[exact]]
        size_factors = np.nan_to_num(size_factors, nan=1.0)
    return Aligned(
        target=target, series=series, times=times, present=~np.isnan(y).all(axis=2), y=y,
        target_features=tgt.features, inputs=inputs, y_counts=y_counts, size_factors=size_factors,
        static=np.concatenate(statics, axis=1) if statics else None,
        static_names=np.asarray(static_names) if statics else None, report=report,
        target_index=_positions(modalities[target].features, tgt.features), units=tgt.units,
    )


def _target(modalities: dict[str, ModalityData], target: str, target_features: list[str] | None) -> ModalityData:
    """The target modality, restricted to the features forecast; one-line errors."""
    if target not in modalities:
        raise BiocountInputError(f"target modality '{target}' is not among the modalities: "
                                 f"{', '.join(modalities)}")
    tgt = modalities[target]
    if tgt.values.shape[1] == 0:
        raise BiocountInputError(f"target modality '{target}' is static (no time points); choose another target")
    if target_features is not None:
        unknown = [f for f in target_features if f not in set(tgt.features.tolist())]
        if unknown:
            raise BiocountInputError(
                f"target feature(s) {', '.join(unknown)} not in modality '{target}'; it has "
                f"{', '.join(tgt.features[:10].tolist())}{' ...' if tgt.features.size > 10 else ''}")
        tgt = tgt.subset(features=target_features)
    return tgt


def _positions(names: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    where = {n: i for i, n in enumerate(names.tolist())}
    return np.asarray([where[w] for w in wanted.tolist()], dtype=int)


def flat_target_notes(aligned: Aligned) -> list[str]:
    """A note for target features that never change within any series (scores would mean nothing)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing series has no spread: not "flat"
        spread = np.nanmax(np.nanstd(aligned.y, axis=1), axis=0)  # the largest within-series spread per feature
    flat = [str(f) for f, sd in zip(aligned.target_features, spread, strict=True) if sd == 0]
    if not flat:
        return []
    return [f"target feature(s) {', '.join(flat[:5])} never change within any series: every forecaster is trivially "
            "exact there and MSE / R² mean nothing; check the data and the encoder's normalisation"]
