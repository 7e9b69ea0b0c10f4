"""Scale-out (issue 17), as ratios on this machine; each run in its own process.

- ``arima``: ARIMA on ``--series`` (2,000) synthetic series x 40 points: serial (``--jobs 1``) vs
  ``--dask local:2`` (and loky ``--jobs 2`` for reference); the forecasts must be byte-identical.
- ``demo``: the README's demo run with ``--jobs 2`` (loky) vs ``--dask local:2``: the Dask path's overhead.
- ``ddp`` / ``ddp-large``: LSTM training windows/s on a large synthetic study (1,000 series x 100
  points), default model (hidden 32) / hidden 256: 1 process (1 thread, 2 threads) vs
  ``torchrun --nproc-per-node 2`` (gloo, 1 thread each).
- ``cells``: pseudobulk of ``--cells`` (10,000,000) synthetic cells x 2,000 genes (2 % non-zero),
  written to disk in chunks, read backed through ``biocount.io.readers.read`` and summed with the rna
  encoder's count check: peak RSS.

``python -m bench distributed [--parts arima,demo,ddp,ddp-large,cells] [--series N] [--cells N]``
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report, run_biocount
from bench.scaling import study

GENES, DENSITY, WRITE_CHUNK = 2_000, 0.02, 500_000


def _run(args: list[str], out: Path, *, launcher: list[str] | None = None, env: dict | None = None) -> dict:
    wall, info = run_biocount(args, out, launcher=launcher, env=env)
    return {"wall_s": round(wall, 2), **{f"{k}_s": v for k, v in info["timings_s"].items()}, "info": info}


def arima(folder: Path, series: int) -> tuple[list[dict], list[str]]:
    path = folder / "arima.csv"
    study(path, series, 40, features=1)
    base = ["--data", str(path), "--modalities", "y=tabular", "--target", "y", "--models", "arima", "--ensemble", "none"]
    rows, outs = [], {}
    for label, extra in (("serial (--jobs 1)", ["--jobs", "1"]), ("loky (--jobs 2)", ["--jobs", "2"]),
                         ("dask (--dask local:2)", ["--dask", "local:2"])):
        outs[label] = folder / f"arima_{len(outs)}"
        res = _run(base + extra, outs[label])
        rows.append({"part": "arima", "series": series, "mode": label, "wall_s": res["wall_s"],
                     "fit+backtest_s": res["fit+backtest_s"], "cluster_start_s": res.get("start_s")})
    same = all(filecmp.cmp(outs[rows[0]["mode"]] / "forecasts.csv", o / "forecasts.csv", shallow=False)
               for o in outs.values())
    ratio = rows[0]["wall_s"] / rows[2]["wall_s"]
    for r in rows:
        r["speed-up"] = round(rows[0]["wall_s"] / r["wall_s"], 2)
    return rows, [f"arima {series} series: dask local:2 {ratio:.2f}x serial (goal >= 1.7x -> "
                  f"{'met' if ratio >= 1.7 else 'missed'}); forecasts.csv byte-identical in all modes: {same}"]


def demo(folder: Path) -> tuple[list[dict], list[str]]:
    rows = []
    for label, extra in (("loky (--jobs 2)", ["--jobs", "2"]), ("dask (--dask local:2)", ["--dask", "local:2"])):
        res = _run(["--modalities", "rna,protein", *extra], folder / f"demo_{len(rows)}")
        rows.append({"part": "demo", "mode": label, "wall_s": res["wall_s"], "fit+backtest_s": res["fit+backtest_s"],
                     "cluster_start_s": res.get("start_s")})
    extra = rows[1]["wall_s"] - rows[0]["wall_s"]
    return rows, [f"demo: the Dask path costs {extra:+.1f} s against loky (goal <= 3 s -> "
                  f"{'met' if extra <= 3 else 'missed'}); cluster start {rows[1]['cluster_start_s']} s"]


def ddp(folder: Path, hidden: int, series: int = 1000, points: int = 100) -> tuple[list[dict], list[str]]:
    path = folder / "ddp.csv"
    if not path.exists():
        study(path, series, points)
    (folder / "ddp.yaml").write_text("options:\n  lstm: {epochs: 3, members: 1, patience: null, dropout: 0.0, "
                                     f"modality_dropout: 0.0, hidden: {hidden}}}\n")
    args = ["--data", str(path), "--modalities", "y=tabular,x=tabular", "--target", "y", "--models", "lstm",
            "--ensemble", "none", "--config", str(folder / "ddp.yaml")]
    torchrun = [str(Path(sys.executable).parent / "torchrun"), "--nproc-per-node", "2", "--master-port", "29533"]
    rows = []
    for label, extra, launcher in (("1 process, 1 thread", ["--threads", "1"], None),
                                   ("1 process, 2 threads", ["--threads", "2"], None),
                                   ("torchrun 2 processes (gloo), 1 thread each", ["--threads", "1"], torchrun)):
        res = _run(args + extra, folder / f"ddp_{len(rows)}", launcher=launcher)
        lstm = res["info"]["forecasters"]["lstm"]
        fit = lstm["timings_s"]["fit_s"]
        windows = lstm["train_windows"] * len(lstm["history"])
        rows.append({"part": "ddp", "mode": label, "series": series, "points": points, "hidden": hidden, "fit_s": fit,
                     "train_windows": lstm["train_windows"], "batch": lstm["batch_size"], "windows_per_s": windows / fit,
                     "wall_s": res["wall_s"]})
    ratio = rows[2]["windows_per_s"] / rows[0]["windows_per_s"]
    return rows, [f"ddp, hidden {hidden}: 2 gloo processes step {ratio:.2f}x one single-threaded process (goal >= 1.5x -> "
                  f"{'met' if ratio >= 1.5 else 'missed'}); {rows[2]['windows_per_s'] / rows[1]['windows_per_s']:.2f}x "
                  "one process on both cores"]


WRITE = """
import sys, h5py, numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
path, n, g, d, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
obs = pd.DataFrame({"series": pd.Categorical(rng.choice([f"d{i:02d}" for i in range(24)], n)),
                    "time": rng.choice(np.arange(30.0), n),
                    "cell_type": pd.Categorical(rng.choice([f"type{i}" for i in range(8)], n))},
                   index=pd.RangeIndex(n).astype(str))
