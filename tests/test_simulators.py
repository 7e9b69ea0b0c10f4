"""The chemostat and gut simulators: layout, determinism by seed, and the causal lead they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biocount.io.datasets import chemostat, gut


@pytest.fixture(scope="module")
def tables():
    return {"chemostat": chemostat(seed=0), "gut": gut(seed=0)}


def _wide(frame: pd.DataFrame, feature: str) -> np.ndarray:
    return frame[frame["feature"] == feature].pivot(index="series_id", columns="time", values="value").to_numpy()


def _lagged_corr(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """corr(a_t, b_{t+k}) pooled over series (k may be negative)."""
    if k < 0:
        return _lagged_corr(b, a, -k)
    n = a.shape[1]
    return float(np.corrcoef(a[:, :n - k].ravel(), b[:, k:].ravel())[0, 1])


@pytest.mark.parametrize(("name", "shape", "modalities"), [
    ("chemostat", (12, 100), {"rotifer": {"females", "eggs"}, "algae": {"chlorella"}, "temperature": {"room_c"}}),
    ("gut", (12, 70), {"abundance": {f"taxon{i:02d}" for i in range(1, 9)}, "antibiotic": {"dose"},
                       "host": {"weight_g"}}),
])
def test_layout(tables, name, shape, modalities):
    frame = tables[name]
    assert list(frame.columns) == ["series_id", "time", "feature", "value", "modality"]
    assert {m: set(g["feature"]) for m, g in frame.groupby("modality")} == modalities
    S, T = shape
    assert frame["series_id"].nunique() == S and frame["time"].nunique() == T
    assert not frame.duplicated(["series_id", "time", "feature"]).any()
    assert np.isfinite(frame["value"]).all()
    target = frame[frame["modality"] == frame.attrs["target"]]["value"]
    assert (target >= 0).all() and np.array_equal(target, np.round(target))  # counts: the tabular encoder log1ps them
    assert set(frame.attrs["test_series"]) < set(frame["series_id"]) and len(frame.attrs["test_series"]) == 4


@pytest.mark.parametrize("make", [chemostat, gut])
def test_same_seed_same_table_other_seed_other_table(make):
    pd.testing.assert_frame_equal(make(seed=3), make(seed=3))
    assert not make(seed=3)["value"].equals(make(seed=4)["value"])


def test_chemostat_algae_lead_rotifers(tables):
    """Prey lead predators: log algae correlate best with log rotifers a few days *later*."""
    frame = tables["chemostat"]
    algae, females = (np.log1p(_wide(frame, f)) for f in ("chlorella", "females"))
    algae, females = algae - algae.mean(1, keepdims=True), females - females.mean(1, keepdims=True)
    corr = {k: _lagged_corr(algae, females, k) for k in range(-8, 9)}
    best = max(corr, key=corr.get)
    assert 2 <= best <= 8 and corr[best] > 0.3
    assert corr[best] > corr[-best] + 0.3  # the lead is directional, not a symmetric co-movement


def test_chemostat_shift_and_null_covariate(tables):
    frame = tables["chemostat"]
    algae = frame[frame["feature"] == "chlorella"]
    shifted = algae["series_id"].isin(frame.attrs["test_series"])
    assert algae[shifted]["value"].mean() > 2 * algae[~shifted]["value"].mean()  # the richer medium
    temp, females = _wide(frame, "room_c"), np.log1p(_wide(frame, "females"))
    assert max(abs(_lagged_corr(temp, females, k)) for k in range(1, 6)) < 0.15


def test_gut_antibiotic_leads_a_drop(tables):
    """The dose recorded on day t is followed by a fall in total load over the next days, not before."""
    frame = tables["gut"]
    dose = _wide(frame, "dose")
    taxa = frame[frame["modality"] == "abundance"].groupby(["series_id", "time"])["value"].sum().unstack().to_numpy()
    change = np.diff(np.log1p(taxa), axis=1)  # change[:, t] = day t -> t + 1
    start = np.diff(dose, axis=1, prepend=0) > 0  # first day of a course
    after = change[start[:, :-1]].mean()  # the night after the first dose: day t -> t + 1
    before = change[:, :-1][start[:, 1:-1]].mean()  # the night before it: day t - 1 -> t
    assert after < -0.5 and abs(before) < 0.2
    shifted = np.isin(np.unique(frame["series_id"]), frame.attrs["test_series"])
    assert dose[shifted].sum(1).min() == 14 and dose[~shifted].sum(1).max() == 5  # the unseen schedule


def test_cli_writes_a_simulator_csv(tmp_path):
    from click.testing import CliRunner

    from biocount.cli import cli

    out = tmp_path / "chemostat.csv"
    result = CliRunner().invoke(cli, ["datasets", "make", "chemostat", "--out", str(out), "--seed", "2"])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype={"series_id": str})
    np.testing.assert_array_equal(written["value"], chemostat(seed=2)["value"])
    bad = CliRunner().invoke(cli, ["datasets", "make", "gut", "--out", str(tmp_path / "gut.h5mu")])
    assert bad.exit_code == 2 and "*.csv" in bad.output
