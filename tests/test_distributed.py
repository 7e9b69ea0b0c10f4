"""Scale-out (issue 17): a real 2-worker Dask LocalCluster against the serial run, a 2-process torchrun
(gloo) against one process, and out-of-core pseudobulk (backed h5ad, lazy zarr) against in-memory sums."""

from __future__ import annotations

import json
import operator
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import biocount as bc
from biocount.errors import BiocountError

distributed = pytest.importorskip("distributed")


def _study(n_series: int = 6, n_times: int = 36, seed: int = 0):
    import anndata as ad

    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"series": np.repeat([f"S{i}" for i in range(n_series)], n_times),
                        "time": np.tile(np.arange(n_times, dtype=float), n_series)})
    obs.index = obs.index.astype(str)
    trend = rng.normal(size=(n_series, 1, 2)) * 0.05 * np.arange(n_times)[None, :, None]
    x = (rng.normal(size=(n_series, n_times, 2)).cumsum(1) * 0.3 + trend).reshape(-1, 2)
    return ad.AnnData(X=x.astype("float32"), obs=obs)


@pytest.fixture(scope="module")
def serial_and_dask():
    from biocount.forecasters.lstm import training as lstm

    lstm.DASK_MEMBERS_MIN_WINDOWS, before = 0, lstm.DASK_MEMBERS_MIN_WINDOWS  # this small study's members too
    study = _study()
    opts = {"modalities": ["x=tabular"], "models": ["lstm", "arima", "naive"], "horizon": 2, "quiet": True,
            "options": {"lstm": {"epochs": 4, "members": 2, "min_epochs": 1}}}
    from biocount.engine import run, validated

    serial = run(validated({**opts, "jobs": 1}), data={"x": study.copy()})
    try:
        on_dask = run(validated({**opts, "dask": "local:2"}), data={"x": study.copy()})
    finally:
        lstm.DASK_MEMBERS_MIN_WINDOWS = before
    return serial, on_dask


def test_dask_local_cluster_gives_the_serial_forecasts_bit_for_bit(serial_and_dask):
    """ARIMA's series and the LSTM's seed-ensemble members run on the workers; same numbers."""
    serial, on_dask = serial_and_dask
    assert {"lstm", "arima", "naive"} <= set(serial.forecasts.columns)
    pd.testing.assert_frame_equal(serial.forecasts, on_dask.forecasts, check_exact=True)
    pd.testing.assert_frame_equal(serial.metrics, on_dask.metrics, check_exact=True)
    assert serial.info["forecasters"]["arima"]["series_features"] == on_dask.info["forecasters"]["arima"]["series_features"]
    assert on_dask.info["config"]["dask"] == "local:2" and "start" in on_dask.info["timings_s"]
    assert on_dask.info["forecasters"]["lstm"]["history"] == serial.info["forecasters"]["lstm"]["history"]
    assert on_dask.info["forecasters"]["lstm"]["members"] == 2
    assert (on_dask.info["forecasters"]["lstm"]["members_on"], serial.info["forecasters"]["lstm"]["members_on"]) \
        == ("dask", "this process")


