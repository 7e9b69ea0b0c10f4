"""The three-line verdict: its words follow the numbers it quotes (biocount.report.verdict)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from biocount.report.verdict import _best, _next


def _comparison(rows: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame.from_dict(rows, orient="index")


def test_the_headline_is_judged_against_the_baseline_with_the_lowest_test_mse():
    cmp = _comparison({
        "ensemble:stack": {"mse": 0.5, "dm_naive_p": 1e-4, "dm_arima_p": 0.2, "coverage_80": 0.8},
        "arima": {"mse": 0.6}, "naive": {"mse": 0.9},
    })
    line, tough = _best(cmp, "ensemble:stack", ["arima", "naive"])
    # arima is the toughest (0.6 < 0.9); against it p = 0.2: not clearly better, whatever naive says
    assert line == ("best: ensemble:stack is not clearly better than arima, the toughest baseline: test MSE 0.5 vs "
                    "0.6, 16.7% lower (DM p = 0.2)")
    assert tough == "arima"
    assert _next(cmp, "ensemble:stack", ["arima", "naive"], tough, [], 0.8).startswith(
        "next: the forecasters do not clearly beat arima here")


def test_beats_worse_and_equal():
    beats = _comparison({"lstm": {"mse": 0.4, "dm_naive_p": 0.001, "coverage_80": 0.62}, "naive": {"mse": 0.8}})
    line, tough = _best(beats, "lstm", ["naive"])
    assert line.startswith("best: lstm beats naive") and "50.0% lower (DM p = 0.001)" in line and tough is None
    # beats the baseline, every modality helps, but the intervals fall short: that is the next step
    assert _next(beats, "lstm", ["naive"], None, [], 0.8) == (
        "next: the 80% intervals cover 62% of test points; give them more validation origins (--val-size) before "
        "trusting them")
    assert _next(beats, "lstm", ["naive"], None, ["rna"], 0.8).startswith("next: try the run without rna")
    worse = _comparison({"lstm": {"mse": 1.2, "dm_naive_p": 0.01}, "naive": {"mse": 0.8}})
    assert _best(worse, "lstm", ["naive"])[0].startswith("best: lstm is worse than naive")
    same = _comparison({"ensemble:stack": {"mse": 0.8, "dm_naive_p": np.nan}, "naive": {"mse": 0.8}})
    line, tough = _best(same, "ensemble:stack", ["naive"])
    assert line.startswith("best: ensemble:stack is naive's forecast here") and tough == "naive"


def test_a_member_better_on_test_is_said_and_not_acted_on():
    from types import SimpleNamespace

    from biocount.report.verdict import _beaten_by_a_part

    def fc(v):
        return {"test": SimpleNamespace(mean=np.full((4, 1, 1), v))}

    class Backtest:  # DM of the headline's errors against each member's: positive = the headline is worse
        weights = {"ensemble:stack": {"members": ["lstm", "lstm(x)", "naive"]}}
        forecasts = {"ensemble:stack": fc(1.0), "lstm": fc(2.0), "lstm(x)": fc(3.0), "naive": fc(4.0)}

        def _dm(self, head, other):
            return {2.0: (3.1, 0.004), 3.0: (2.0, 0.2), 4.0: (5.0, 1e-6)}[float(other.flat[0])]

    cmp = _comparison({"ensemble:stack": {"mse": 0.5}, "lstm": {"mse": 0.3}, "lstm(x)": {"mse": 0.45},
                       "naive": {"mse": 0.2}})
    # naive is a baseline (the first line is about those); lstm(x) is not significantly better: lstm is said
    assert _beaten_by_a_part(Backtest(), cmp, "ensemble:stack", ["naive"]) == (
        "; but lstm alone did better on the test points (MSE 0.3, DM p = 0.004): validation chose the combination, "
        "and it did not carry over here")
    Backtest.forecasts["lstm"] = fc(3.0)
    assert _beaten_by_a_part(Backtest(), cmp, "ensemble:stack", ["naive"]) == ""
