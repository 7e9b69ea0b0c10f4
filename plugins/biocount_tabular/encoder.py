"""The tabular encoder: any numeric series x time table.

Counts: log1p, then per-feature scaling fitted on training rows; raw counts kept.
Continuous values: per-feature scaling fitted on training rows. NaN stays missing.
"""

from __future__ import annotations

import numpy as np

from biocount import BiocountInputError, ModalityData, Units
from biocount.contract import cube
from biocount.encoding import Standardizer, check_counts, check_finite, looks_like_counts, matrix, train_mask

from .options import TabularOptions


class TabularEncoder:
    def __init__(self, options: TabularOptions) -> None:
        self.options = options

    def _matrix(self, adata) -> np.ndarray:
        if "time" not in adata.obs:
            raise BiocountInputError("tabular: the modality has no time column; for per-series covariates (one row "
                                     "per series: diets, treatments) use the genomic encoder, e.g. --modalities "
                                     "diet=genomic, which makes them static covariates")
        X = matrix(adata, self.options.layer, "tabular")
        X = X.toarray() if hasattr(X, "toarray") else X
        check_finite(X, "tabular", adata.var_names)
        return X

    def _values(self, X: np.ndarray) -> np.ndarray:
        return np.log1p(X) if self.counts_ else X

    def fit(self, adata, *, train=None) -> TabularEncoder:
        X = self._matrix(adata)[train_mask(adata, train)]  # every decision from training rows only
        self.counts_ = looks_like_counts(X) if self.options.counts is None else self.options.counts
        self.notes_ = []
        if self.options.counts is None and not self.counts_:
            why = "negative values" if np.nanmin(X, initial=0.0) < 0 else "non-integer values"
            self.notes_.append(f"tabular: treated as continuous (no log1p): the training rows hold {why}; set the "
                               "option counts: true or false to decide yourself")
        if self.counts_:
            check_counts(X, "tabular", "set the tabular option counts: false for continuous values")
        rows = self._values(X)
        self.scaler_ = Standardizer().fit(rows) if self.options.scale else None
        self.features_ = adata.var_names.to_numpy()
        return self

    def transform(self, adata) -> ModalityData:
        if not hasattr(self, "features_"):
            raise BiocountInputError("tabular: transform() called before fit()")
        X = self._matrix(adata)
        if self.counts_:
            check_counts(X, "tabular", "set the tabular option counts: false for continuous values")
        values = self._values(X)
        if self.scaler_ is not None:
            values = self.scaler_.transform(values)
        series, times = adata.obs["series"].to_numpy(), adata.obs["time"].to_numpy()
        ids, grid, cv = cube(series, times, values)
        steps = ["log1p"] if self.counts_ else []
        steps += ["scaled"] if self.scaler_ else []
        meta = {"modality": "tabular", "is_counts": bool(self.counts_), "normalisation": ", ".join(steps) or "none",
                "notes": self.notes_}
        units = self._units()
        if self.counts_:
            _, _, cc = cube(series, times, X)
            return ModalityData(series=ids, times=grid, features=self.features_, values=cv, counts=cc, meta=meta,
                                units=units)
        return ModalityData(series=ids, times=grid, features=self.features_, values=cv, meta=meta, units=units)

    def _units(self) -> Units:
        """values = (g(x) - mean) / sd with g = log1p for counts: invertible feature by feature."""
        n = self.features_.size
        center = self.scaler_.mean_ if self.scaler_ is not None else np.zeros(n)
        scale = self.scaler_.scale_ if self.scaler_ is not None else np.ones(n)
        return Units(center=center, scale=scale, log1p=bool(self.counts_), nonnegative=bool(self.counts_),
                     label="counts" if self.counts_ else "the data's units")
