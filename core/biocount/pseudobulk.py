"""Aggregate single cells to one row per (series, time): sparse matrix products, no loop over cells.

Public: the rna encoder and ``bc.pp.timecourse`` both call :func:`aggregate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData


def group_codes(series: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Code each row by its (series, time) pair; groups sorted by series, then time."""
    frame = pd.DataFrame({"series": np.asarray(series).astype(str), "time": np.asarray(times, dtype=float)})
    groups = frame.drop_duplicates().sort_values(["series", "time"], kind="stable").reset_index(drop=True)
    index = pd.MultiIndex.from_frame(groups)
    codes = index.get_indexer(pd.MultiIndex.from_frame(frame))
    return codes, groups


def indicator(codes: np.ndarray, n_groups: int) -> sp.csr_matrix:
    """The (groups x rows) 0/1 matrix whose product with X sums the rows of each group."""
    n = codes.size
    return sp.csr_matrix((np.ones(n, dtype=np.float32), (codes, np.arange(n))), shape=(n_groups, n))


def aggregate(
    adata: AnnData,
    *,
    series_key: str = "series",
    time_key: str = "time",
    groupby: str | None = None,
    layer: str | None = None,
    chunk_size: int | None = None,
) -> AnnData:
    """Sum the counts of the cells of each (series, time) pair.

    Parameters
    ----------
    adata
        Cells x features, counts in ``X`` or ``layers[layer]``; may be backed (``read_h5ad(..., backed="r")``).
    series_key, time_key
        ``obs`` columns holding the series id and the numeric time.
    groupby
        Optional ``obs`` column (e.g. a cell type): cells per (series, time, group) go to
        ``obsm[f"n_cells_by_{groupby}"]`` as a DataFrame.
    layer
        Layer holding the counts (default ``X``).
    chunk_size
        Rows read at a time (for backed files); default: everything at once.

    Returns
    -------
    A new AnnData: one row per observed (series, time), sorted; ``X`` the summed counts (float64,
    dense), ``obs`` with ``series``, ``time`` and ``n_cells``.
    """
    import anndata as ad

    for key in (series_key, time_key, groupby):
        if key is not None and key not in adata.obs:
            raise BiocountInputError(
                f"obs has no column '{key}'; available: {', '.join(map(str, adata.obs.columns)) or 'none'}"
            )
    codes, groups = group_codes(adata.obs[series_key].to_numpy(), pd.to_numeric(adata.obs[time_key]).to_numpy())
    A = indicator(codes, len(groups))
    X = adata.layers[layer] if layer is not None else adata.X
    n_rows = adata.n_obs
    step = chunk_size or n_rows
    total = np.zeros((len(groups), adata.n_vars), dtype=np.float64)
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        block = X[start:stop]
        if hasattr(block, "to_memory"):  # anndata's backed sparse dataset
            block = block.to_memory()
        part = A[:, start:stop] @ (block if sp.issparse(block) else np.asarray(block, dtype=np.float64))
        total += part.toarray() if sp.issparse(part) else part
    obs = groups.copy()
    obs["n_cells"] = np.bincount(codes, minlength=len(groups))
    obs.index = [f"{s}@{t:g}" for s, t in zip(obs["series"], obs["time"], strict=True)]
    out = ad.AnnData(X=total, obs=obs, var=adata.var[[]].copy())
    if groupby is not None:
        kinds = pd.Categorical(adata.obs[groupby])
        flat = codes * len(kinds.categories) + kinds.codes
        tally = np.bincount(flat[kinds.codes >= 0], minlength=len(groups) * len(kinds.categories))
        out.obsm[f"n_cells_by_{groupby}"] = pd.DataFrame(
            tally.reshape(len(groups), -1), index=out.obs_names, columns=[str(c) for c in kinds.categories]
        )
    return out
