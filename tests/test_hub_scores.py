"""Hub-grade scoring of a run: identical points, skill and DM consistent with the table, nothing from test
points in the calibration, scores.csv and report sections written, and a hubverse export a schema accepts."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import section_of

from biocount import scores as S
from biocount.cli import cli

FAST = ("quiet: true\nmodels: [lstm, arima, naive, climatology]\nbaselines: [arima, naive, climatology]\n"
        "options:\n  lstm: {epochs: 4, hidden: 8, members: 1, loss: gaussian}\n"
        "  arima: {order: [1, 0, 0], reselect_growth: null}\n  climatology: {period: 5}\n")

# The hubverse model-output table, as its documentation defines it (hubverse.io: model output; hubUtils'
# std_colnames: output_type, output_type_id, value, model_id), written down here independently of biocount.
HUBVERSE = {
    "required": {"model_id": "string", "output_type": "string", "output_type_id": "number", "value": "number"},
    "task_ids": {"reference_date": "number", "horizon": "integer", "target_end_date": "number",
                 "location": "string", "target": "string"},
    "output_types": {"quantile": [0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6,
                                  0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99]},
}


def _validate_hubverse(frame: pd.DataFrame) -> None:
    kinds = {"string": lambda s: s.map(lambda v: isinstance(v, str)).all(),
             "number": lambda s: pd.api.types.is_numeric_dtype(s) and np.isfinite(s.to_numpy(float)).all(),
             "integer": lambda s: pd.api.types.is_integer_dtype(s)}
    columns = HUBVERSE["required"] | HUBVERSE["task_ids"]
    assert set(frame.columns) == set(columns), set(frame.columns) ^ set(columns)
    for col, kind in columns.items():
        assert kinds[kind](frame[col]), f"{col} is not {kind}"
    assert set(frame["output_type"]) <= set(HUBVERSE["output_types"])
    assert frame["model_id"].str.fullmatch(r"[A-Za-z0-9_]+-[A-Za-z0-9_-]+").all()
    keys = list(HUBVERSE["task_ids"])
    assert not frame.duplicated([*keys, "output_type", "output_type_id"]).any()
    for _, group in frame.groupby(keys):
        levels = group["output_type_id"].to_numpy()
        assert np.allclose(np.sort(levels), HUBVERSE["output_types"]["quantile"])  # every level, once
        assert np.all(np.diff(group.sort_values("output_type_id")["value"].to_numpy()) >= -1e-12)  # no crossing


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    data = root / "gut.csv"
    assert CliRunner().invoke(cli, ["datasets", "make", "gut", "--out", str(data)]).exit_code == 0
    (root / "run.yaml").write_text(FAST)
    out = root / "out"
    result = CliRunner().invoke(cli, ["run", "--data", str(data), "--modalities",
                                      "abundance=tabular,antibiotic=tabular", "--target", "abundance",
                                      "--horizon", "3", "--config", str(root / "run.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_every_forecaster_is_scored_on_identical_points_and_skill_and_dm_agree_with_the_table(run_dir):
    out, console = run_dir
    scores = pd.read_csv(out / "scores.csv", dtype={"horizon": str})
    conformal = scores[scores["distribution"] == "conformal"]
    assert {"lstm", "arima", "naive", "climatology", "ensemble:stack"} <= set(conformal["forecaster"])
    metrics = pd.read_csv(out / "metrics.csv")
    n_points = int(metrics[(metrics["scope"] == "overall") & (metrics["forecaster"] == "naive")]["n"].iloc[0])
    for h, group in conformal.groupby("horizon"):
        assert group["n"].nunique() == 1, f"horizon {h}: not every forecaster scored on the same points"
    assert conformal[conformal["horizon"] == "all"]["n"].iloc[0] == n_points
    every = conformal[conformal["horizon"] == "all"].set_index("forecaster")
    for name in ("lstm", "arima", "ensemble:stack"):
        for b in ("naive", "climatology"):
            skill = every.loc[name, f"crps_skill_{b}"]
            assert skill == pytest.approx(1 - every.loc[name, "crps"] / every.loc[b, "crps"], rel=1e-9)
            assert every.loc[name, f"crps_skill_{b}_lo"] <= skill <= every.loc[name, f"crps_skill_{b}_hi"]
            assert np.sign(every.loc[name, f"dm_crps_{b}_stat"]) == -np.sign(skill)  # lower CRPS: negative DM
    # the native distributions: ARIMA's and the gaussian LSTM's normal (with a log score), climatology's quantiles
    native = scores[(scores["distribution"] != "conformal") & (scores["horizon"] == "all")].set_index("forecaster")
    assert native.loc["arima", "distribution"] == "normal" and np.isfinite(native.loc["arima", "logs"])
    assert native.loc["lstm", "distribution"] == "normal"
    assert native.loc["climatology", "distribution"] == "quantiles" and np.isnan(native.loc["climatology", "logs"])
    # WIS parts sum to WIS in the table too
    parts = scores["dispersion"] + scores["overprediction"] + scores["underprediction"]
    np.testing.assert_allclose(parts, scores["wis"], rtol=1e-9)
    assert "CRPS by horizon" in console and "toughest baseline:" in console


def test_the_calibration_reads_no_test_point(tmp_path):
    """Scrambling every target after the last validation point leaves each conformal predictive distribution
    (its widths come from validation residuals only) and the climatology's native one bit-identical at the
    test origins' calibration; the scores move."""
    from biocount.engine import run, validated
    from biocount.evaluation.scoring import distributions
    from biocount.io.simulators import gut

    frame = gut(0, n_series=6, days=40)
    config = {"modalities": ["abundance=tabular"], "models": ["arima", "naive", "climatology"], "horizon": 2,
              "quiet": True, "options": {"arima": {"order": [1, 0, 0], "reselect_growth": None}}}
    path = tmp_path / "gut.csv"
    frame.to_csv(path, index=False)
    first = run(validated(config | {"data": [str(path)]}))
    cut = float(first.backtest.data.times[int(first.backtest.split.val_end.max())])
    later = (frame["time"] > cut) & (frame["modality"] == "abundance") if "modality" in frame else frame["time"] > cut
    frame.loc[later, "value"] = np.random.default_rng(0).permutation(frame.loc[later, "value"].to_numpy()) + 3
    frame.to_csv(tmp_path / "scrambled.csv", index=False)
    second = run(validated(config | {"data": [str(tmp_path / "scrambled.csv")]}))
    a, b = first.backtest, second.backtest
    wa = {k: d["w"] for k, d in distributions(a).items() if "w" in d}
    wb = {k: d["w"] for k, d in distributions(b).items() if "w" in d}
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name])
    assert not np.allclose(first.scores["crps"], second.scores["crps"])
    # per feature on request: a row per feature and horizon, and the same "all" rows as the default table
    by = a.scores(by_feature=True)
    features = set(a.data.target_features.astype(str))
    assert set(by["feature"]) == features | {"all"}
    pd.testing.assert_frame_equal(by[by["feature"] == "all"].reset_index(drop=True), a.scores(), check_dtype=False)
    one = by[(by["feature"] == sorted(features)[0]) & (by["horizon"] == "all") & (by["forecaster"] == "naive")
             & (by["distribution"] == "conformal")]
    assert len(one) == 1 and one["n"].iloc[0] < a.scores().query("forecaster == 'naive' and horizon == 'all'")["n"].iloc[0]


