"""The forecaster interface every model shares (core's and plugins'), and origin bookkeeping.

A forecaster is built from its options and follows :class:`Forecaster`::

    fit(task) -> self
    predict(task, origins) -> Forecast       # mean (N, H, F), optional quantiles
    report() -> dict                         # what a lab should know: notes, fallbacks, fitted details

What it can do is declared on its spec (:class:`Capabilities`), so the engine decides without names
(which forecasters a modality ablation applies to, how the truncation test deletes data).
``task.data`` is the aligned study. ``task.train_end[s]`` is the last grid index of series ``s`` that
fitting may see (targets included): nothing after it may influence fitted state. An origin is a
(series index, grid index) pair; forecasts are for grid steps origin+1 ... origin+H, in the target's
encoded value scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from biocount.errors import BiocountInputError
from biocount.host.specs import Capabilities
from biocount.study.align import Aligned

__all__ = ["Capabilities", "Counts", "Forecast", "ForecastTask", "Forecaster", "present_origins"]


@runtime_checkable
class Forecaster(Protocol):
    """What every forecaster object (built by its spec's factory) provides."""

    options: Any

    def fit(self, task: ForecastTask) -> Forecaster:
        """Learn from ``task.data`` up to ``task.train_end`` (validation origins may guide early stopping)."""
        ...

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        """Forecast H steps from each origin ((N, 2) series and grid index), using data up to the origin only."""
        ...

    def report(self) -> dict[str, Any]:
        """JSON-able facts for run.json: ``notes`` (list of one-line strings shown on the console),
        ``fallback`` ({"series": k, "of": n, "to": "persistence"} when some fits fell back), anything else."""
        ...


@dataclass(frozen=True)
class ForecastTask:
    data: Aligned
    horizon: int
    train_end: np.ndarray  # (S,) int: last grid index usable for fitting; -1 = none
    val_origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=int))  # (N, 2)
    seed: int = 0
    val_end: np.ndarray | None = None  # (S,) last grid index validation targets may reach
    train_series: np.ndarray | None = None  # (S,) bool: series a global model may learn weights from

    def __post_init__(self) -> None:
        T = self.data.times.size
        if self.horizon < 1:
            raise BiocountInputError(f"horizon must be at least 1, got {self.horizon}")
        if self.horizon >= T:
            raise BiocountInputError(f"horizon {self.horizon} leaves no history: the series have {T} time points; "
                                     f"use --horizon {max(1, T // 4)} or less")


@dataclass(frozen=True)
class Counts:
    """A count predictive distribution per point, on the target's raw counts (``Aligned.y_counts``):
    Poisson with mean ``mu`` (``size`` None), or negative binomial with mean ``mu`` and size ``size``
    (variance mu + mu² / size), as a forecaster with a count likelihood fits it."""

    mu: np.ndarray  # (N, H, F) expected count
    size: np.ndarray | None = None  # broadcastable to mu

    def rows(self, rows: slice | np.ndarray) -> Counts:
        size = self.size
        if size is not None and np.ndim(size) == 3 and np.shape(size)[0] == self.mu.shape[0]:
            size = size[rows]
        return Counts(self.mu[rows], size)


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray  # (N, H, F)
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)  # level q -> (N, H, F)
    sd: np.ndarray | None = None  # (N, H, F): a normal predictive distribution N(mean, sd²), where the model has one
    counts: Counts | None = None  # its count distribution, where the model has a count likelihood

    def rows(self, rows: slice | np.ndarray) -> Forecast:
        """The forecasts of some origins only."""
        return Forecast(self.mean[rows], {q: v[rows] for q, v in self.quantiles.items()},
                        None if self.sd is None else self.sd[rows], None if self.counts is None else self.counts.rows(rows))


def present_origins(data: Aligned, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All (series, grid index) pairs with lo[s] <= index <= hi[s] where the target was measured."""
    s, t = np.nonzero(data.present)
    keep = (t >= lo[s]) & (t <= hi[s])
    return np.stack([s[keep], t[keep]], axis=1).astype(int)