with h5py.File(path, "w") as f:
    f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
    ad.io.write_elem(f, "obs", obs)
    del obs
    ad.io.write_elem(f, "var", pd.DataFrame(index=[f"g{i}" for i in range(g)]))
    X = f.create_group("X")
    X.attrs["encoding-type"], X.attrs["encoding-version"], X.attrs["shape"] = "csr_matrix", "0.1.0", (n, g)
    data = X.create_dataset("data", (0,), maxshape=(None,), dtype="float32", chunks=(1 << 20,))
    indices = X.create_dataset("indices", (0,), maxshape=(None,), dtype="int32", chunks=(1 << 20,))
    indptr, nnz = [np.zeros(1, dtype=np.int64)], 0
    for start in range(0, n, step):
        rows = min(step, n - start)
        ip = np.concatenate([[0], np.cumsum(rng.poisson(d * g, size=rows))])
        m = sp.csr_matrix((rng.integers(1, 6, size=ip[-1]).astype(np.float32),
                           rng.integers(0, g, size=ip[-1], dtype=np.int32), ip), shape=(rows, g))
        m.sum_duplicates()  # sorted column indices, as anndata writes them
        for ds, values in ((data, m.data), (indices, m.indices)):
            ds.resize((nnz + m.nnz,))
            ds[nnz:] = values
        indptr.append(nnz + m.indptr[1:].astype(np.int64))
        nnz += m.nnz
    X.create_dataset("indptr", data=np.concatenate(indptr))
print(nnz)
"""

MEASURE = """
import json, resource, sys, time
from biocount.study.encoding import check_counts
from biocount.study.pseudobulk import aggregate
from biocount.io.readers import read
t = time.perf_counter()
adata = read(sys.argv[1])["cells"]
read_s = time.perf_counter() - t
t = time.perf_counter()
out = aggregate(adata, groupby="cell_type", check=lambda x: check_counts(x, "rna", "raw counts"))
print(json.dumps({"backed": adata.isbacked, "read_s": read_s, "aggregate_s": time.perf_counter() - t,
                  "groups": out.n_obs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def cells(folder: Path, n: int) -> tuple[list[dict], list[str]]:
    path = folder / "cells.h5ad"
    start = time.perf_counter()
    nnz = int(subprocess.run([sys.executable, "-c", WRITE, str(path), str(n), str(GENES), str(DENSITY),
                              str(WRITE_CHUNK)], check=True, capture_output=True, text=True).stdout.split()[-1])
    write_s = time.perf_counter() - start
    res = json.loads(subprocess.run([sys.executable, "-c", MEASURE, str(path)], check=True, capture_output=True,
                                    text=True).stdout.strip().splitlines()[-1])
    row = {"part": "cells", "cells": n, "genes": GENES, "nonzeros": nnz, "file_mb": round(path.stat().st_size / 2**20),
           "write_s": round(write_s, 1), **res, "cells_per_s": n / (res["read_s"] + res["aggregate_s"])}
    return [row], [f"cells: {n:,} cells backed, peak RSS {res['peak_rss_mb']:.0f} MB (goal <= 2048 MB -> "
                   f"{'met' if res['peak_rss_mb'] <= 2048 else 'missed'})"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench distributed")
    parser.add_argument("--parts", default="arima,demo,ddp,ddp-large,cells")
    parser.add_argument("--series", type=int, default=2000, help="ARIMA series")
    parser.add_argument("--cells", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="biocount-bench-"))
    rows, notes = [], []
    try:
        for part in args.parts.split(","):
            r, n = {"arima": lambda: arima(folder, args.series), "demo": lambda: demo(folder),
                    "ddp": lambda: ddp(folder, 32), "ddp-large": lambda: ddp(folder, 256),
                    "cells": lambda: cells(folder, args.cells)}[part]()
            rows += r
            notes += n
            print("\n".join(n), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(f"distributed-{'-'.join(args.parts.split(','))}", rows, notes)
