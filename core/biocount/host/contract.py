"""The data contract: what an encoder returns for one modality.

One :class:`ModalityData` holds one modality of a study on a common time axis:

=================  ===========  =========================================================
field              shape        meaning
=================  ===========  =========================================================
``series``         (S,)         series ids (donor, culture, mouse ...), unique strings
``times``          (T,)         time points, strictly increasing floats
``features``       (F,)         feature names, unique strings
``values``         (S, T, F)    float32 encoded values; NaN = not observed
``static``         (S, G)       optional float32 per-series covariates (genotype, copy number)
``static_names``   (G,)         names of the static covariates
``counts``         (S, T, F)    optional raw counts behind ``values`` (for count likelihoods)
``size_factors``   (S, T)       optional library-size factors for ``counts`` (offsets)
``units``          :class:`Units`  optional: how to put ``values`` back in the data's units
``meta``           mapping      modality name, whether values are counts, the normalisation
=================  ===========  =========================================================

A series not measured at a time point has NaN there: the time axis is shared by all series of
the modality. A modality may be purely static (T = 0 and ``static`` given).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from biocount.errors import ContractError


class ModalityMeta(BaseModel):
    """What downstream stages need to know about how the values were made."""

    model_config = ConfigDict(extra="allow")

    modality: str = Field(description="Modality name, e.g. 'rna'.")
    is_counts: bool = Field(default=False, description="Whether the raw values are non-negative integer counts.")
    normalisation: str = Field(default="none", description="What was applied, e.g. 'size factors, log1p' (prose, "
                                                           "for people; code reads the typed fields).")
    log1p_rate: bool = Field(default=False, description="values are log1p(counts / size_factors), so count "
                                                        "likelihoods (poisson, negbin) can model them.")
    encoder: str = Field(default="", description="'distribution:component' of the encoder that made it.")
    notes: list[str] = Field(default_factory=list, description="One-line facts the run shows the user, e.g. a "
                                                                "transformation chosen from the data.")


class Units(BaseModel):
    """How an encoder's values map back to the data's own units, per feature (optional, plugin API 1.4).

    ``value = (g(x) - center) / scale`` with ``g`` = log1p (``log1p=True``) or the identity, so
    ``x = g⁻¹(value * scale + center)``: a monotone map, which is what lets biocount report forecasts,
    intervals and quantiles in the data's units (:mod:`biocount.evaluation.units`). An encoder whose values cannot be
    inverted feature by feature (a centred log-ratio, PCA scores) leaves ``units`` out; its forecasts stay on
    the encoded scale and the run says so.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    center: np.ndarray = Field(description="(F,) what was subtracted after g (0: nothing).")
    scale: np.ndarray = Field(description="(F,) what the centred values were divided by (1: nothing).")
    log1p: bool = Field(default=False, description="g is log1p (counts, rates); else the identity.")
    nonnegative: bool = Field(default=False, description="The data cannot be negative (counts): values below 0 "
                                                         "in data units are clipped to 0.")
    label: str = Field(default="the data's units", description="What one unit is, for axes and tables, e.g. "
                                                                 "'counts per median library'.")

    @model_validator(mode="before")
    @classmethod
    def _arrays(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("center", "scale"):
                if data.get(key) is not None:
                    data[key] = np.asarray(data[key], dtype=np.float64).ravel()
        return data

    def subset(self, index: np.ndarray) -> Units:
        return self.model_copy(update={"center": self.center[index], "scale": self.scale[index]})

    def summary(self) -> dict[str, Any]:
        """For run.json (and for :mod:`biocount.report.export`, which reads it back)."""
        return {"log1p": self.log1p, "nonnegative": self.nonnegative, "label": self.label,
                "center": self.center.tolist(), "scale": self.scale.tolist()}


def _strings(values: Any) -> np.ndarray:
    return np.asarray([str(v) for v in np.asarray(values, dtype=object).ravel()], dtype=object)


class ModalityData(BaseModel):
    """One encoded modality, validated on construction (see the module docstring).

    Raises
    ------
    ContractError
        With one sentence per violation: shapes, unsorted or duplicate times, duplicate names,
        infinite values, features never observed, and so on.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    series: np.ndarray
    times: np.ndarray
    features: np.ndarray
    values: np.ndarray
    meta: ModalityMeta
    static: np.ndarray | None = None
    static_names: np.ndarray | None = None
    counts: np.ndarray | None = None
    size_factors: np.ndarray | None = None
    units: Units | None = None

    @model_validator(mode="before")
    @classmethod
    def _coerce(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("series", "features", "static_names"):
            if data.get(key) is not None:
                data[key] = _strings(data[key])
        if data.get("times") is not None:
            data["times"] = np.asarray(data["times"], dtype=np.float64).ravel()
        for key in ("values", "static", "counts", "size_factors"):
            if data.get(key) is not None:
                arr = np.asarray(data[key])
                if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
                    raise ContractError([f"{key} must be numeric, got dtype {arr.dtype}."])
                data[key] = arr.astype(np.float32, copy=False)
        if isinstance(data.get("meta"), str):
            data["meta"] = {"modality": data["meta"]}
        return data

    @model_validator(mode="after")
    def _check(self) -> ModalityData:
        problems = list(_problems(self))
        if problems:
            raise ContractError(problems, where=f"modality '{self.meta.modality}'")
        return self

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def observed(self) -> np.ndarray:
        """Boolean (S, T, F): where a value was observed."""
        return ~np.isnan(self.values)

    def subset(self, *, series: Any = None, times: Any = None, features: Any = None) -> ModalityData:
        """A copy restricted to the given series ids, time points and feature names (order kept)."""
        si = _index(self.series, series, "series")
        ti = _index(self.times.astype(object), times, "times")
        fi = _index(self.features, features, "features")
        pick = np.ix_(si, ti, fi)
        return ModalityData(
            series=self.series[si], times=self.times[ti], features=self.features[fi],
            values=self.values[pick], meta=self.meta,
            static=None if self.static is None else self.static[si], static_names=self.static_names,
            counts=None if self.counts is None else self.counts[pick],
            size_factors=None if self.size_factors is None else self.size_factors[np.ix_(si, ti)],
            units=None if self.units is None else self.units.subset(fi),
        )

    def summary(self) -> str:
        s, t, f = self.shape
        observed = float(np.mean(self.observed)) if self.values.size else 0.0
        static = f", {self.static.shape[1]} static" if self.static is not None else ""
        return (f"{self.meta.modality}: {s} series x {t} times x {f} features{static}, "
                f"{observed:.0%} observed, {self.meta.normalisation}")


def _index(names: np.ndarray, wanted: Any, what: str) -> np.ndarray:
    if wanted is None:
        return np.arange(len(names))
    position = {v: i for i, v in enumerate(names.tolist())}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise ContractError([f"unknown {what}: {', '.join(map(str, missing[:5]))}."])
    return np.asarray([position[w] for w in wanted], dtype=int)


def _duplicates(names: np.ndarray) -> list[str]:
    uniq, counts = np.unique(names.astype(str), return_counts=True)
    return uniq[counts > 1].tolist()


def _problems(d: ModalityData):
    if d.series.ndim != 1 or len(d.series) == 0:
        yield "series must be a non-empty 1-D list of ids."
    if d.features.ndim != 1:
        yield "features must be a 1-D list of names."
    if d.values.ndim != 3:
        yield f"values must be 3-D (series x times x features), got {d.values.ndim}-D."
        return
    expected = (len(d.series), len(d.times), len(d.features))
    if d.values.shape != expected:
        yield (f"values have shape {d.values.shape} but series, times and features give {expected}.")
        return
    if dup := _duplicates(d.series):
        yield f"series ids are duplicated: {', '.join(dup[:5])}."
    if dup := _duplicates(d.features):
        yield f"feature names are duplicated: {', '.join(dup[:5])}."
    if not np.all(np.isfinite(d.times)):
        yield "times contain NaN or infinite values."
    elif np.any(np.diff(d.times) == 0):
        yield "times contain duplicates; each time point must appear once."
    elif np.any(np.diff(d.times) < 0):
        yield "times are not sorted in increasing order."
    if np.isinf(d.values).any():
        yield "values contain infinite numbers; use NaN for unobserved entries."
    if d.values.size:
        never = ~np.any(~np.isnan(d.values), axis=(0, 1))
        if never.any():
            names = d.features[never].tolist()
            yield f"{int(never.sum())} feature(s) are never observed: {', '.join(map(str, names[:5]))}."
    if len(d.times) == 0 and d.static is None:
        yield "a modality needs time points or static covariates."
    if d.static is not None:
        if d.static.ndim != 2 or d.static.shape[0] != len(d.series):
            yield f"static must be (series x covariates) = ({len(d.series)}, G), got {d.static.shape}."
        elif d.static_names is None or len(d.static_names) != d.static.shape[1]:
            yield "static_names must name every static covariate column."
        elif not np.all(np.isfinite(d.static)):
            yield "static covariates contain NaN or infinite values; impute or drop them in the encoder."
    elif d.static_names is not None and len(d.static_names):
        yield "static_names are given without static values."
    yield from _attached_problems(d)


def _attached_problems(d: ModalityData):
    """What is attached to the values: raw counts, size factors, units, and the meta flags about them."""
    if d.counts is not None:
        if d.counts.shape != d.values.shape:
            yield f"counts have shape {d.counts.shape}, values {d.values.shape}; they must match."
        elif np.nanmin(d.counts, initial=0) < 0:
            yield "counts contain negative numbers."
    if d.size_factors is not None:
        if d.size_factors.shape != d.values.shape[:2]:
            yield f"size_factors must be (series x times) = {d.values.shape[:2]}, got {d.size_factors.shape}."
        elif np.nanmin(d.size_factors, initial=1) <= 0:
            yield "size_factors must be positive."
    if d.units is not None and (d.units.center.shape != d.features.shape or d.units.scale.shape != d.features.shape):
        yield (f"units.center and units.scale must have one entry per feature ({len(d.features)}), got "
               f"{d.units.center.shape[0]} and {d.units.scale.shape[0]}.")
    elif d.units is not None and not (np.all(np.isfinite(d.units.scale)) and np.all(d.units.scale > 0)
                                      and np.all(np.isfinite(d.units.center))):
        yield "units.scale must be positive and finite, units.center finite."
    if d.meta.is_counts and d.counts is None:
        yield "meta.is_counts is true but no raw counts are attached; pass counts=."
    if d.meta.log1p_rate:
        if d.counts is None or d.size_factors is None:
            yield "meta.log1p_rate is true but counts or size_factors are missing; pass both."
        elif d.counts.shape == d.values.shape and d.size_factors.shape == d.values.shape[:2]:
            with np.errstate(all="ignore"):
                expected = np.log1p(d.counts / d.size_factors[..., None])
            both = ~np.isnan(expected) & ~np.isnan(d.values)
            if not np.allclose(d.values[both], expected[both], rtol=1e-4, atol=1e-4):
                yield "meta.log1p_rate is true but values differ from log1p(counts / size_factors)."


def cube(series: Any, times: Any, X: np.ndarray, *, series_order: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place rows of (series, time) -> features into a (series x times x features) array, NaN elsewhere.

    Returns the series ids, the sorted union of time points and the cube. Raises if a
    (series, time) pair occurs twice: aggregate single cells first.
    """
    from biocount.errors import BiocountInputError

    series = np.asarray(series).astype(str)
    times = np.asarray(times, dtype=np.float64)
    X = np.asarray(X, dtype=np.float32)
    ids = np.unique(series) if series_order is None else np.asarray(series_order).astype(str)
    grid = np.unique(times)
    si = {s: i for i, s in enumerate(ids.tolist())}
    rows = np.asarray([si.get(s, -1) for s in series.tolist()])
    cols = np.searchsorted(grid, times)
    keep = rows >= 0
    flat = rows[keep] * grid.size + cols[keep]
    if np.unique(flat).size != flat.size:
        dup = np.flatnonzero(np.bincount(flat) > 1)[0]
        raise BiocountInputError(
            f"duplicate (series, time) rows: series '{ids[dup // grid.size]}' at time {grid[dup % grid.size]:g} "
            "appears more than once; aggregate replicates or cells first"
        )
    out = np.full((ids.size, grid.size, X.shape[1]), np.nan, dtype=np.float32)
    out[rows[keep], cols[keep]] = X[keep]
    return ids, grid, out
