"""The bad-input catalogue: every case exits 2 (or succeeds as documented) with one line naming the file,
column or option and what to do, no traceback, and no output folder or input file created, changed or
deleted."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import biocount as bc
from biocount import BiocountInputError
from biocount.cli import cli
from biocount.engine import RunConfig

LONG = "series_id,time,feature,value\n" + "".join(f"s{s},{t},x,{(s * 5 + t * 3) % 7 + 1}\n"
                                                  for s in range(3) for t in range(16))


def write(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    if name.endswith(".gz") and isinstance(content, str):
        path.write_bytes(gzip.compress(content.encode()))
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def corrupt_h5ad(tmp: Path) -> Path:
    import anndata as ad
    import pandas as pd

    path = tmp / "study.h5ad"
    obs = pd.DataFrame({"series": ["a"] * 4, "time": np.arange(4.0)}, index=[f"r{i}" for i in range(4)])
    ad.AnnData(X=np.ones((4, 2), dtype=np.float32), obs=obs).write_h5ad(path)
    raw = bytearray(path.read_bytes())
    for i in range(0, len(raw), 7):  # flipped bytes all through the file
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def bomb(tmp: Path) -> Path:
    path = tmp / "bomb.csv.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"series_id,time,feature,value\n")
        fh.write(b"s0,1,x,1\n" * 300_000)  # 2.7 MB of text from a few KB
    return path


# name, files {name: content or callable}, args (FILE:<name> is replaced by the path), env, needle
CASES = [
    ("empty file", {"t.csv": ""}, ["--data", "FILE:t.csv"], {}, "t.csv: the file is empty"),
    ("binary garbage", {"t.csv": b"\x00\x01\x02garbage\x00" * 50}, ["--data", "FILE:t.csv"], {}, "binary data, not a text table"),
    ("not gzip", {"t.csv.gz": b"series_id,time\n1,2\n"}, ["--data", "FILE:t.csv.gz"], {}, "not gzip-compressed data"),
    ("long table without value", {"t.csv": "series_id,time,feature\na,1,x\n"}, ["--data", "FILE:t.csv"], {},
     "it has 'feature' but no 'value'"),
    ("long table without feature", {"t.csv": "series_id,time,value\na,1,3\n"}, ["--data", "FILE:t.csv"], {},
     "it has 'value' but no 'feature'"),
    ("one non-numeric cell in a wide table", {"t.csv": "series_id,time,x,y\na,1,1,2\na,2,oops,3\na,3,1,2\n"},
     ["--data", "FILE:t.csv"], {}, "column 'x' is not numeric (line 3: 'oops')"),
    ("a value too large", {"t.csv": LONG.replace("s0,3,x,3\n", "s0,3,x,1e300\n")}, ["--data", "FILE:t.csv"], {},
     "too large to store"),
    ("ragged rows", {"t.csv": "series_id,time,feature,value\na,1,x,1\na,2,x,1,9\n"}, ["--data", "FILE:t.csv"], {},
     "malformed table"),
    ("duplicate long rows", {"t.csv": "series_id,time,feature,value\na,1,x,1\na,1,x,2\n"}, ["--data", "FILE:t.csv"], {},
     "duplicate rows for series 'a'"),
    ("text times", {"t.csv": "series_id,time,feature,value\na,monday,x,1\n"}, ["--data", "FILE:t.csv"], {},
     "time column 'time' is not numeric"),
    ("missing times", {"t.csv": "series_id,time,feature,value\na,,x,1\na,2,x,1\n"}, ["--data", "FILE:t.csv"], {},
     "has missing values"),
    ("no time column", {"t.csv": "series_id,feature,value\na,x,1\n"}, ["--data", "FILE:t.csv"], {}, "no time column"),
    ("no series column", {"t.csv": "time,feature,value\n1,x,1\n"}, ["--data", "FILE:t.csv"], {}, "no series column"),
    ("unknown format", {"t.parquet": "x"}, ["--data", "FILE:t.parquet"], {}, "unknown format"),
    ("missing file", {}, ["--data", "nowhere.csv"], {}, "nowhere.csv: no such file"),
    ("gzip bomb", {"bomb.csv.gz": bomb}, ["--data", "FILE:bomb.csv.gz"], {"BIOCOUNT_MAX_TABLE_MB": "1"},
     "more than 1 MB of table (after decompression); set BIOCOUNT_MAX_TABLE_MB"),
    ("damaged h5ad", {"study.h5ad": corrupt_h5ad}, ["--data", "FILE:study.h5ad"], {}, "study.h5ad: not a"),
    ("series key names the feature column", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--series-key", "feature"], {},
     "--series-key feature names the feature column"),
    ("unknown time key", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--time-key", "nope"], {}, "no time column 'nope'"),
    ("one protein per sample", {"t.csv": LONG.replace("series_id,time,feature,value", "series_id,time,feature,value")
                                .replace(",x,", ",P1,")},
     ["--data", "FILE:t.csv", "--modalities", "t=protein", "--models", "naive"], {}, "only one protein ('P1')"),
    ("empty modalities", {}, ["--modalities", ""], {}, "modalities: empty"),
    ("empty models", {}, ["--models", ""], {}, "models: empty"),
    ("horizon 0", {}, ["--horizon", "0"], {}, "horizon: Input should be greater than or equal to 1"),
    ("horizon too long", {}, ["--horizon", "40"], {}, "no series is long enough to split"),
    ("jobs 0", {}, ["--jobs", "0"], {}, "0 processes cannot run anything"),
    ("jobs -2", {}, ["--jobs", "-2"], {}, "jobs: Input should be greater than or equal to -1"),
    ("negative seed", {}, ["--seed", "-3", "--split", "series"], {}, "seed: Input should be greater than or equal to 0"),
    ("huge seed", {}, ["--seed", str(2**70)], {}, "seed: Input should be less than or equal to"),
    ("level above 1", {}, ["--levels", "1.5"], {}, "strictly between 0 and 1"),
    ("levels not numbers", {}, ["--levels", "abc"], {}, "not a comma list of numbers"),
    ("unknown ensemble", {}, ["--ensemble", "median"], {}, "unknown ensemble 'median'"),
    ("time scale of a static modality", {}, ["--modalities", "rna,protein,genomic", "--time-scale", "genomic=2"], {},
     "--time-scale genomic: modality 'genomic' is static (no time column)"),
    ("period of a static linked modality", {}, ["--modalities", "rna,protein,genomic", "--link", "genomic=all",
                                                "--period", "24"], {}, "--period genomic: modality 'genomic' is static"),
    ("test fraction 0", {}, ["--split", "series", "--test-series", "0"], {}, "strictly between 0 and 1"),
    ("test fraction negative", {}, ["--split", "series", "--holdout", "-0.5"], {}, "strictly between 0 and 1"),
    ("holdout with a time split", {}, ["--holdout", "D01"], {}, "--test-series applies to --split series"),
    ("unknown test series", {}, ["--split", "series", "--test-series", "zz"], {}, "--test-series names unknown series zz"),
    ("warmup with a time split", {}, ["--warmup", "3"], {}, "--warmup applies to --split series"),
    ("series in two roles", {}, ["--split", "series", "--test-series", "D01", "--val-series", "D01"], {},
     "named for more than one of"),
    ("origins file missing", {}, ["--origins", "nowhere.csv"], {}, "--origins nowhere.csv: no such file"),
    ("origins without columns", {"o.csv": "a,b\n1,2\n"}, ["--origins", "FILE:o.csv"], {},
     "and an 'origin' column"),
    ("origin not a number", {"o.csv": "series,origin\nD01,soon\n"}, ["--origins", "FILE:o.csv"], {}, "is not a number"),
    ("origin not measured", {"o.csv": "series,origin\nD01,0.123\n"}, ["--origins", "FILE:o.csv"], {},
     "has no measurement at time 0.123"),
    ("origin of an unknown series", {"o.csv": "series,origin\nZZ,1\n"}, ["--origins", "FILE:o.csv"], {},
     "series 'ZZ' is not in the target"),
    ("unknown forecaster", {}, ["--models", "lstm,prophet"], {}, "no forecaster for name 'prophet'"),
    ("forecaster twice", {}, ["--models", "naive,naive"], {}, "lists a forecaster twice"),
    ("unknown target feature", {}, ["--target", "protein:P99"], {}, "target feature(s) P99 not in modality 'protein'"),
    ("target from two modalities", {}, ["--target", "protein:P01,rna:G01"], {}, "features must come from one modality"),
    ("unknown modality", {}, ["--modalities", "rna,lipids"], {}, "modality 'lipids' is not in the demo study"),
    ("cuda without a GPU", {}, ["--device", "cuda", "--models", "lstm"], {}, "--device cuda: no CUDA device"),
    ("lookback 0", {}, ["--lookback", "0"], {}, "lookback: Input should be greater than or equal to 1"),
    ("lookback for a model without one", {}, ["--lookback", "4", "--models", "naive"], {},
     "--lookback: none of the forecasters naive takes this option"),
    ("cell for ARIMA", {}, ["--cell", "peephole", "--models", "arima"], {}, "--cell: none of the forecasters arima"),
    ("ablation without an input model", {}, ["--ablate-modalities", "--models", "naive,arima"], {},
     "none of naive, arima uses input modalities"),
    ("invalid YAML", {"c.yaml": "horizon: 3\nmodels: [naive\n"}, ["--config", "FILE:c.yaml"], {},
     "not valid YAML at line 3"),
    ("duplicate YAML keys", {"c.yaml": "horizon: 3\nhorizon: 4\n"}, ["--config", "FILE:c.yaml"], {},
     "option 'horizon' is given twice"),
    ("unknown YAML option", {"c.yaml": "horizn: 3\n"}, ["--config", "FILE:c.yaml"], {}, "horizn: Extra inputs are not permitted"),
    ("YAML not a mapping", {"c.yaml": "- 1\n- 2\n"}, ["--config", "FILE:c.yaml"], {}, "expected a mapping of options"),
    ("options of an unknown component", {"c.yaml": "options:\n  nosuchcomponent: {a: 1}\n"},
     ["--config", "FILE:c.yaml"], {}, "'nosuchcomponent' is neither a modality of this run nor a forecaster; valid keys"),
    ("options keyed by encoder", {"t.csv": LONG, "c.yaml": "options:\n  tabular: {scale: false}\n"},
     ["--data", "FILE:t.csv", "--modalities", "t=tabular", "--config", "FILE:c.yaml"], {},
     "options of an encoder are keyed by modality: use 't'"),
    ("unknown model option", {"c.yaml": "options:\n  lstm: {hiden: 3}\n"}, ["--config", "FILE:c.yaml"], {},
     "forecaster 'lstm' option hiden"),
    ("output inside a file", {"f.txt": "x"}, ["--out", "FILE:f.txt/out"], {}, "is not a folder"),
    ("output is the current folder", {}, ["--out", ".", "--overwrite"], {}, "that is the current folder"),
    ("output not biocount's", {"mine/keep.txt": "mine"}, ["--out", "FILE:mine", "--overwrite"], {},
     "was not written by biocount"),
    ("output exists", {"prev/keep.txt": "mine"}, ["--out", "FILE:prev"], {}, "the folder exists; pass --overwrite"),
    # second round (issue 30): what a fresh hostile pass found
    ("empty origins file", {"o.csv": ""}, ["--origins", "FILE:o.csv"], {}, "o.csv: the file is empty"),
    ("origins header only", {"o.csv": "series,origin\n"}, ["--origins", "FILE:o.csv"], {}, "o.csv: lists no origin"),
    ("test size beyond a test series", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--modalities", "t=tabular",
                                                         "--split", "series", "--test-size", "30", "--models", "naive"],
     {}, "--test-size 30 scores more points than it leaves context for (a test series needs at least 33)"),
    ("replicates without a header", {"t.csv": LONG, "r.csv": "s0,u\ns1,u\n"},
     ["--data", "FILE:t.csv", "--modalities", "t=tabular", "--replicates", "FILE:r.csv", "--models", "naive"], {},
     "r.csv has no header: its first line 's0,u' is a mapping; add a header line first, e.g. 'series,unit'"),
    ("replicate unit that is a series", {"t.csv": LONG, "r.csv": "series,unit\ns0,s1\n"},
     ["--data", "FILE:t.csv", "--modalities", "t=tabular", "--replicates", "FILE:r.csv", "--models", "naive"], {},
     "unit 's1' of series 's0' is also a series of the target, so s0 would be averaged into it"),
    ("link file without a header", {"t.csv": LONG, "m.csv": LONG.replace(",x,", ",m,"), "l.csv": "s0,s0\ns1,s1\n"},
     ["--data", "FILE:t.csv", "--data", "FILE:m.csv", "--modalities", "t=tabular,m=tabular", "--target", "t",
      "--link", "m=FILE:l.csv", "--models", "naive"], {}, "l.csv has no header: its first line 's0,s0' is a mapping"),
    ("period shorter than a time step", {"t.csv": LONG, "m.csv": "series_id,time,feature,value\nc,1,m,1\nc,2,m,2\n"},
     ["--data", "FILE:t.csv", "--data", "FILE:m.csv", "--modalities", "t=tabular,m=tabular", "--target", "t",
      "--link", "m=all", "--period", "1e-300", "--models", "naive"], {},
     "--period 1e-300 is shorter than the smallest step between the target's times (1)"),
    ("period infinite", {}, ["--link", "rna=all", "--period", "inf"], {}, "period: Input should be a finite number"),
    ("table size not a number", {"t.csv": LONG}, ["--data", "FILE:t.csv"], {"BIOCOUNT_MAX_TABLE_MB": "abc"},
     "BIOCOUNT_MAX_TABLE_MB=abc: not a size in MB"),
    ("table size nan", {"t.csv": LONG}, ["--data", "FILE:t.csv"], {"BIOCOUNT_MAX_TABLE_MB": "nan"},
     "BIOCOUNT_MAX_TABLE_MB=nan: not a size in MB"),
    ("table size inf", {"t.csv": LONG}, ["--data", "FILE:t.csv"], {"BIOCOUNT_MAX_TABLE_MB": "inf"},
     "BIOCOUNT_MAX_TABLE_MB=inf: not a size in MB"),
    ("dask inproc address", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--modalities", "t=tabular", "--models", "naive",
                                              "--dask", "inproc://x"], {}, "--dask inproc://x: cannot connect"),
    ("dask tls without credentials", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--modalities", "t=tabular", "--models",
                                                       "naive", "--dask", "tls://127.0.0.1:9"], {},
     "--dask tls://127.0.0.1:9: cannot connect"),
    ("zarr store with a lost chunk", {"s.zarr": lambda tmp: zarr_without_a_chunk(tmp / "s.zarr")},
     ["--data", "FILE:s.zarr", "--modalities", "s=tabular"], {}, "s.zarr: X/data is missing 1 of its"),
    ("sparse cells with indices past the matrix", {"cells.h5ad": lambda tmp: damaged_sparse_h5ad(tmp / "cells.h5ad")},
     ["--data", "FILE:cells.h5ad", "--modalities", "cells=rna", "--models", "naive"], {},
     "cells.h5ad: X is a damaged sparse matrix (indices must be < 30); re-export the file"),
    ("the same read lazily from disk", {"cells.h5ad": lambda tmp: damaged_sparse_h5ad(tmp / "cells.h5ad")},
     ["--data", "FILE:cells.h5ad", "--modalities", "cells=rna", "--models", "naive"], {"BIOCOUNT_IN_MEMORY_MB": "0"},
     "the cell matrix is damaged (indices must be < 30); re-export the file"),
    ("encoder typo", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--modalities", "t=tabluar"], {},
     "--modalities MOD=tabluar: no loaded encoder 'tabluar' (did you mean 'tabular'?); encoders: genomic, protein"),
    ("modality without an encoder", {"t.csv": LONG}, ["--data", "FILE:t.csv", "--modalities", "t"], {},
     "no encoder for modality 't'; known: genomic, protein, rna; name one with --modalities t=tabular"),
    ("modality typo", {}, ["--modalities", "rna,protien"], {},
     "modality 'protien' is not in the demo study (did you mean 'protein'?); available: genomic, rna, protein"),
    ("forecaster typo", {}, ["--models", "lstm,arim"], {},
     "no forecaster for name 'arim' (did you mean 'arima'?); known: arima, climatology, lstm, naive"),
    ("unknown plugin in BIOCOUNT_LOAD_PLUGINS", {}, [], {"BIOCOUNT_LOAD_PLUGINS": "biocount,nosuch"},
     "BIOCOUNT_LOAD_PLUGINS: 'nosuch' is not an installed plugin distribution (installed: biocount"),
]


def damaged_sparse_h5ad(path: Path) -> None:
    """Single cells whose sparse matrix has column indices past its width (it crashed the process: exit 139)."""
    import warnings

    import anndata as ad
    import h5py
    import pandas as pd
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    obs = pd.DataFrame({"series": rng.choice(["a", "b", "c"], 600), "time": rng.integers(0, 20, 600) * 1.0},
                       index=[f"c{i}" for i in range(600)])
    X = sp.random(600, 30, density=0.3, format="csr", random_state=0, dtype=np.float32)
    X.data = np.round(X.data * 10) + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=X, obs=obs).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        indices = f["X/indices"][:]
        indices[::5] = 10**6
        f["X/indices"][:] = indices


def zarr_without_a_chunk(path: Path) -> None:
    """An AnnData .zarr store (sparse X in several chunks) with one chunk of X/data deleted."""
    import warnings

    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    obs = pd.DataFrame({"series": np.repeat(["a", "b"], 20), "time": np.tile(np.arange(20.0), 2)},
                       index=[f"c{i}" for i in range(40)])
    X = sp.random(40, 80, density=0.8, format="csr", random_state=0, dtype=np.float32) + sp.eye(40, 80, format="csr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=sp.csr_matrix(X, dtype=np.float32), obs=obs).write_zarr(path)
        import zarr

        group = zarr.open(str(path / "X"), mode="r+")
        values = group["data"][:]
        del group["data"]
        group.create_array("data", shape=values.shape, chunks=(500,), dtype=values.dtype)[:] = values
    chunks = sorted(p for p in (path / "X" / "data").iterdir() if not p.name.startswith("."))
    assert len(chunks) > 1
    chunks[0].unlink()


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("files", "args", "env", "needle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cli_bad_input(tmp_path, monkeypatch, files, args, env, needle):
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(tmp_path)
        else:
            write(tmp_path, name, content)
    args = [a.replace("FILE:", f"{tmp_path}/") for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "results")]
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, ["run", *args, "--quiet"])
    assert result.exit_code == 2, result.output
    assert needle in result.output, result.output
    assert "Traceback" not in result.output
    if not result.output.startswith("Usage"):
        assert len(result.output.strip().splitlines()) == 1, result.output  # one line
    assert snapshot(tmp_path) == before  # nothing created, changed or deleted
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["--split", "sideways"], "Invalid value for '--split'"),
    (["--device", "gpu"], "Invalid value for '--device'"),
    (["--grid", "weekly"], "Invalid value for '--grid'"),
    (["--time-axis", "calendar"], "Invalid value for '--time-axis'"),
])
def test_cli_choices_are_checked_by_click(tmp_path, args, needle):
    result = CliRunner().invoke(cli, ["run", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_series_ids_stay_strings_and_tabs_are_detected(tmp_path):
    path = tmp_path / "t.csv"  # tab-separated although named .csv, ids with leading zeros
    path.write_text(LONG.replace(",", "\t").replace("s0\t", "007\t").replace("s1\t", "7\t"))
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "--modalities", "t=tabular", "--models", "naive",
                                      "--split", "series", "--test-series", "007", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    import pandas as pd

    assert set(pd.read_csv(out / "forecasts.csv", dtype={"series": str})["series"]) == {"007"}


def test_negative_values_are_not_counts_and_the_run_says_so(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(LONG.replace(",1\n", ",-1\n"))
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "--modalities", "t=tabular", "--models", "naive",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "treated as continuous (no log1p): the training rows hold negative values" in result.output


@pytest.mark.parametrize(("call", "needle"), [
    (lambda: bc.run(RunConfig(models=["naive"]), levels=[1.5]), "strictly between 0 and 1"),
    (lambda: bc.run({"horizon": 0}), "horizon: Input should be greater than or equal to 1"),
    (lambda: bc.run(42), "config must be a RunConfig, a dict of options or a YAML path"),
    (lambda: bc.run({"modalities": []}), "modalities: empty"),
    (lambda: bc.tl.forecast({"not": "anndata"}), "data must be an AnnData or a MuData, not dict"),
    (lambda: bc.run({"jobs": 0}), "0 processes"),
])
def test_python_api_bad_input(call, needle):
    with pytest.raises(BiocountInputError, match=None) as info:
        call()
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_python_api_validates_overrides_of_a_config():
    config = RunConfig(models=["naive"])
    from biocount.engine import validated

    merged = validated({**config.model_dump(exclude_unset=True), "models": "naive,arima"})
    assert merged.models == ["naive", "arima"]  # split on commas, not into characters


def test_contract_errors_read_as_sentences():
    from biocount.errors import ContractError

    err = ContractError(["values must be 3-D."], where="modality 'atac' (lab:atac)")
    assert str(err) == "modality 'atac' (lab:atac) breaks the data contract: values must be 3-D."


def test_a_constant_target_is_said_not_scored_silently(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("series_id,time,feature,value\n" + "".join(f"s{s},{t},x,{s + 5}\n" for s in range(3) for t in range(16)))
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "--modalities", "t=tabular", "--models", "naive,arima",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "target feature(s) x never change within any series" in result.output
    assert "RuntimeWarning" not in result.output


@pytest.mark.parametrize(("args", "needle"), [
    (["plugins", "new", "a" * 300, "--modality", "lipidomics"], "300 characters; use at most 64"),
    (["plugins", "disable", "biocount"], "biocount is the host itself (core and the built-in plugins)"),
    (["plugins", "disable", "lstm"], "'lstm' is not an installed plugin distribution"),
])
def test_plugin_commands_bad_input(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and needle in result.output and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and snapshot(tmp_path) == before


def test_an_edited_checkpoint_is_one_line(tmp_path, demo_modalities):
    import torch

    from biocount.engine import run, validated
    from biocount.forecasters.lstm.forecaster import LSTMForecaster

    config = validated({"modalities": ["rna", "protein"], "models": ["lstm"], "horizon": 1, "quiet": True,
                        "options": {"lstm": {"epochs": 2, "members": 1, "hidden": 4}, "rna": {"n_top_genes": 5}}})
    result = run(config, data=demo_modalities)
    path = tmp_path / "lstm.pt"
    result.fitted["lstm"].save(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["options"]["hidden"] = -3
    torch.save(ckpt, path)
    with pytest.raises(BiocountInputError, match=r"lstm.pt: a damaged or edited biocount checkpoint \(hidden: Input "
                                                 r"should be greater than or equal to 1\); retrain"):
        LSTMForecaster.load(path)


def test_a_name_that_would_disable_biocount_names_the_distribution(tmp_path, monkeypatch):
    """Every built-in lives in the biocount distribution: a gate on it names the distribution and the
    component the run needs, not whichever of its plugins happened to be listed first."""
    monkeypatch.setenv("BIOCOUNT_LOAD_PLUGINS", "something-else")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", "--models", "naive", "--quiet"])
    assert result.exit_code == 2 and "BIOCOUNT_LOAD_PLUGINS: 'something-else' is not an installed" in result.output


def test_a_very_wide_target_is_said_before_the_per_feature_models_start(tmp_path, monkeypatch):
    """A 100,000-column table as the target made ARIMA fit 300,000 models in silence (> 300 s, no word). The
    run now says, before fitting, how many per-series-and-feature models that is and how to fit fewer
    (threshold lowered here so a small table shows it)."""
    import biocount.evaluation.candidates as candidates

    monkeypatch.setattr(candidates, "MANY_LOCAL_FITS", 20)
    header = "series_id,time," + ",".join(f"g{i}" for i in range(10))
    rows = [f"s{s},{t}," + ",".join(str((i * t + s) % 7 + 1) for i in range(10)) for s in range(3) for t in range(16)]
    data = write(tmp_path, "wide.csv", "\n".join([header, *rows]) + "\n")
    result = CliRunner().invoke(cli, ["run", "--data", str(data), "--modalities", "wide=tabular", "--models",
                                      "naive,arima", "--horizon", "1", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    line = ("arima fits one model per series x target feature: 30 here (3 series x 10 features), which can take "
            "hours; forecast fewer features with --target wide:F1,F2,... or leave arima out of --models")
    lines = result.output.splitlines()
    said = next(i for i, x in enumerate(lines) if line in x)
    assert said < next(i for i, x in enumerate(lines) if "fitting arima" in x)


def test_a_target_chosen_for_the_user_is_said(tmp_path):
    """--modalities rna,genomic names no protein: the first modality is forecast, and the run says so."""
    result = CliRunner().invoke(cli, ["run", "--modalities", "rna,genomic", "--models", "naive", "--quiet",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert ("note: target: rna (no 'protein' among --modalities rna,genomic, so the first is forecast); choose "
            "with --target MOD or MOD:FEATURE,...") in " ".join(result.output.split())
