"""Forecasts in the data's units: a kg study and a count study against values inverted by hand, the mean of
a log-scale forecast (Duan's smearing) against the naive median, and targets that cannot be inverted."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from biocount import Units
from biocount.cli import cli
from biocount.evaluation.units import mape, point, smearing, to_data


def _run(tmp_path, table: pd.DataFrame, name: str, *extra: str):
    data = tmp_path / f"{name}.csv"
    table.to_csv(data, index=False)
    out = tmp_path / f"{name}-out"
    result = CliRunner().invoke(cli, ["run", "--data", str(data), "--modalities", f"{name}=tabular", "--models",
                                      "naive,climatology", "--baselines", "naive", "--horizon", "2", "--quiet",
                                      "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def pigs(tmp_path_factory):
    """Pig weights in kg: continuous, so tabular z-scores them."""
    rng = np.random.default_rng(1)
    rows = [{"series": f"pig{s}", "time": t, "weight": 20 + 3 * s + 1.1 * t + rng.normal(0, 0.4)}
            for s in range(6) for t in range(24)]
    table = pd.DataFrame(rows)
    out, console = _run(tmp_path_factory.mktemp("kg"), table, "pigs")
    return table, out, console


@pytest.fixture(scope="module")
def rodents(tmp_path_factory):
    """Rodent counts: log-normal rates, Poisson counts, so tabular takes log1p then z-scores."""
    rng = np.random.default_rng(2)
    rows = []
    for s in range(8):
        level = rng.normal(3.5, 0.3)
        for t in range(30):
            level = 0.7 * level + 0.3 * 3.5 + rng.normal(0, 0.5)
            rows.append({"series": f"plot{s}", "time": t, "rodents": rng.poisson(np.exp(level))})
    table = pd.DataFrame(rows)
    out, console = _run(tmp_path_factory.mktemp("counts"), table, "rodents")
    return table, out, console


def _raw(table: pd.DataFrame, column: str) -> pd.Series:
    return table.set_index(["series", "time"])[column]


def test_a_kg_study_is_forecast_in_kg(pigs):
    table, out, console = pigs
    forecasts = pd.read_csv(out / "forecasts.csv", dtype={"series": str})
    encoded = pd.read_csv(out / "forecasts_encoded.csv", dtype={"series": str})
    raw = _raw(table, "weight")
    # observed values are the CSV's own numbers
    looked_up = raw.reindex(pd.MultiIndex.from_arrays([forecasts["series"], forecasts["time"]])).to_numpy()
    assert np.allclose(forecasts["observed"], looked_up, atol=1e-4)
    # persistence in kg is the last weight measured at the origin, whatever the encoder did
    at_origin = raw.reindex(pd.MultiIndex.from_arrays([forecasts["series"], forecasts["origin"]])).to_numpy()
    assert np.allclose(forecasts["naive"], at_origin, atol=1e-4)
    # the inverse by hand: z * sd + mean, with sd and mean those of the training rows (run.json says which)
    units = json.loads((out / "run.json").read_text())["units"]
    assert units["forecasts"] == "data" and not units["log1p"]
    for col in ("naive", "climatology", "naive_lower_80", "climatology_upper_95"):
        assert np.allclose(forecasts[col], encoded[col] * units["scale"][0] + units["center"][0], atol=1e-6), col
    assert 19 < units["center"][0] < 60 and units["scale"][0] > 1  # a mean and sd of weights, not of z-scores
    # data-unit metrics: RMSE in kg is the encoded RMSE times the sd (a linear map)
    metrics = pd.read_csv(out / "metrics.csv")
    row = metrics[(metrics.forecaster == "naive") & (metrics.scope == "overall")].iloc[0]
    assert row["data_rmse"] == pytest.approx(row["rmse"] * units["scale"][0], rel=1e-6)
    ok = forecasts["observed"].notna()
    e = (forecasts["naive"] - forecasts["observed"])[ok]
    assert row["data_mape"] == pytest.approx(float(np.mean(np.abs(e) / forecasts["observed"][ok])) * 100, rel=1e-6)
    assert "RMSE (data)" in console and "MAPE" in console


def test_a_count_study_is_forecast_in_counts_with_means_by_smearing(rodents):
    table, out, _ = rodents
    forecasts = pd.read_csv(out / "forecasts.csv", dtype={"series": str})
    encoded = pd.read_csv(out / "forecasts_encoded.csv", dtype={"series": str})
    units = json.loads((out / "run.json").read_text())["units"]
    assert units["log1p"] and units["nonnegative"] and units["label"] == "counts"
    raw = _raw(table, "rodents")
    looked_up = raw.reindex(pd.MultiIndex.from_arrays([forecasts["series"], forecasts["time"]])).to_numpy()
    ok = forecasts["observed"].notna()
    assert np.array_equal(forecasts["observed"][ok].to_numpy(), looked_up[ok])  # the raw integers, exactly
    c, s = units["center"][0], units["scale"][0]
    # interval bounds: the exact monotone map of the encoded bounds, expm1(z * sd + mean), never below 0
    for col in ("naive_lower_80", "naive_upper_95", "climatology_lower_95"):
        assert np.allclose(forecasts[col], np.maximum(np.expm1(encoded[col] * s + c), 0), rtol=1e-9), col
    # persistence's median in counts is the count at the origin; on this mean-reverting series smearing
    # would overshoot (its residuals are not independent of the level), so validation keeps the median
    median = np.expm1(encoded["naive"] * s + c)
    at_origin = raw.reindex(pd.MultiIndex.from_arrays([forecasts["series"], forecasts["origin"]])).to_numpy()
    assert np.allclose(median, at_origin, rtol=1e-5)
    assert np.allclose(forecasts["naive"], median, rtol=1e-9)


def test_smearing_by_hand():
    units = Units(center=[1.0, 0.0], scale=[2.0, 1.0], log1p=True, nonnegative=True)
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(400, 2, 2))
    y = pred + rng.normal(0, 0.3, size=pred.shape)
    y[:396, 1, 1] = np.nan  # 4 residuals there: fewer than MIN_RESIDUALS, pooled over features at h = 2
    factor = smearing(pred, y, units)
    r = (y - pred) * np.array([2.0, 1.0])
    # pred is the conditional mean of the log values, residuals independent: the smeared mean wins on validation
    assert factor[0, 0] == pytest.approx(np.mean(np.exp(r[:, 0, 0])))
    assert factor[1, 1] == pytest.approx(np.nanmean(np.exp(r[:, 1, :])))
    # persistence-like: residuals that shrink the level back (not independent of it); the rule, by hand
    level = rng.normal(1.0, 1.0, size=(400, 2, 2))
    y2 = 1.0 + 0.3 * (level - 1.0) + rng.normal(0, 0.1, size=level.shape)  # back to the mean 1
    chosen = smearing(level, y2, units)
    r2 = (y2 - level) * np.array([2.0, 1.0])
    truth = np.expm1(y2 * [2.0, 1.0] + [1.0, 0.0])
    u = level * [2.0, 1.0] + [1.0, 0.0]
    for h in range(2):
        for f in range(2):
            duan = np.mean(np.exp(r2[:, h, f]))
            smeared = np.mean((np.exp(u[:, h, f]) * duan - 1 - truth[:, h, f]) ** 2)
            median = np.mean((np.expm1(u[:, h, f]) - truth[:, h, f]) ** 2)
            assert chosen[h, f] == pytest.approx(duan if smeared < median else 1.0)
    assert (chosen == 1.0).any()  # the median kept somewhere: smearing would overshoot there
    test = np.array([[[0.5, 1.0], [0.0, 2.0]]])
    expected = np.exp(test * [2.0, 1.0] + [1.0, 0.0]) * factor - 1
    assert np.allclose(point(test, factor, units), expected)
    assert np.allclose(point(test, np.full((2, 2), np.nan), units), np.expm1(test * [2.0, 1.0] + [1.0, 0.0]))
    linear = Units(center=[10.0], scale=[3.0])
    assert np.allclose(to_data(np.array([[1.0], [-2.0]]), linear), [[13.0], [4.0]])
    assert np.isnan(mape(np.array([0.0, 2.0]), np.array([1.0, 2.0])))  # a zero observed: no percentage
    assert mape(np.array([4.0, 2.0]), np.array([5.0, 1.0])) == pytest.approx(37.5)


def test_units_must_match_the_features():
    from biocount import ContractError, ModalityData

    with pytest.raises(ContractError, match="one entry per feature"):
        ModalityData(series=["a"], times=[0, 1], features=["x", "y"], values=np.zeros((1, 2, 2)), meta="m",
                     units=Units(center=[0.0], scale=[1.0]))
    with pytest.raises(ContractError, match="positive"):
        ModalityData(series=["a"], times=[0, 1], features=["x"], values=np.zeros((1, 2, 1)), meta="m",
                     units=Units(center=[0.0], scale=[0.0]))
    d = ModalityData(series=["a"], times=[0, 1], features=["x", "y"], values=np.zeros((1, 2, 2)), meta="m",
                     units=Units(center=[1.0, 2.0], scale=[3.0, 4.0]))
    assert d.subset(features=["y"]).units.center.tolist() == [2.0]


def test_a_target_without_units_stays_encoded_and_says_so(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--modalities", "protein", "--models", "naive", "--horizon", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert info["units"]["forecasts"] == "encoded"
    assert any("declares no data units" in n for n in info["notes"])
    assert not (out / "forecasts_encoded.csv").exists()
    assert "on the encoder's scale" in result.output


def test_the_hubverse_export_is_in_counts(rodents):
    from biocount.report.export import hubverse

    _, out, _ = rodents
    frame = hubverse(out, forecaster="naive")
    encoded = pd.read_csv(out / "forecasts_encoded.csv", dtype={"series": str})
    units = json.loads((out / "run.json").read_text())["units"]
    median = frame[frame["output_type_id"] == 0.5].sort_values(["location", "reference_date", "horizon"])
    rows = encoded.dropna(subset=["naive"]).sort_values(["series", "origin", "horizon"])
    # the conformal median is the point forecast; in counts, its exact image expm1(z * sd + mean)
    assert np.allclose(median["value"], np.expm1(rows["naive"] * units["scale"][0] + units["center"][0]), rtol=1e-9)
    assert (frame["value"] >= 0).all() and frame.attrs["scale"] == "counts"
    # a run.json whose units entry lost a key: one line, exit 2, not a traceback
    import shutil

    broken = out.parent / "broken-units"
    shutil.copytree(out, broken)
    info = json.loads((broken / "run.json").read_text())
    del info["units"]["center"]
    (broken / "run.json").write_text(json.dumps(info))
    bad = CliRunner().invoke(cli, ["export", str(broken)])
    assert bad.exit_code == 2 and "its 'units' entry is incomplete" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_bc_tl_gives_the_data_units(pigs):
    import anndata as ad

    import biocount as bc

    table, _, _ = pigs
    obs = table[["series", "time"]].astype({"series": str}).set_axis([f"r{i}" for i in range(len(table))])
    adata = ad.AnnData(X=table[["weight"]].to_numpy(float), obs=obs, var=pd.DataFrame(index=["weight"]))
    bc.tl.forecast(adata, method="naive", modalities=["pigs=tabular"], horizon=2)
    entry = adata.uns["forecast"]
    last = table.sort_values("time").groupby("series")["weight"].last()
    assert np.allclose(entry["mean"][:, 0, 0], last.loc[entry["series"]].to_numpy(), atol=1e-4)  # kg, not z
    assert entry["params"]["scale"] == "the data's units"
    observed = adata.layers["forecast_observed"][:, 0]
    ok = ~np.isnan(observed)
    assert np.allclose(observed[ok], adata.X[ok, 0], atol=1e-4)
