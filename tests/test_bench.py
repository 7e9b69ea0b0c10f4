"""The benchmarks' own wiring (their figures live in docs/performance.md, not in tests)."""

from __future__ import annotations

import json

import pytest


def test_the_profile_benchmark_splits_the_lstm_steps(tmp_path, monkeypatch, capsys):
    """`python -m bench profile` times each part of the LSTM's training steps: one gather, forward, backward
    and optimiser call per step, one validation per epoch (it printed "no LSTM training steps" for every run
    after the LSTM moved into its own package)."""
    import bench.profile as profile

    monkeypatch.setattr(profile, "RESULTS", tmp_path / "results")
    config = tmp_path / "fast.yaml"
    config.write_text("options:\n  lstm: {epochs: 3, patience: null, members: 1, hidden: 4, adapter_dim: 4}\n")
    profile.main(["--synthetic", "6,20,2", "--horizon", "1", "--models", "lstm,naive", "--config", str(config)])
    saved = json.loads((tmp_path / "results" / "profile.json").read_text())
    calls = {row["part"]: row["calls"] for row in saved["lstm_steps"]}
    assert set(calls) == set(profile.STEPS)
    assert calls["gather"] == calls["forward"] == calls["backward"] == calls["optimiser"] > 0
    assert calls["forward"] % 3 == 0 and calls["validation"] == 3
    assert "no LSTM training steps" not in capsys.readouterr().out


def test_the_profile_benchmark_has_its_own_help(tmp_path, monkeypatch, capsys):
    """`python -m bench profile --help` printed `biocount run --help` and then a traceback (no run.json)."""
    import bench.profile as profile

    monkeypatch.setattr(profile, "RESULTS", tmp_path / "results")
    profile.main(["--help"])
    assert "--synthetic S,T,F" in capsys.readouterr().out and not (tmp_path / "results").exists()


def test_the_365_series_study_benchmark_runs_the_linked_two_modality_study(tmp_path, monkeypatch):
    """`python -m bench study365` builds the protein study with mRNA under its own sample ids, links them with
    a file, runs `biocount run` on it and reports ARIMA's share of persistence over every series x protein."""
    import pandas as pd

    import bench.common as common
    import bench.study365 as study365

    path, link = study365.write_study(tmp_path, series=5, points=16, features=2)
    frame = pd.read_csv(path)
    assert set(frame.loc[frame["modality"] == "mRNA", "series_id"]) == {f"m{i}" for i in range(5)}
    assert set(frame.loc[frame["modality"] == "protein", "series_id"]) == {f"s{i}" for i in range(5)}
    assert pd.read_csv(link).to_dict("list") == {"series": [f"s{i}" for i in range(5)],
                                                  "mRNA": [f"m{i}" for i in range(5)]}
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    config = tmp_path / "fast.yaml"
    config.write_text("options:\n  lstm: {epochs: 2, patience: null, members: 1, hidden: 4, adapter_dim: 4}\n")
    study365.main(["--series", "5", "--features", "2", "--config", str(config)])
    row = json.loads((tmp_path / "results" / "study365.json").read_text())["rows"][0]
    assert (row["series"], row["features"]) == (5, 2)
    assert row["arima_persistence"].endswith("of 10") and row["lstm_s"] > 0 and row["wall_s"] > 0


def test_a_benchmark_without_options_answers_help_with_its_description(capsys):
    """`python -m bench cost --help` prints what the cost benchmark measures (it said "unknown benchmark
    '--help'" and exited 2); an unknown name still exits 2 naming the choices."""
    from bench.__main__ import main

    assert main(["cost", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("python -m bench cost: ") and "previous default" in out
    assert main(["nonsense"]) == 2 and "choose from" in capsys.readouterr().err


def test_accuracy_suite_without_any_task_says_why(tmp_path, monkeypatch):
    """`bench accuracy --only` matching nothing (or no shared tables) ends with one line naming --only and the
    data folder, not a traceback from an empty table."""
    import bench.accuracy as accuracy

    monkeypatch.setattr(accuracy, "RESULTS", tmp_path / "results")
    with pytest.raises(SystemExit, match=r"no task ran \(--only 'no such task' matched 0 task\(s\)"):
        accuracy.main(["--only", "no such task", "--no-doc"])
    assert not (tmp_path / "results").exists()


def test_accuracy_suite_scores_saved_runs_again_without_fitting(tmp_path, monkeypatch, shared_data):
    """`bench accuracy --save-runs DIR` keeps each run's scored arrays; `--from-runs DIR` gives the same table
    without fitting anything (no engine run: it is replaced by one that fails)."""
    import bench.accuracy as accuracy
    import biocount.engine as engine

    monkeypatch.setattr(accuracy, "RESULTS", tmp_path / "results")
    task = ["--only", "hare-lynx", "--seeds", "2", "--no-doc"]  # input modalities: ablation pairs, own-parts checks
    accuracy.main([*task, "--save-runs", str(tmp_path / "runs")])
    first = json.loads((tmp_path / "results" / "accuracy.json").read_text())
    assert len(list((tmp_path / "runs").glob("*.pkl"))) == 2

    def no_fitting(*args, **kwargs):
        raise AssertionError("--from-runs must not run the engine")

    monkeypatch.setattr(engine, "run", no_fitting)
    accuracy.main([*task, "--from-runs", str(tmp_path / "runs")])
    again = json.loads((tmp_path / "results" / "accuracy.json").read_text())
    assert again["summary"] == first["summary"] and again["results"] == first["results"]
    assert first["results"]["hare-lynx pelts"]["pairs"] and first["results"]["hare-lynx pelts"]["refits_checks"]


def test_accuracy_suite_adds_extra_forecasters_where_the_data_allow(tmp_path, monkeypatch, capsys, shared_data):
    """`bench accuracy --models nbar` runs every task with nbar as well; a task whose target nbar refuses (pig
    weight: not counts) runs without it and says so; --models needs new runs, not saved ones."""
    import bench.accuracy as accuracy
    import biocount.engine as engine

    monkeypatch.setattr(accuracy, "RESULTS", tmp_path / "results")
    seen, real = [], engine.run
    monkeypatch.setattr(engine, "run", lambda config, **kw: seen.append(list(config.models)) or real(config, **kw))
    accuracy.main(["--only", "lynx trap,pig", "--seeds", "1", "--no-doc", "--models", "nbar"])
    assert seen[0][-1] == "nbar"  # lynx trappings: counts, so nbar is a member
    assert seen[1][-1] == "nbar" and "nbar" not in seen[2]  # pig weight: tried, refused, run without
    assert "nbar left out of this run: nbar: the target 'body_weight' carries no raw counts" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        accuracy.main(["--from-runs", str(tmp_path), "--models", "nbar", "--no-doc"])
    assert "--models need new runs" in capsys.readouterr().err
