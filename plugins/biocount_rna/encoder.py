"""The rna encoder: raw UMI counts -> log-normalised pseudobulk expression per (series, time).

1. Single cells (several rows per series and time) are summed to pseudobulk with a sparse
   indicator-matrix product (:func:`biocount.pseudobulk.aggregate`); bulk rows pass through.
2. Size factors: library size / the median library size of the *training* rows.
3. Values: log1p(counts / size factor).
4. Gene selection (highest variance of those values) and optional PCA, fitted on training rows.
Raw counts and size factors of the selected genes are kept for count likelihoods.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount import BiocountInputError, ModalityData, Units
from biocount.contract import cube
from biocount.encoding import PCA, check_counts, is_single_cell, matrix, train_mask
from biocount.pseudobulk import aggregate, group_names

from .options import RnaOptions

CELL_TYPE_KEYS = ("cell_type", "celltype", "cell_types", "CellType")
COUNTS_HINT = "the rna encoder needs raw counts: pass its layer as 'layer', or map this modality to the 'tabular' encoder"


class RnaEncoder:
    def __init__(self, options: RnaOptions) -> None:
        self.options = options

    def _cell_type_key(self, adata) -> str | None:
        key = self.options.cell_type_key
        if key == "auto":
            return next((k for k in CELL_TYPE_KEYS if k in adata.obs), None)
        if key is not None and key not in adata.obs:
            raise BiocountInputError(f"rna: no obs column '{key}' (cell_type_key); "
                                     f"available: {', '.join(map(str, adata.obs.columns))}")
        return key

    def _bulk(self, adata, train=None):
        """Counts per (series, time), cells per type, and which bulk rows are training rows. Single cells
        are summed in one pass over the file (backed or Dask: chunk by chunk, counts checked per chunk)."""
        if "time" not in adata.obs:
            raise BiocountInputError("rna: the modality has no time column; it needs one row per cell or "
                                     "per (series, time)")
        mask = train_mask(adata, train)
        if is_single_cell(adata):
            if self.options.layer is not None and self.options.layer not in adata.layers:
                matrix(adata, self.options.layer, "rna")  # its one-line error
            key = self._cell_type_key(adata)
            if getattr(self, "_summed", (None,))[0] is not adata:  # fit then transform: one pass over the cells
                self._summed = (adata, aggregate(adata, groupby=key, layer=self.options.layer,
                                                 check=lambda block: check_counts(block, "rna", COUNTS_HINT)))
            bulk = self._summed[1]
            is_train = bulk.obs_names.isin(group_names(adata.obs["series"][mask], adata.obs["time"][mask]))
            celltypes = bulk.obsm.get(f"n_cells_by_{key}") if key else None
            return np.asarray(bulk.X), bulk.obs, is_train, celltypes
        X = matrix(adata, self.options.layer, "rna")
        check_counts(X, "rna", COUNTS_HINT)
        dense = X.toarray() if hasattr(X, "toarray") else X
        return dense, adata.obs[["series", "time"]], mask, None

    def fit(self, adata, *, train=None) -> RnaEncoder:
        counts, _, is_train, celltypes = self._bulk(adata, train)
        library = np.nansum(counts, axis=1)  # long tables may leave unmeasured entries NaN
        self.reference_library_ = float(np.median(library[is_train]))
        if self.reference_library_ <= 0:
            raise BiocountInputError("rna: training rows have no counts at all")
        logged = np.log1p(counts / self._size_factors(library)[:, None])[is_train]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            variance = np.nan_to_num(np.nanvar(logged, axis=0), nan=-1.0)
        order = np.lexsort((np.arange(variance.size), -variance))  # ties broken by position: deterministic
        n = self.options.n_top_genes or variance.size
        self.genes_ = np.sort(order[: min(n, variance.size)])
        self.gene_names_ = adata.var_names[self.genes_].to_numpy()
        self.pca_ = PCA(self.options.n_pcs).fit(logged[:, self.genes_]) if self.options.n_pcs else None
        if celltypes is not None:
            self.reference_cells_ = float(np.median(celltypes.to_numpy().sum(axis=1)[is_train]))
        return self

    def _size_factors(self, library: np.ndarray) -> np.ndarray:
        return np.maximum(library, 1.0) / self.reference_library_

    def transform(self, adata) -> list[ModalityData]:
        if not hasattr(self, "genes_"):
            raise BiocountInputError("rna: transform() called before fit()")
        counts, obs, _, celltypes = self._bulk(adata)
        self._summed = None  # holds the cells' AnnData: let it go
        if list(adata.var_names[self.genes_]) != list(self.gene_names_):
            raise BiocountInputError("rna: the genes differ from those seen in fit(); use the same var_names")
        size = self._size_factors(np.nansum(counts, axis=1))
        picked = counts[:, self.genes_]
        values = np.log1p(picked / size[:, None])
        series, times = obs["series"].to_numpy(), obs["time"].to_numpy()
        if self.pca_ is not None:
            scores = self.pca_.transform(values)
            ids, grid, cube_values = cube(series, times, scores)
            features = [f"PC{i + 1}" for i in range(scores.shape[1])]
            out = [ModalityData(series=ids, times=grid, features=features, values=cube_values,
                                meta={"modality": "rna", "normalisation": f"size factors, log1p, PCA({len(features)})"})]
        else:
            ids, grid, cube_values = cube(series, times, values)
            _, _, cube_counts = cube(series, times, picked)
            _, _, cube_size = cube(series, times, size[:, None])
            out = [ModalityData(series=ids, times=grid, features=self.gene_names_, values=cube_values,
                                counts=cube_counts, size_factors=cube_size[..., 0],
                                units=_rates(len(self.gene_names_), "counts per median training library"),
                                meta={"modality": "rna", "is_counts": True, "log1p_rate": True,
                                      "normalisation": "size factors, log1p",
                                      "reference_library": self.reference_library_})]
        if celltypes is not None and hasattr(self, "reference_cells_"):
            tally = celltypes.to_numpy(dtype=float)
            sizes = np.maximum(tally.sum(axis=1), 1.0) / self.reference_cells_
            ids, grid, cube_counts = cube(series, times, tally)
            _, _, cube_size = cube(series, times, sizes[:, None])
            out.append(ModalityData(
                series=ids, times=grid, features=[str(c) for c in celltypes.columns],
                values=np.log1p(cube_counts / cube_size), counts=cube_counts, size_factors=cube_size[..., 0],
                units=_rates(tally.shape[1], "cells per median training cell total"),
                meta={"modality": "celltypes", "is_counts": True, "log1p_rate": True,
                      "normalisation": "cells per type / total, log1p"},
            ))
        return out


def _rates(n: int, label: str) -> Units:
    """values = log1p(counts / size factor): back in data units, counts at the reference library size."""
    return Units(center=np.zeros(n), scale=np.ones(n), log1p=True, nonnegative=True, label=label)
