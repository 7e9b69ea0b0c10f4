"""`biocount run` end to end: real CSV with the tabular encoder, outputs, config files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from biocount.cli import cli

FAST_LSTM = "lstm:\n  members: 1\n  epochs: 8\n  patience: 3\n  min_epochs: 1\n  hidden: 8\n  adapter_dim: 8\narima:\n  reselect_growth: null\n"


@pytest.fixture
def fast_config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("quiet: true\noptions:\n  " + FAST_LSTM.replace("\n", "\n  ").rstrip() + "\n")
    return path


def invoke(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


def test_run_end_to_end_on_a_real_long_csv(shared_data, tmp_path, fast_config):
    out = tmp_path / "out"
    result = invoke("run", "--data", shared_data / "rdatasets_count_series/nlme_ovary_follicles_long.csv",
                    "--modalities", "follicle_count=tabular", "--horizon", "2", "--lookback", "4", "--time-axis", "index",
                    "--config", fast_config, "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "metrics.csv", "forecasts.csv", "observed.csv",
                                                 "run.json", "lstm.pt", "scores.csv", ".biocount-run",
                                                 "forecasts_encoded.csv"}  # counts: forecasts.csv is in counts
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["forecaster"]) == {"lstm", "arima", "naive", "climatology", "arima:native", "climatology:native",
                                          "ensemble:stack"}
    assert {"overall", "feature", "horizon"} == set(metrics["scope"])
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert list(forecasts.columns[:6]) == ["series", "feature", "origin", "horizon", "time", "observed"]
    history = pd.read_csv(out / "observed.csv")  # the whole observed target: forecasts' observed values among them
    merged = forecasts.dropna(subset=["observed"]).merge(history, on=["series", "feature", "time"], suffixes=("", "_h"))
    assert len(merged) == forecasts["observed"].notna().sum() and (merged["observed"] == merged["observed_h"]).all()
    assert history["time"].min() < forecasts["origin"].min()
    assert forecasts["series"].nunique() == 11
    info = json.loads((out / "run.json").read_text())
    assert info["plugins"]["encoders"]["follicle_count"] == "biocount:tabular"
    assert info["plugins"]["forecasters"]["arima"]["component"] == "biocount:arima"
    assert len(info["data"][0]["sha256"]) == 64 and info["registry"]["sha256"]
    assert {"read", "encode", "align", "fit+backtest", "write"} <= set(info["timings_s"])
    assert list(info["timings_s"])[-1] == "write" and info["timings_s"]["write"] >= 0  # the tables, last
    assert info["forecasters"]["lstm"]["device"] == "cpu" and "torch" in info["versions"]
    assert info["forecasters"]["lstm"]["lookback"] == 4 and info["baselines"] == ["arima", "naive", "climatology"]
    assert {"fit_s", "predict_s"} <= set(info["forecasters"]["arima"]["timings_s"])
    assert info["scored"]["test"]["series"] == 11 and info["split"]["unscored"] == {}
    assert "lstm" in result.output and "DM vs arima" in result.output and "MSE by horizon" in result.output
    assert info["headline"] == "ensemble:stack" and info["ensembles"]["ensemble:stack"]["per"] == "horizon"
    assert "headline: ensemble:stack" in result.output and "h=1 lstm" in result.output


def test_flags_override_the_config_file(tmp_path, shared_data):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("horizon: 5\nmodels: [naive]\nquiet: true\nmodalities: [lynx_trappings]\n")
    out = tmp_path / "o"
    result = invoke("run", "--config", cfg, "--horizon", "2", "--data",
                    shared_data / "rdatasets_count_series/datasets_lynx_long.csv", "--modalities", "count=tabular",
                    "--out", out)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["horizon"] == 2 and info["config"]["models"] == ["naive"]


@pytest.mark.parametrize(("args", "needle"), [
    (["--models", "lstm,prophet"], "no forecaster for name 'prophet'"),
    (["--modalities", "rna,lipids"], "modality 'lipids' is not in the demo study; available: genomic, rna, protein"),
    (["--data", "nowhere.h5mu"], "nowhere.h5mu: no such file"),
    (["--target", "protein:P99"], "target feature(s) P99 not in modality 'protein'"),
    (["--horizon", "40"], "no series is long enough to split"),
    (["--device", "gpu"], "Invalid value for '--device'"),
    (["--lookback", "0"], "lookback: Input should be greater than or equal to 1"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, needle):
    out = tmp_path / "out"
    result = invoke("run", *args, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert needle in result.output
    assert "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke("run", "--models", "naive", "--out", out, "--quiet")
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert (out / "keep.txt").read_text() == "mine"
    result = invoke("run", "--models", "naive", "--out", out, "--quiet", "--overwrite")
    assert result.exit_code == 2 and "not written by biocount" in result.output  # a folder of the user's
    assert (out / "keep.txt").read_text() == "mine"
    out2 = tmp_path / "out2"
    assert invoke("run", "--models", "naive", "--out", out2, "--quiet").exit_code == 0
    result = invoke("run", "--models", "naive", "--out", out2, "--quiet", "--overwrite")
    assert result.exit_code == 0, result.output
    assert (out2 / "metrics.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out2"]  # no temporary folders left


def test_a_failing_write_leaves_no_folder(tmp_path, monkeypatch):
    import biocount.engine as engine

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine.pd.DataFrame, "to_csv", boom)
    result = invoke("run", "--models", "naive", "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 1 and "internal error: RuntimeError: disk full" in result.output
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "run", "--models", "prophet", "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and isinstance(result.exception, Exception)


def test_bad_config_file(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("horizon: three\n")
    result = invoke("run", "--config", cfg)
    assert result.exit_code == 2 and f"--config {cfg}: horizon: Input should be a valid integer" in result.output
    cfg.write_text("colour: blue\n")
    result = invoke("run", "--config", cfg)
    assert result.exit_code == 2 and "colour: Extra inputs are not permitted" in result.output


def test_series_split_runs(tmp_path, fast_config):
    out = tmp_path / "o"
    result = invoke("run", "--split", "series", "--holdout", "D02,D05", "--models", "lstm,naive",
                    "--config", fast_config, "--out", out, "--lookback", "4")
    assert result.exit_code == 0, result.output
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert set(forecasts["series"]) == {"D02", "D05"}


def test_every_run_option_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    flags = [opt for p in cli.commands["run"].params for opt in p.opts if opt.startswith("--")]
    assert len(flags) > 15
    missing = [f for f in flags if f"`{f}" not in doc]
    assert missing == []


def test_ensembles_intervals_and_ablations_end_to_end(tmp_path, fast_config):
    out = tmp_path / "o"
    result = invoke("run", "--ensemble", "mean,stack", "--ensemble-per", "pooled", "--ablate-modalities", "--levels",
                    "0.8,0.9", "--config", fast_config, "--out", out, "--lookback", "4")
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv")
    overall = metrics[metrics.scope == "overall"].set_index("forecaster")
    assert {"ensemble:mean", "ensemble:stack", "lstm[protein]", "arima:native"} <= set(overall.index)
    assert np.isfinite(overall.loc["lstm[protein]", "dm_full_p"])
    assert overall[["coverage_80", "width_90", "winkler_90", "crps"]].loc["ensemble:stack"].notna().all()
    forecasts = pd.read_csv(out / "forecasts.csv")
    for col in ("lstm_lower_80", "lstm_upper_90", "ensemble:stack_lower_80", "arima:native_upper_80"):
        assert col in forecasts
    assert (forecasts["lstm_lower_80"] <= forecasts["lstm"]).all() and (forecasts["lstm"] <= forecasts["lstm_upper_80"]).all()
    info = json.loads((out / "run.json").read_text())
    w = info["ensembles"]["ensemble:stack"]
    assert w["per"] == "pooled" and abs(sum(w["weights"]) - 1) < 1e-9 and min(w["weights"]) >= 0
    assert w["members"] == ["lstm(protein)", "lstm", "arima", "naive", "climatology", "lstm[protein]"]  # and the refit


@pytest.mark.parametrize(("args", "needle"), [
    (["--ensemble", "median"], "unknown ensemble 'median'"),
    (["--levels", "0.8,1.5"], "levels 1.5: interval levels must lie strictly between 0 and 1"),
    (["--ensemble", "stack", "--models", "naive"], "needs at least two members, got 1"),
])
def test_ensemble_and_interval_bad_input(tmp_path, args, needle):
    result = invoke("run", *args, "--out", tmp_path / "o", "--quiet")
    assert result.exit_code == 2 and needle in result.output, result.output


def test_too_little_validation_for_an_interval_level_is_a_note_not_a_failure(tmp_path, fast_config):
    out = tmp_path / "o"
    result = invoke("run", "--levels", "0.8,0.999", "--models", "naive,arima", "--out", out, "--quiet",
                    "--config", fast_config)
    assert result.exit_code == 0, result.output
    assert "need at least 999 validation residuals" in result.output
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["coverage_80"].notna().any() and metrics["coverage_99.9"].isna().all()
    info = json.loads((out / "run.json").read_text())
    assert any("999 validation residuals" in n for n in info["notes"])


def test_series_at_unrelated_times_get_a_hint(shared_data, tmp_path):
    out = tmp_path / "o"
    result = invoke("run", "--data", shared_data / "rdatasets_count_series/nlme_ovary_follicles_long.csv",
                    "--modalities", "follicle_count=tabular", "--models", "naive", "--horizon", "1",
                    "--levels", "0.5", "--out", out, "--quiet")
    assert "consider --time-axis index" in result.output


def test_data_from_several_files_is_merged(tmp_path, demo_study, fast_config):
    import pandas as pd

    extra = tmp_path / "lipids.csv"
    rows = [(d, t, f"L{i}", float(10 + i + (t % 5))) for d in demo_study["protein"].obs["donor"].unique()
            for t in demo_study.uns["demo"]["times"] for i in range(3)]
    pd.DataFrame(rows, columns=["series_id", "time", "feature", "value"]).assign(modality="lipids").to_csv(extra, index=False)
    out = tmp_path / "o"
    result = invoke("run", "--data", "demo", "--data", extra, "--modalities", "rna,lipids=tabular", "--target", "lipids",
                    "--models", "naive,arima", "--config", fast_config, "--out", out)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert [d["source"] for d in info["data"]] == ["demo", str(extra)]
    again = invoke("run", "--data", extra, "--data", extra, "--modalities", "lipids=tabular", "--out", tmp_path / "x")
    assert again.exit_code == 2 and "modality 'lipids' is in both" in again.output


def test_union_grid(tmp_path, demo_study):
    extra = tmp_path / "lipids.csv"
    rows = [(d, t + 0.5, "L1", float(10 + (t % 5))) for d in demo_study["protein"].obs["donor"].unique()
            for t in demo_study.uns["demo"]["times"]]
    pd.DataFrame(rows, columns=["series_id", "time", "feature", "value"]).assign(modality="lipids").to_csv(extra, index=False)
    out = tmp_path / "o"
    result = invoke("run", "--data", "demo", "--data", extra, "--modalities", "protein,lipids=tabular", "--grid", "union",
                    "--models", "naive", "--levels", "0.5", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert info["grid"] == {"kind": "union", "points": 60}


def test_short_series_get_a_shorter_default_lookback_with_a_note(shared_data, tmp_path, fast_config):
    out = tmp_path / "o"
    result = invoke("run", "--data", shared_data / "metacycle_circadian/yeast_cellcycle_mrna_orlando2008_long.csv",
                    "--modalities", "mRNA=tabular", "--models", "lstm,naive", "--out", out, "--quiet",
                    "--config", fast_config)
    assert result.exit_code == 0, result.output
    assert "lstm: lookback 3 (not 12)" in result.output
    assert json.loads((out / "run.json").read_text())["forecasters"]["lstm"]["lookback"] == 3


def test_a_lab_protocol_scores_exactly_the_listed_origins_on_a_real_table(shared_data, tmp_path, fast_config):
    """Train on some mares, validate on others, forecast held-out mares at the origins a lab lists."""
    origins = tmp_path / "origins.csv"
    listed = {("mare9", 5.0), ("mare9", 12.0), ("mare10", 8.0), ("mare11", 3.0), ("mare11", 20.0)}
    origins.write_text("series,origin\n" + "".join(f"{s},{t:g}\n" for s, t in sorted(listed)))
    (tmp_path / "train.txt").write_text("mare1\nmare2\nmare3\nmare4\nmare5\nmare6\n")
    out = tmp_path / "o"
    result = invoke("run", "--data", shared_data / "rdatasets_count_series/nlme_ovary_follicles_long.csv",
                    "--modalities", "follicle_count=tabular", "--horizon", "2", "--time-axis", "index",
                    "--split", "series", "--train-series", tmp_path / "train.txt", "--val-series", "mare7,mare8",
                    "--origins", origins, "--config", fast_config, "--out", out)
    assert result.exit_code == 0, result.output
    forecasts = pd.read_csv(out / "forecasts.csv", dtype={"series": str})
    scored = set(zip(forecasts["series"], forecasts["origin"].astype(float), strict=True))
    assert scored == listed
    for name in ("lstm", "arima", "naive"):
        assert forecasts[name].notna().all(), name
    info = json.loads((out / "run.json").read_text())
    assert info["split"]["test_series"] == ["mare10", "mare11", "mare9"]
    assert info["split"]["validation_series"] == ["mare7", "mare8"]
    assert info["scored"]["test"] == {"series": 3, "origins": 5, "points": int(forecasts["observed"].notna().sum())}
    assert info["scored"]["validation"]["series"] == 2
    assert "scored: validation 2 series" in result.output


def test_threads_reach_torch_and_blas_and_workers_use_one(tmp_path, fast_config, monkeypatch):
    import torch
    from threadpoolctl import threadpool_info

    from biocount.forecasters.lstm import forecaster as lstm_module

    seen = {}
    real_fit = lstm_module.LSTMForecaster._fit

    def spy(self, task):
        seen["torch"] = torch.get_num_threads()
        seen["blas"] = {i["num_threads"] for i in threadpool_info()}
        return real_fit(self, task)

    monkeypatch.setattr(lstm_module.LSTMForecaster, "_fit", spy)
    before = torch.get_num_threads()
    out = tmp_path / "o"
    result = invoke("run", "--models", "lstm,naive", "--threads", "1", "--config", fast_config, "--out", out)
    assert result.exit_code == 0, result.output
    assert seen["torch"] == 1 and seen["blas"] <= {1}
    assert torch.get_num_threads() == before  # restored
    info = json.loads((out / "run.json").read_text())
    assert info["threads"]["threads"] == 1 and info["threads"]["source"] == "--threads"
    assert info["forecasters"]["lstm"]["torch_threads"] == 1
    result = invoke("run", "--models", "lstm", "--config", fast_config, "--out", tmp_path / "auto")
    info = json.loads((tmp_path / "auto" / "run.json").read_text())
    assert info["threads"]["source"] == "automatic" and info["threads"]["blas"] == 1
    assert info["forecasters"]["lstm"]["torch_threads"] == 1  # a small model: one thread
    monkeypatch.setenv("BIOCOUNT_THREADS", "zero")
    result = invoke("run", "--models", "naive", "--out", tmp_path / "o2", "--quiet")
    assert result.exit_code == 2 and "BIOCOUNT_THREADS=zero: not a positive whole number" in result.output


def test_arima_workers_run_blas_single_threaded():
    from biocount.parallel import map_series

    def blas_env(_):
        import os

        return os.environ.get("OPENBLAS_NUM_THREADS"), os.getpid()

    out = map_series(blas_env, [(i,) for i in range(4)], n_jobs=2)
    assert {env for env, _ in out} == {"1"} and len({pid for _, pid in out}) >= 1
    assert len(map_series(blas_env, [(0,)], n_jobs=8)) == 1  # never more workers than jobs (here: in-process)


def test_submit_series_gives_results_in_order_and_raises_a_failed_job():
    """The LSTM's members start on the workers while this process trains one itself: the results come back in
    the order of the jobs, and a job that fails raises when the results are asked for."""
    import operator

    from biocount.parallel import submit_series

    results = submit_series(operator.floordiv, [(i, 3) for i in range(12)], n_jobs=2, shared=())
    assert results() == [i // 3 for i in range(12)]
    failing = submit_series(operator.floordiv, [(1, 1), (1, 0), (4, 2)], n_jobs=2)
    with pytest.raises(ZeroDivisionError):
        failing()
