"""Pseudobulk against a dense numpy reference."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from biocount.study.pseudobulk import aggregate


def cells(n=3000, genes=50, seed=0):
    rng = np.random.default_rng(seed)
    X = sp.random(n, genes, density=0.1, random_state=seed, format="csr") * 10
    X.data = np.round(X.data)
    obs = pd.DataFrame({"series": rng.choice(["a", "b", "c"], n), "time": rng.choice([0.0, 1.5, 3.0, 7.0], n),
                        "ct": rng.choice(["T", "B", "NK"], n)})
    obs.index = obs.index.astype(str)
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(genes)]))


def reference(adata):
    dense = adata.X.toarray()
    rows = {}
    for i, (s, t) in enumerate(zip(adata.obs["series"], adata.obs["time"], strict=True)):
        rows.setdefault((s, t), []).append(i)
    keys = sorted(rows)
    return keys, np.stack([dense[rows[k]].sum(axis=0) for k in keys]), [len(rows[k]) for k in keys]


def test_matches_dense_reference():
    adata = cells()
    keys, sums, n = reference(adata)
    out = aggregate(adata, groupby="ct")
    assert list(zip(out.obs["series"], out.obs["time"], strict=True)) == keys
    np.testing.assert_allclose(out.X, sums)
    assert out.obs["n_cells"].tolist() == n
    tab = pd.crosstab([adata.obs["series"], adata.obs["time"]], adata.obs["ct"])
    np.testing.assert_array_equal(out.obsm["n_cells_by_ct"][tab.columns].to_numpy(), tab.to_numpy())


def test_chunked_and_dense_input_give_the_same_sums():
    adata = cells(seed=1)
    whole = aggregate(adata)
    np.testing.assert_allclose(aggregate(adata, chunk_size=257).X, whole.X)
    dense = adata.copy()
    dense.X = dense.X.toarray()
    np.testing.assert_allclose(aggregate(dense).X, whole.X)


def test_backed_file_in_chunks(tmp_path):
    adata = cells(seed=2)
    path = tmp_path / "cells.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    np.testing.assert_allclose(aggregate(backed, chunk_size=500).X, aggregate(adata).X)
    backed.file.close()


def test_layer_is_used():
    adata = cells(seed=3)
    adata.layers["counts"] = adata.X * 2
    np.testing.assert_allclose(aggregate(adata, layer="counts").X, 2 * aggregate(adata).X)