def test_map_series_on_a_real_local_cluster_keeps_order_and_names_failed_series():
    from biocount.parallel import active_client, dask_cluster, map_series

    jobs = [(i, 2) for i in range(40)]
    with dask_cluster("local:2") as client:
        assert active_client() is client and len(client.scheduler_info()["workers"]) == 2
        assert map_series(operator.floordiv, jobs) == [i // 2 for i in range(40)]  # in order
        with pytest.raises(BiocountError, match=r"failed after 2 retries: ZeroDivisionError.*") as err:
            map_series(operator.truediv, [(1, 1)] * 299 + [(1, 0)], labels=[f"donor{i}" for i in range(300)])
        # 300 series on 2 workers: 100 tasks of 3; the message names the failed task's series only
        assert "(3 series: donor297, donor298, donor299)" in str(err.value) and "donor296" not in str(err.value)
    assert active_client() is None  # the cluster is closed after the block


def test_dask_option_is_checked_and_never_loaded_at_start_up(tmp_path):
    from click.testing import CliRunner

    from biocount.cli import cli

    result = CliRunner().invoke(cli, ["run", "--dask", "lokal:2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "'lokal:2' is not a Dask cluster" in result.output
    assert not (tmp_path / "o").exists()
    code = "import sys, biocount, biocount.cli, biocount.engine; assert 'distributed' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_an_unreachable_scheduler_is_one_clear_line(monkeypatch):
    from biocount import parallel

    monkeypatch.setattr(parallel, "CONNECT_TIMEOUT", "1s")
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", "tcp://127.0.0.1:9")  # discard port: nobody listens
    with pytest.raises(bc.BiocountInputError, match=r"--dask tcp://127.0.0.1:9: no Dask scheduler answers there"):
        with parallel.dask_cluster("auto"):
            pass
    assert parallel.active_client() is None


def test_dask_is_refused_under_torchrun(monkeypatch, tmp_path):
    from biocount.engine import run, validated

    for key, value in {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(bc.BiocountInputError, match="--dask: not under torchrun"):
        run(validated({"models": ["naive"], "dask": "local:2", "quiet": True}))


def test_ddp_share_splits_a_batch_so_the_weighted_mean_is_the_global_one(monkeypatch):
    import torch

    from biocount import ddp

    idx, scored = torch.tensor([7, 3, 5, 1, 0]), torch.tensor([2., 4., 0., 1., 3., 0., 0., 5.])
    monkeypatch.setattr(ddp, "world", lambda: 2)
    parts = []
    for r in (0, 1):
        monkeypatch.setattr(ddp, "rank", lambda r=r: r)
        parts.append(ddp.share(idx, scored))
    assert parts[0][0].tolist() == [7, 5, 0] and parts[1][0].tolist() == [3, 1]  # every 2nd window
    # weight = share of scored values x world: (5 + 0 + 2) * 2 / 12 and (1 + 4) * 2 / 12; mean weight 1
    assert float(parts[0][1]) == pytest.approx(14 / 12) and float(parts[1][1]) == pytest.approx(10 / 12)
    monkeypatch.setattr(ddp, "rank", lambda: 1)
    mine, weight = ddp.share(torch.tensor([4]), scored)  # a rank left without windows joins with weight 0
    assert mine.tolist() == [4] and weight == 0.0


@pytest.mark.slow
def test_torchrun_two_gloo_processes_give_the_single_process_weights(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    assert torchrun, "torch installs torchrun next to python"
    (tmp_path / "run.yaml").write_text(
        "models: [lstm]\nquiet: true\nensemble: [none]\n"
        "options:\n  lstm: {epochs: 1, members: 1, dropout: 0.0, modality_dropout: 0.0, patience: null, "
        "batch_size: 32}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    common = ["run", "--config", str(tmp_path / "run.yaml"), "--out"]
    one = subprocess.run([sys.executable, "-m", "biocount", *common, str(tmp_path / "one")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29517", "-m", "biocount", *common,
                          str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    import torch

    a, b = (torch.load(tmp_path / d / "lstm.pt", weights_only=False) for d in ("one", "two"))
    assert a.keys() == b.keys() and a["format"] == b["format"]  # the same checkpoint format

    def flat(state, prefix=""):
        out = {}
        for k, v in state.items():
            out |= flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
        return out

    wa, wb = flat(a["members"][0]), flat(b["members"][0])
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:  # float sums in another order; Adam's first step is about lr x sign(grad), so a gradient near
        # its eps (1e-8), summed in two halves, may move a weight a little differently: 1e-4 is 3 % of one step
        torch.testing.assert_close(wb[k], wa[k], atol=1e-4, rtol=0)
    assert not torch.equal(wa[next(iter(wa))], torch.zeros_like(wa[next(iter(wa))]))
    ha, hb = (json.loads((tmp_path / d / "run.json").read_text())["forecasters"]["lstm"]["history"]
              for d in ("one", "two"))
    assert hb[0][1] == pytest.approx(ha[0][1], rel=1e-5)  # the epoch's loss, summed over the ranks
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "run.yaml", "two"]  # rank 1 wrote nothing


def test_torchrun_ranks_started_differently_stop_with_one_line(tmp_path):
    """Rank 1 gets another --seed than rank 0: every rank stops with exit 2 and one line, before any fit,
    and nothing is written (rank 0 used to write a folder without the LSTM)."""
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    script = tmp_path / "launch.py"
    script.write_text("import os, sys\nfrom biocount.cli import main\n"
                      "sys.argv = ['biocount', *sys.argv[1:], '--seed', os.environ['RANK']]\nmain()\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    proc = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", "29519", str(script), "run",
                           "--models", "lstm", "--quiet", "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "torchrun: rank(s) 1 were started with other options or data than rank 0" in text, text[-3000:]
    assert "Traceback" not in proc.stdout and not (tmp_path / "out").exists()


def test_the_torchrun_backend_follows_the_distributed_forecasters_device():
    """options: lstm: {device: cpu} trains on the CPU: gloo, whatever the run-wide --device says."""
    from biocount.engine import validated
    from biocount.host.plugins import load_host
    from biocount.plan import ddp_device, resolve

    host = load_host()
    for lstm, expected in (({"device": "cpu"}, "cpu"), ({}, "auto"), ({"device": "cuda"}, "cuda")):
        plan = resolve(validated({"models": ["lstm", "naive"], "device": "auto", "options": {"lstm": lstm}}), host)
        assert ddp_device(plan) == expected
    plan = resolve(validated({"models": ["naive", "arima"]}), host)
    assert ddp_device(plan) == "cpu"  # nothing trains across ranks: no GPU backend for it


def _cells(n_cells: int = 3000, n_genes: int = 40, seed: int = 1):
    import anndata as ad
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    obs = pd.DataFrame({"series": rng.choice(["a", "b", "c"], n_cells), "time": rng.integers(0, 5, n_cells) * 1.0,
                        "cell_type": rng.choice(["T", "B"], n_cells)})
    obs.index = obs.index.astype(str)
    X = sp.random(n_cells, n_genes, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    X.data = np.ceil(X.data * 9)
    return ad.AnnData(X=X, obs=obs)


def test_pseudobulk_from_backed_h5ad_and_lazy_zarr_equals_in_memory(tmp_path, monkeypatch):
    import anndata as ad

    from biocount.io.readers import as_modalities, read
    from biocount.study.pseudobulk import aggregate

    cells = _cells()
    cells.write_h5ad(tmp_path / "cells.h5ad")
    cells.write_zarr(tmp_path / "cells.zarr")
    dense = cells.X.toarray()
    reference = aggregate(cells, groupby="cell_type")
    codes = reference.obs_names.get_indexer([f"{s}@{t:g}" for s, t in zip(cells.obs["series"], cells.obs["time"], strict=True)])
    by_hand = np.stack([dense[codes == g].sum(0) for g in range(reference.n_obs)])  # independent reference
    np.testing.assert_array_equal(reference.X, by_hand)
    monkeypatch.setenv("BIOCOUNT_IN_MEMORY_MB", "0")  # every .h5ad counts as large: read lazily
    lazy_h5ad = read(tmp_path / "cells.h5ad")["cells"]
    lazy_zarr = read(tmp_path / "cells.zarr")["cells"]
    backed = as_modalities(ad.read_h5ad(tmp_path / "cells.h5ad", backed="r"), where="cells")["data"]  # no Dask
    assert backed.isbacked and all(type(a.X).__module__.startswith("dask") for a in (lazy_h5ad, lazy_zarr))
    assert set(lazy_h5ad.obs_names) == {"cells.h5ad"}  # cell names are not read (1.2 GB per 10 million)
    for adata in (backed, lazy_h5ad, lazy_zarr):
        out = aggregate(adata, groupby="cell_type", chunk_size=700)  # five chunks, the last one short
        np.testing.assert_array_equal(out.X, reference.X)
        pd.testing.assert_frame_equal(out.obs, reference.obs)
        pd.testing.assert_frame_equal(out.obsm["n_cells_by_cell_type"], reference.obsm["n_cells_by_cell_type"])
    bad = cells.copy()
    bad.X.data[-1] = 0.5
    bad.write_zarr(tmp_path / "bad.zarr")
    from biocount.study.encoding import check_counts

    with pytest.raises(bc.BiocountInputError, match="counts must be integers, found 0.5"):
        aggregate(read(tmp_path / "bad.zarr")["bad"], chunk_size=700,
                  check=lambda x: check_counts(x, "rna", "raw counts"))
    backed.file.close()


def test_a_run_on_cells_read_lazily_or_from_zarr_equals_the_in_memory_run(tmp_path, monkeypatch):
    rna = bc.datasets.demo().mod["rna"]  # single cells
    rna.write_h5ad(tmp_path / "rna.h5ad")
    rna.write_zarr(tmp_path / "rna.zarr")
    opts = {"modalities": ["rna"], "models": ["naive"], "quiet": True}
    reference = bc.run(data=[str(tmp_path / "rna.h5ad")], **opts)
    monkeypatch.setenv("BIOCOUNT_IN_MEMORY_MB", "0")
    for source in ("rna.h5ad", "rna.zarr"):
        run = bc.run(data=[str(tmp_path / source)], **opts)
        pd.testing.assert_frame_equal(run.forecasts, reference.forecasts, check_exact=True)
    assert reference.info["target"]["modality"] == "rna" and len(reference.forecasts) > 1000


def test_lazy_zarr_pseudobulk_on_the_cluster_equals_in_memory(tmp_path):
    from biocount.io.readers import read
    from biocount.parallel import dask_cluster
    from biocount.study.pseudobulk import aggregate

    cells = _cells(seed=2)
    cells.write_zarr(tmp_path / "cells.zarr")
    with dask_cluster("local:2"):
        out = aggregate(read(tmp_path / "cells.zarr")["cells"], chunk_size=500)
    np.testing.assert_array_equal(out.X, aggregate(cells).X)


def test_a_folder_that_is_not_a_zarr_store_is_one_clear_line(tmp_path):
    from biocount.io.readers import read

    (tmp_path / "cells.zarr").mkdir()
    (tmp_path / "cells.zarr" / "notes.txt").write_text("not a store")
    with pytest.raises(bc.BiocountInputError, match=r"cells.zarr: not a readable AnnData .zarr store"):
        read(tmp_path / "cells.zarr")