def test_the_hubverse_export_is_accepted_by_the_schema_and_rebuilds_the_quantiles(run_dir, tmp_path):
    out, _ = run_dir
    dest = tmp_path / "model-output.csv"
    result = CliRunner().invoke(cli, ["export", str(out), "--format", "hubverse", "--to", str(dest)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(dest, dtype={"location": str, "target": str})
    _validate_hubverse(frame)
    info = json.loads((out / "run.json").read_text())
    assert frame["model_id"].iloc[0] == "biocount-" + info["headline"].replace(":", "-")
    # the median is the encoded forecast in counts; the 97.5 % quantile the encoded forecast plus the run's
    # conformal width, mapped the same way (by hand: expm1(z * sd + mean) with run.json's units)
    fc = pd.read_csv(out / "forecasts_encoded.csv", dtype={"series": str, "feature": str})
    units = info["units"]
    assert units["forecasts"] == "data" and units["log1p"]
    row = fc.dropna(subset=[info["headline"]]).iloc[0]
    f = info["target"]["features"].index(row["feature"])

    def counts(z):
        return max(np.expm1(z * units["scale"][f] + units["center"][f]), 0.0)

    mine = frame[(frame["location"] == row["series"]) & (frame["reference_date"] == row["origin"])
                 & (frame["horizon"] == row["horizon"]) & (frame["target"] == f"abundance {row['feature']}")]
    median = mine[mine["output_type_id"] == 0.5]["value"].iloc[0]
    assert median == pytest.approx(counts(row[info["headline"]]))
    w = np.asarray(info["scores"]["conformal_widths"][info["headline"]])[int(row["horizon"]) - 1]
    scale = info["scores"]["naive_scale"][row["series"]][f]
    upper = mine[mine["output_type_id"] == 0.975]["value"].iloc[0]
    assert upper == pytest.approx(counts(row[info["headline"]] + w[S.QUANTILES.index(0.975)] * scale))
    # every forecaster can be exported; a wrong name is one line and exit 2
    ok = CliRunner().invoke(cli, ["export", str(out), "--forecaster", "climatology", "--to", str(tmp_path / "c.csv")])
    assert ok.exit_code == 0, ok.output
    _validate_hubverse(pd.read_csv(tmp_path / "c.csv", dtype={"location": str, "target": str}))
    bad = CliRunner().invoke(cli, ["export", str(out), "--forecaster", "nope"])
    assert bad.exit_code == 2 and "--forecaster nope: not a forecaster of this run" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    missing = CliRunner().invoke(cli, ["export", str(tmp_path / "absent")])
    assert missing.exit_code == 2 and "no such folder" in missing.output
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "run.json").write_text('{"trunc')
    bad = CliRunner().invoke(cli, ["export", str(broken)])
    assert bad.exit_code == 2 and "cannot read its run files" in bad.output and len(bad.output.strip().splitlines()) == 1
    nowhere = CliRunner().invoke(cli, ["export", str(out), "--to", str(tmp_path / "absent" / "x.csv")])
    assert nowhere.exit_code == 2 and "no folder" in nowhere.output


def test_the_report_shows_crps_wis_coverage_and_pit(run_dir, tmp_path, section_screenshot):
    out, _ = run_dir
    section = section_of((out / "report.html").read_text(), "scores")
    for text in ("CRPS", "WIS", "dispersion", "cover 50%", "cover 95%", "CRPS skill vs", "PIT histograms",
                 "CRPS by horizon", "Coverage of"):
        assert text in section, text
    assert section.count("<svg") == 2
    section_screenshot(out / "report.html", "scores", tmp_path)


PORTAL = "portal_rodents/portal_rodent_counts_long.csv.gz"


def test_a_count_study_gets_scores_and_pit_in_its_report(shared_data, tmp_path, section_screenshot):
    """Portal rodents (monthly counts, a yearly cycle): climatology forecasts from the same month of earlier
    years, every forecaster gets CRPS, WIS, coverage and a PIT histogram, and the section renders."""
    (tmp_path / "run.yaml").write_text(FAST.replace("period: 5", "period: 12"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--data", str(shared_data / PORTAL), "--modalities",
                                      "rodent_count=tabular", "--target", "rodent_count:PP,rodent_count:DM",
                                      "--split", "series", "--horizon", "2", "--config", str(tmp_path / "run.yaml"),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "run.json").read_text())
    assert set(info["scores"]["pit"]) >= {"lstm", "arima", "naive", "climatology", "climatology:native"}
    assert info["forecasters"]["climatology"]["period"] == 12
    section = section_of((out / "report.html").read_text(), "scores")
    assert "PIT histograms" in section and "WIS" in section
    section_screenshot(out / "report.html", "scores", tmp_path)


def test_a_count_likelihood_is_scored_on_the_raw_counts(demo_modalities):
    """The LSTM with a negative-binomial likelihood: a second distribution on the raw counts, its closed-form
    CRPS and log score at the observed counts, the randomised PIT of every scored point; labelled counts."""
    from scipy import stats

    from biocount.engine import run, validated
    from biocount.evaluation.scoring import observed_counts

    config = validated({"modalities": ["rna"], "models": ["lstm", "naive"], "horizon": 2, "quiet": True,
                        "options": {"lstm": {"loss": "negbin", "epochs": 4, "members": 1, "hidden": 8},
                                    "rna": {"n_top_genes": 6}}})
    result = run(config, data={"rna": demo_modalities["rna"]})
    bt = result.backtest
    table = result.scores.set_index(["forecaster", "distribution", "horizon"])
    row = table.loc[("lstm", "negbinom", "all")]
    assert row["scale"] == "counts" and (table["scale"] == "counts").sum() == 3  # all, h=1, h=2
    counts = bt.forecasts["lstm"]["test"].counts
    y = observed_counts(bt)
    ok = ~np.isnan(y)
    size = np.broadcast_to(counts.size, y.shape)[ok]
    mu = counts.mu[ok]
    assert row["crps"] == pytest.approx(np.mean(S.crps_negbinom(y[ok], size, mu)))
    assert row["logs"] == pytest.approx(np.mean(-stats.nbinom(size, size / (size + mu)).logpmf(y[ok])))
    assert row["n"] == ok.sum() == sum(result.info["scores"]["pit"]["lstm:counts"])
    assert (y[ok] == np.round(y[ok])).all()  # scored on whole counts, not on the encoded values


def test_scores_in_chunks_of_origins_equal_one_pass(tmp_path, monkeypatch):
    """A large study is scored a chunk of test origins at a time (its quantile arrays for every forecaster at once
    would not fit in memory): every pointwise score, the randomised PITs included, equals one pass over all."""
    import biocount.evaluation.scoring as scoring
    from biocount.engine import run, validated
    from biocount.io.simulators import gut

    path = tmp_path / "gut.csv"
    gut(0, n_series=6, days=40).to_csv(path, index=False)
    bt = run(validated({"data": [str(path)], "modalities": ["abundance=tabular"], "horizon": 2, "quiet": True,
                        "models": ["arima", "naive", "climatology"],
                        "options": {"arima": {"order": [1, 0, 0], "reselect_growth": None}}})).backtest
    assert bt.test_origins.shape[0] < scoring.ROWS
    whole = scoring.pointwise(bt)
    assert {"arima:native", "climatology:native"} <= set(whole)  # a normal and a quantile distribution too
    monkeypatch.setattr(scoring, "ROWS", 7)
    bt._pointwise = None
    chunked = scoring.pointwise(bt)
    for name, scores in whole.items():
        for key, values in scores.items():
            np.testing.assert_array_equal(chunked[name][key], values, err_msg=f"{name} {key}")
