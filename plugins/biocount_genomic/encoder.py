"""The genomic encoder.

- Static tables (one row per series, no time column): copy numbers, genotype dosages (0/1/2),
  mutation indicators become static covariates, standardised and optionally reduced by PCA,
  both fitted on training series. NaN is refused (static covariates initialise the LSTM state).
- Time-varying tables (a time column, e.g. variant allele frequencies): values over time,
  standardised on training rows, NaN kept as missing.
"""

from __future__ import annotations

import numpy as np

from biocount import BiocountInputError, ModalityData
from biocount.contract import cube
from biocount.encoding import PCA, Standardizer, check_finite, is_single_cell, matrix, train_mask

from .options import GenomicOptions


class GenomicEncoder:
    def __init__(self, options: GenomicOptions) -> None:
        self.options = options

    def _matrix(self, adata) -> np.ndarray:
        X = matrix(adata, self.options.layer, "genomic")
        X = X.toarray() if hasattr(X, "toarray") else X
        check_finite(X, "genomic", adata.var_names)
        self.static_ = "time" not in adata.obs
        if self.static_ and np.isnan(X).any():
            row, col = np.argwhere(np.isnan(X))[0]
            raise BiocountInputError(
                f"genomic: static feature '{adata.var_names[col]}' is missing for series "
                f"'{adata.obs['series'].iloc[row]}'; impute it (e.g. the cohort's modal genotype) or drop the feature"
            )
        if not self.static_ and is_single_cell(adata):
            raise BiocountInputError("genomic: duplicate (series, time) rows; one row per series and time")
        return X

    def fit(self, adata, *, train=None) -> GenomicEncoder:
        X = self._matrix(adata)
        rows = X[train_mask(adata, train)]
        self.scaler_ = Standardizer().fit(rows) if self.options.standardize else None
        scaled = self.scaler_.transform(rows) if self.scaler_ else rows
        self.pca_ = PCA(self.options.n_pcs).fit(scaled) if (self.static_ and self.options.n_pcs) else None
        self.features_ = adata.var_names.to_numpy()
        return self

    def transform(self, adata) -> ModalityData:
        if not hasattr(self, "features_"):
            raise BiocountInputError("genomic: transform() called before fit()")
        X = self._matrix(adata)
        scaled = self.scaler_.transform(X) if self.scaler_ else X
        meta = {"modality": "genomic", "normalisation": "standardised" if self.scaler_ else "none"}
        series = adata.obs["series"].to_numpy()
        if self.static_:
            names = self.features_
            if self.pca_ is not None:
                scaled = self.pca_.transform(scaled)
                names = [f"PC{i + 1}" for i in range(scaled.shape[1])]
                meta["normalisation"] += f", PCA({len(names)})"
            order = np.argsort(series.astype(str), kind="stable")
            return ModalityData(series=series[order], times=np.zeros(0), features=[],
                                values=np.zeros((len(series), 0, 0)), static=scaled[order],
                                static_names=names, meta=meta)
        ids, grid, values = cube(series, adata.obs["time"].to_numpy(), scaled)
        return ModalityData(series=ids, times=grid, features=self.features_, values=values, meta=meta)
