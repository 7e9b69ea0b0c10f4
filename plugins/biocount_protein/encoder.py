"""The protein encoder.

- ``adt`` (CITE-seq antibody counts): single cells are summed per (series, time); values are the
  centred log-ratio per sample, log1p(x) minus the sample's mean log1p over proteins. Raw counts
  and size factors (total / training median) are kept for count likelihoods.
- ``ms`` (mass-spec intensities): log2 (zeros become missing), then per-sample median centring
  re-based on the median of training samples' medians, so values keep a familiar scale.
Missing values stay NaN: nothing is imputed.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount import BiocountInputError, ModalityData
from biocount.contract import cube
from biocount.encoding import check_finite, is_single_cell, looks_like_counts, matrix, train_mask
from biocount.pseudobulk import aggregate

from .options import ProteinOptions


def _row_median(X: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing sample has no median
        return np.nanmedian(X, axis=1)


class ProteinEncoder:
    def __init__(self, options: ProteinOptions) -> None:
        self.options = options

    def _rows(self, adata):
        if "time" not in adata.obs:
            raise BiocountInputError("protein: the modality has no time column")
        X = matrix(adata, self.options.layer, "protein")
        X = X.toarray() if hasattr(X, "toarray") else X
        check_finite(X, "protein", adata.var_names)
        kind = self.options.kind
        if kind == "auto":
            kind = "adt" if looks_like_counts(X) else "ms"
        if kind == "adt":
            if np.isnan(X).any() or not looks_like_counts(X):
                raise BiocountInputError("protein: kind 'adt' needs non-negative integer antibody counts without "
                                         "NaN; use kind 'ms' for intensities")
            if is_single_cell(adata):
                bulk = aggregate(adata, layer=self.options.layer)
                return kind, np.asarray(bulk.X), bulk.obs
        elif is_single_cell(adata):
            raise BiocountInputError("protein: duplicate (series, time) rows in bulk mass-spec data; average "
                                     "technical replicates first or give them distinct series ids")
        return kind, X, adata.obs[["series", "time"]]

    def _log(self, X: np.ndarray) -> np.ndarray:
        take = self.options.log2 == "yes" or (self.options.log2 == "auto" and np.nanmax(X, initial=0) > 100)
        if not take:
            return X
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(X > 0, np.log2(np.where(X > 0, X, 1.0)), np.nan)

    def fit(self, adata, *, train=None) -> ProteinEncoder:
        kind, X, obs = self._rows(adata)
        if X.shape[1] < 2 and (kind == "adt" or self.options.centre):
            how = "CLR" if kind == "adt" else "median centring"
            raise BiocountInputError(
                f"protein: {how} compares proteins within each sample, but there is only one protein "
                f"('{adata.var_names[0]}'): every value would become the same constant; set the protein option "
                "centre: false, or encode it with tabular (--modalities protein=tabular)")
        mask = train_mask(adata, train)
        self.kind_ = kind
        if is_single_cell(adata):  # bulk rows that hold any training cell
            keys = set(zip(adata.obs["series"][mask], adata.obs["time"][mask], strict=True))
            is_train = np.array([k in keys for k in zip(obs["series"], obs["time"], strict=True)])
        else:
            is_train = mask
        if kind == "adt":
            self.reference_total_ = float(np.median(X[is_train].sum(axis=1)))
        else:
            medians = _row_median(self._log(X[is_train])) if self.options.centre else np.zeros(1)
            self.reference_median_ = float(np.nanmedian(medians)) if np.isfinite(medians).any() else 0.0
        self.features_ = adata.var_names.to_numpy()
        return self

    def transform(self, adata) -> ModalityData:
        if not hasattr(self, "kind_"):
            raise BiocountInputError("protein: transform() called before fit()")
        kind, X, obs = self._rows(adata)
        series, times = obs["series"].to_numpy(), obs["time"].to_numpy()
        if kind == "adt":
            logged = np.log1p(X)
            values = logged - logged.mean(axis=1, keepdims=True)
            size = np.maximum(X.sum(axis=1), 1.0) / self.reference_total_
            ids, grid, cv = cube(series, times, values)
            _, _, cc = cube(series, times, X)
            _, _, cs = cube(series, times, size[:, None])
            return ModalityData(series=ids, times=grid, features=self.features_, values=cv, counts=cc,
                                size_factors=cs[..., 0],
                                meta={"modality": "protein", "is_counts": True, "normalisation": "adt: CLR",
                                      "kind": "adt"})
        logged = self._log(X)
        values = logged - _row_median(logged)[:, None] + self.reference_median_ if self.options.centre else logged
        ids, grid, cv = cube(series, times, values)
        return ModalityData(series=ids, times=grid, features=self.features_, values=cv,
                            meta={"modality": "protein", "normalisation": "ms: log2, median centring",
                                  "kind": "ms", "missing_fraction": float(np.isnan(values).mean())})
