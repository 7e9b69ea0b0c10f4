"""Small building blocks for encoder plugins (public API).

An encoder is built by its spec's factory from its options and has two methods::

    fit(adata, *, train=None) -> self      # learn scalers, feature selection ... from training rows only
    transform(adata) -> ModalityData | list[ModalityData]

``adata.obs`` carries the canonical ``series`` and ``time`` columns (see :mod:`biocount.io.readers`);
``train`` is a boolean mask over ``adata.obs`` rows (None: all rows are training rows). Anything
fitted must depend on training rows only: the contract tests change every other row and check.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData


def train_mask(adata: AnnData, train: Any) -> np.ndarray:
    """A boolean mask over rows: ``train`` itself, or all rows when it is None."""
    if train is None:
        return np.ones(adata.n_obs, dtype=bool)
    mask = np.asarray(train, dtype=bool)
    if mask.shape != (adata.n_obs,):
        raise BiocountInputError(f"train mask has shape {mask.shape}, expected ({adata.n_obs},)")
    if not mask.any():
        raise BiocountInputError("no training rows: the train mask selects nothing")
    return mask


def matrix(adata: AnnData, layer: str | None, where: str) -> Any:
    """``X`` or ``layers[layer]`` as float (sparse stays sparse)."""
    if layer is not None and layer not in adata.layers:
        raise BiocountInputError(f"{where}: no layer '{layer}'; available: {', '.join(adata.layers) or 'none'}")
    X = adata.layers[layer] if layer is not None else adata.X
    if hasattr(X, "to_memory"):  # a backed file's matrix (anndata's sparse dataset)
        X = X.to_memory()
    elif hasattr(X, "compute"):  # a Dask array (a store read lazily)
        X = X.compute()
    if sp.issparse(X):
        return X.astype(np.float64)
    return np.asarray(X, dtype=np.float64)


def _stored(X: Any) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X).ravel()


def looks_like_counts(X: Any) -> bool:
    """Non-negative integers everywhere it is observed."""
    v = _stored(X)
    v = v[~np.isnan(v)]
    return bool(v.size) and bool(np.all(v >= 0)) and bool(np.all(v == np.round(v)))


def check_counts(X: Any, where: str, hint: str) -> None:
    """Raise one clear line if data declared as counts is negative or not integer."""
    v = _stored(X)
    v = v[~np.isnan(v)]
    if np.any(v < 0):
        raise BiocountInputError(f"{where}: counts must be non-negative, found {v[v < 0][0]:g}; {hint}")
    frac = v != np.round(v)
    if np.any(frac):
        raise BiocountInputError(f"{where}: counts must be integers, found {v[frac][0]:g}; {hint}")


def check_finite(X: Any, where: str, features: Any) -> None:
    """Raise one clear line naming the first feature holding +-inf."""
    dense = X.toarray() if sp.issparse(X) else np.asarray(X)
    bad = np.isinf(dense).any(axis=0)
    if bad.any():
        name = np.asarray(features)[bad][0]
        raise BiocountInputError(f"{where}: feature '{name}' holds infinite values; replace them with NaN "
                                 "(missing) or finite numbers")


def is_single_cell(adata: AnnData) -> bool:
    """Several rows share a (series, time): cells to aggregate (integer codes: cheap for millions of rows)."""
    s_codes, _ = pd.factorize(adata.obs["series"])
    t_codes, t_values = pd.factorize(adata.obs["time"])
    return bool(np.unique(s_codes.astype(np.int64) * len(t_values) + t_codes).size < adata.n_obs)


class Standardizer:
    """Per-feature centring and scaling, fitted on training rows, NaN ignored."""

    def fit(self, X: np.ndarray) -> Standardizer:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are allowed
            self.mean_ = np.nan_to_num(np.nanmean(X, axis=0))
            std = np.nanstd(X, axis=0)
        self.scale_ = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_


class PCA:
    """PCA by SVD of the training rows (centred on their mean)."""

    def __init__(self, n_components: int) -> None:
        self.n_components = n_components

    def fit(self, X: np.ndarray) -> PCA:
        self.mean_ = X.mean(axis=0)
        _, _, vt = np.linalg.svd(X - self.mean_, full_matrices=False)
        k = min(self.n_components, vt.shape[0])
        signs = np.sign(vt[:k, np.argmax(np.abs(vt[:k]), axis=1)].diagonal())  # deterministic signs
        self.components_ = vt[:k] * signs[:, None]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) @ self.components_.T
