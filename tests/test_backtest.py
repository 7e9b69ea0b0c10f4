"""ARIMA against statsmodels directly, metrics and the DM test against hand computation,
and identical origins for every forecaster."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biocount import ModalityData
from biocount.align import align
from biocount.backtest import make_split, origins, run_backtest
from biocount.forecast import ForecastTask
from biocount.metrics import bh, dm_test, naive_scale, point_metrics
from biocount.plugins import load_host
from biocount_arima.forecaster import ArimaForecaster
from biocount_arima.options import ArimaOptions


def ar_study(S=2, T=40, F=2, seed=0, missing=0.0):
    rng = np.random.default_rng(seed)
    y = np.zeros((S, T, F))
    for t in range(1, T):
        y[:, t] = 2.0 + 0.7 * (y[:, t - 1] - 2.0) + rng.normal(0, 0.5, size=(S, F))
    if missing:
        y[rng.random(y.shape) < missing] = np.nan
        y[:, :3] = np.nan_to_num(y[:, :3], nan=2.0)
    d = ModalityData(series=[f"s{i}" for i in range(S)], times=np.arange(T, dtype=float),
                     features=[f"f{i}" for i in range(F)], values=y, meta={"modality": "x"})
    return align({"x": d}, target="x")


@pytest.mark.parametrize(("order", "missing"), [((1, 0, 0), 0.0), ((1, 1, 1), 0.0), ((1, 0, 0), 0.15)])
def test_arima_rolling_origins_match_statsmodels_refit_free(order, missing):
    from statsmodels.tsa.arima.model import ARIMA

    data = ar_study(missing=missing)
    H, train_end = 3, 24
    task = ForecastTask(data=data, horizon=H, lookback=4, train_end=np.full(2, train_end))
    orig = np.array([(s, t) for s in range(2) for t in range(train_end, 39)])
    fc = ArimaForecaster(ArimaOptions(order=list(order))).fit(task).predict(task, orig)
    trend = "c" if order[1] == 0 else "n"
    for s in range(2):
        for f in range(2):
            y = data.y[s, :, f]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                params = ARIMA(y[: train_end + 1], order=order, trend=trend).fit().params
                for i, (ss, t) in enumerate(orig):
                    if ss != s:
                        continue
                    # independently: the same parameters, filtered on the data up to the origin only
                    direct = ARIMA(y[: t + 1], order=order, trend=trend).filter(params)
                    expected = direct.forecast(H)
                    np.testing.assert_allclose(fc.mean[i, :, f], expected, atol=1e-6)
                    lo = direct.get_forecast(H).conf_int(alpha=0.05)[:, 0]
                    np.testing.assert_allclose(fc.quantiles[0.025][i, :, f], lo, atol=1e-6)


def test_arima_chooses_orders_by_aicc_on_training_data_and_falls_back():
    data = ar_study(S=1, F=1)
    y = data.y.copy()
    y[0, 3:30] = np.nan  # too few training observations left
    short = ModalityData(series=["s0"], times=data.times, features=["f0"], values=y, meta={"modality": "x"})
    data2 = align({"x": short}, target="x")
    task = ForecastTask(data=data2, horizon=2, lookback=2, train_end=np.array([24]))
    f = ArimaForecaster().fit(task)
    pred = f.predict(task, np.array([[0, 30], [0, 31]]))
    report = f.fit_report()["s0|f0"]
    assert report["fallback"] == "only 3 training observations"
    np.testing.assert_array_equal(pred.mean[:, 0, 0], data2.y[0, [30, 31], 0])  # persistence


def test_point_metrics_by_hand():
    y = np.array([[[1.0], [2.0]], [[3.0], [np.nan]]])
    p = np.array([[[1.5], [1.0]], [[2.0], [9.0]]])
    m = point_metrics(y, p, scale=np.full(y.shape, 0.5))
    e = np.array([0.5, -1.0, -1.0])
    obs = np.array([1.0, 2.0, 3.0])
    assert m["mse"] == pytest.approx(np.mean(e**2))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(e**2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(e)))
    assert m["r2"] == pytest.approx(1 - np.sum(e**2) / np.sum((obs - 2.0) ** 2))
    assert m["mase"] == pytest.approx(np.mean(np.abs(e)) / 0.5)
    assert m["smape"] == pytest.approx(100 * np.mean(2 * np.abs(e) / (np.abs(obs) + np.abs([1.5, 1.0, 2.0]))))
    assert m["n"] == 3


def test_naive_scale_is_the_in_sample_one_step_mae():
    y = np.array([[[1.0], [3.0], [np.nan], [4.0], [100.0]]])
    # training part: 1, 3, (missing), 4 -> consecutive observed differences 2 and 1
    np.testing.assert_allclose(naive_scale(y, np.array([3])), [[1.5]])


def test_dm_statistic_by_hand():
    rng = np.random.default_rng(3)
    la, lb = pd.Series(rng.gamma(2.0, size=30)), pd.Series(rng.gamma(2.4, size=30))
    for h in (1, 3):
        stat, p, n = dm_test(la, lb, horizon=h)
        d = (la - lb).to_numpy()
        dbar = d.mean()
        lags = h - 1
        gamma = [np.sum((d[k:] - dbar) * (d[: n - k] - dbar)) / n for k in range(lags + 1)]  # Newey-West
        lrv = gamma[0] + 2 * sum((1 - k / (lags + 1)) * gamma[k] for k in range(1, lags + 1))  # Bartlett
        dm = dbar / np.sqrt(lrv / n)
        hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
        assert stat == pytest.approx(dm * hln, rel=1e-6)
        assert p == pytest.approx(2 * stats.t.sf(abs(dm * hln), df=n - 1), rel=1e-6)


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.20])
    # sorted 0.01, 0.03, 0.04, 0.20 (m = 4): 0.04, 0.0533, 0.0533, 0.20
    np.testing.assert_allclose(bh(p), [0.04, 0.16 / 3, 0.16 / 3, np.nan, 0.20])


def test_every_forecaster_is_scored_on_identical_origins_and_points():
    data = ar_study(S=3, T=30, F=2, missing=0.1)
    split = make_split(data.times, data.series, horizon=2)
    host = load_host()
    models = {n: (host.forecaster(n), host.forecaster(n).build(**({"quiet": True, "epochs": 3} if n == "lstm" else {})))
              for n in ("lstm", "arima", "naive")}
    bt = run_backtest(data, split, models, horizon=2, lookback=4)
    val, test = origins(data, split, 2)
    np.testing.assert_array_equal(bt.test_origins, test)
    assert (test[:, 1] >= split.test_start - 1).all() and (val[:, 1] < split.test_start - 1).all()
    m = bt.metrics()
    overall = m[m.scope == "overall"].set_index("forecaster")
    assert overall["n"].nunique() == 1  # the same target points for everyone
    frame = bt.forecasts_frame()
    assert {"series", "feature", "origin", "horizon", "time", "observed", "lstm", "arima", "naive"} <= set(frame)
    assert frame["time"].gt(frame["origin"]).all()


def test_series_split_holds_out_series_from_training():
    data = ar_study(S=4, T=30, F=1)
    split = make_split(data.times, data.series, horizon=2, kind="series", holdout=["s1"])
    assert split.train_series.tolist() == [True, False, True, True]
    assert split.train_series_ids == frozenset({"s0", "s2", "s3"})
    val, test = origins(data, split, 2)
    assert set(test[:, 0]) == {1} and 1 not in set(val[:, 0])


def test_split_errors():
    data = ar_study(S=2, T=10, F=1)
    with pytest.raises(Exception, match="cannot hold"):
        make_split(data.times, data.series, horizon=2, test=5, val=4)
    with pytest.raises(Exception, match="--holdout names unknown series zz"):
        make_split(data.times, data.series, horizon=1, kind="series", holdout=["zz"])


def test_default_sizes_shrink_on_short_series_and_the_error_names_a_horizon_that_fits():
    data = ar_study(S=2, T=12, F=1)
    split = make_split(data.times, data.series, horizon=3)  # 25 % / 20 % would be 3 + 2 -> at least 4 + 4
    assert (split.test_start, int(split.train_end[0])) == (8, 3)
    short = ar_study(S=2, T=10, F=1)
    with pytest.raises(Exception, match="10 time points cannot hold 4 test and 4 validation .* use --horizon 2 or less"):
        make_split(short.times, short.series, horizon=3)
