"""The forecaster interface every model shares (core's and plugins'), and origin bookkeeping.

A forecaster is built from its options, then::

    fit(task) -> self
    predict(task, origins) -> Forecast       # mean (N, H, F), optional quantiles

``task.data`` is the aligned study. ``task.train_end[s]`` is the last grid index of series ``s`` that
fitting may see (targets included): nothing after it may influence fitted state. An origin is a
(series index, grid index) pair; forecasts are for grid steps origin+1 ... origin+H, in the target's
encoded value scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .align import Aligned
from .errors import BiocountInputError


@dataclass(frozen=True)
class ForecastTask:
    data: Aligned
    horizon: int
    lookback: int
    train_end: np.ndarray  # (S,) int: last grid index usable for fitting; -1 = none
    val_origins: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=int))  # (N, 2)
    seed: int = 0
    val_end: np.ndarray | None = None  # (S,) last grid index validation targets may reach
    train_series: np.ndarray | None = None  # (S,) bool: series a global model may learn weights from

    def __post_init__(self) -> None:
        T = self.data.times.size
        if self.horizon < 1:
            raise BiocountInputError(f"horizon must be at least 1, got {self.horizon}")
        if self.lookback < 1:
            raise BiocountInputError(f"lookback must be at least 1, got {self.lookback}")
        if self.horizon >= T:
            raise BiocountInputError(f"horizon {self.horizon} leaves no history: the series have {T} time points; "
                                     f"use --horizon {max(1, T // 4)} or less")
        longest = int(self.train_end.max()) + 1 if self.train_end.size else 0
        if self.lookback > longest:
            raise BiocountInputError(f"lookback {self.lookback} is longer than the training part ({longest} time "
                                     f"points); use --lookback {max(1, longest // 2)} or less")


@dataclass(frozen=True)
class Forecast:
    mean: np.ndarray  # (N, H, F)
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)  # level q -> (N, H, F)


def present_origins(data: Aligned, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All (series, grid index) pairs with lo[s] <= index <= hi[s] where the target was measured."""
    s, t = np.nonzero(data.present)
    keep = (t >= lo[s]) & (t <= hi[s])
    return np.stack([s[keep], t[keep]], axis=1).astype(int)
