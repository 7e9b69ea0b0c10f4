"""Pseudobulk of 1,000,000 cells x 2,000 genes (sparse, ~2 % non-zero), generated on the fly into a
temporary .h5ad: in memory vs from a backed file read in chunks; cells/s and peak RSS of each (each in
its own process, so the peaks are independent)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import report

N_CELLS, N_GENES, DENSITY = 1_000_000, 2_000, 0.02

GENERATE = """
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad, sys
n, g, d = {n}, {g}, {d}
rng = np.random.default_rng(0)
per_row = rng.poisson(d * g, size=n).astype(np.int64)
indptr = np.concatenate([[0], np.cumsum(per_row)])
indices = rng.integers(0, g, size=indptr[-1], dtype=np.int32)
data = rng.integers(1, 6, size=indptr[-1]).astype(np.float32)
X = sp.csr_matrix((data, indices, indptr), shape=(n, g))
X.sum_duplicates()
obs = pd.DataFrame({{"series": rng.choice([f"d{{i}}" for i in range(24)], n), "time": rng.choice(np.arange(30.0), n)}})
obs.index = obs.index.astype(str)
ad.AnnData(X=X, obs=obs).write_h5ad(sys.argv[1])
print(X.nnz)
"""

MEASURE = """
import json, resource, sys, time
import anndata as ad
from biocount.study.pseudobulk import aggregate
path, mode = sys.argv[1], sys.argv[2]
t = time.perf_counter()
adata = ad.read_h5ad(path, backed="r" if mode == "backed" else None)
read_s = time.perf_counter() - t
t = time.perf_counter()
out = aggregate(adata, chunk_size=100_000 if mode == "backed" else None)
agg_s = time.perf_counter() - t
print(json.dumps({{"read_s": read_s, "aggregate_s": agg_s, "groups": out.n_obs,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cells.h5ad"
        nnz = subprocess.run([sys.executable, "-c", GENERATE.format(n=N_CELLS, g=N_GENES, d=DENSITY), str(path)],
                             check=True, capture_output=True, text=True).stdout.strip()
        rows = []
        for mode in ("memory", "backed"):
            res = json.loads(subprocess.run([sys.executable, "-c", MEASURE.format(), str(path), mode], check=True,
                                            capture_output=True, text=True).stdout.strip().splitlines()[-1])
            total = res["read_s"] + res["aggregate_s"]
            rows.append({"mode": mode, "cells": N_CELLS, "genes": N_GENES, "nonzeros": int(nnz),
                         "read_s": res["read_s"], "aggregate_s": res["aggregate_s"],
                         "cells_per_s": N_CELLS / total, "peak_rss_mb": res["peak_rss_mb"]})
        backed = rows[1]["peak_rss_mb"]
        report("scale", rows, [f"target: backed mode under 2 GB peak RSS -> {'met' if backed < 2048 else 'missed'} "
                               f"({backed:.0f} MB)", f"file: {path.stat().st_size / 1e6:.0f} MB"])
