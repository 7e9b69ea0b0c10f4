"""The benchmarks' own wiring (their figures live in docs/performance.md, not in tests)."""

from __future__ import annotations

import json


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
