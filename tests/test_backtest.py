"""ARIMA against statsmodels directly, metrics and the DM test against hand computation,
and identical origins for every forecaster."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from biocount import ModalityData
from biocount.evaluation.backtest import run_backtest
from biocount.evaluation.candidates import PlannedForecaster
from biocount.evaluation.metrics import bh, dm_test, naive_scale, point_metrics
from biocount.forecast import ForecastTask
from biocount.host.plugins import load_host
from biocount.study.align import align
from biocount.study.split import make_split, points
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
    task = ForecastTask(data=data, horizon=H, train_end=np.full(2, train_end))
    orig = np.array([(s, t) for s in range(2) for t in range(train_end, 39)])
    fc = ArimaForecaster(ArimaOptions(order=list(order), reselect_growth=None)).fit(task).predict(task, orig)
    trend = "c" if order[1] == 0 else "n"
    for s in range(2):
        for f in range(2):
            y = data.y[s, :, f]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # statsmodels' estimates with the variance concentrated out, then appended (what biocount
                # fits; that they match the plain fit's optimum is tested below)
                model = ARIMA(y[: train_end + 1], order=order, trend=trend, concentrate_scale=True)
                params = model.fit().params
                params = np.r_[params, model.filter(params).scale]
                for i, (ss, t) in enumerate(orig):
                    if ss != s:
                        continue
                    # independently: the same parameters, filtered on the data up to the origin only
                    direct = ARIMA(y[: t + 1], order=order, trend=trend).filter(params)
                    expected = direct.forecast(H)
                    np.testing.assert_allclose(fc.mean[i, :, f], expected, atol=1e-6)
                    lo = direct.get_forecast(H).conf_int(alpha=0.05)[:, 0]
                    np.testing.assert_allclose(fc.quantiles[0.025][i, :, f], lo, atol=1e-6)


@pytest.mark.parametrize("order, trend, missing, seasonal", [
    ((1, 1, 1), "t", False, (0, 0, 0, 0)), ((2, 0, 1), "c", True, (0, 0, 0, 0)), ((0, 1, 0), "n", True, (0, 0, 0, 0)),
    ((2, 1, 1), "t", True, (0, 0, 0, 0)), ((1, 0, 0), "c", True, (1, 0, 1, 6))])
def test_arima_forecasts_from_every_origin_in_one_pass_equal_statsmodels_dynamic_predictions(order, trend, missing,
                                                                                             seasonal):
    """One filter pass over the data up to the last origin, then NaN, gives each origin's dynamic forecasts
    and their variances as statsmodels' ``get_prediction(dynamic=True)`` per origin (``get_forecast`` at the
    series' end), with drift, gaps and forecasts past the data; and a forecast does not read data after its
    origin."""
    from statsmodels.tsa.arima.model import ARIMA

    from biocount_arima.forecaster import dynamic_forecasts

    rng = np.random.default_rng(7)
    y = np.cumsum(rng.normal(0.3, 1.0, 70)) if order[1] else 4 + rng.normal(size=70)
    if missing:
        y[rng.choice(np.arange(1, 69), 6, replace=False)] = np.nan
    H, at = 4, 35
    origins = np.arange(at, 70)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = ARIMA(y[: at + 1], order=order, trend=trend, seasonal_order=seasonal).fit().params
        mean, var = dynamic_forecasts(ARIMA(np.r_[y, np.full(H, np.nan)], order=order, trend=trend,
                                            seasonal_order=seasonal).filter(params), origins, H)
        reference = ARIMA(y, order=order, trend=trend, seasonal_order=seasonal).filter(params)
        for i, o in enumerate(origins):
            pred = reference.get_prediction(start=o + 1, end=o + H, dynamic=True) if o < 69 \
                else reference.get_forecast(H)
            np.testing.assert_allclose(mean[i], pred.predicted_mean, rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(var[i], pred.var_pred_mean, rtol=1e-9, atol=1e-9)
        changed = y.copy()
        changed[50:] = rng.normal(size=20) * 100  # data after origin 49 scrambled
        early = dynamic_forecasts(ARIMA(np.r_[changed, np.full(H, np.nan)], order=order, trend=trend,
                                        seasonal_order=seasonal).filter(params), origins[origins <= 49], H)
    np.testing.assert_array_equal(early[0], mean[origins <= 49])
    np.testing.assert_array_equal(early[1], var[origins <= 49])


def test_arima_estimates_reach_the_plain_statsmodels_optimum_cold_and_warm_started():
    """biocount's estimator (variance concentrated out, warm-started from the previous selection on a
    re-selection) reaches the optimum of statsmodels' plain ``ARIMA.fit``: the same AICc and parameters
    within optimiser tolerance, a likelihood at least as high; a previous fit whose AR part is not
    stationary is not used as a start."""
    from statsmodels.tsa.arima.model import ARIMA

    from biocount_arima.forecaster import SeriesFit, _estimate, _start

    rng = np.random.default_rng(3)
    e, y = rng.normal(size=121), np.zeros(121)
    for t in range(1, 121):
        y[t] = 0.5 + 0.6 * y[t - 1] + e[t] + 0.3 * e[t - 1]
    for order, trend in (((1, 0, 1), "c"), ((2, 0, 0), "c"), ((0, 1, 1), "n"), ((0, 1, 0), "n")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = ARIMA(y[:100], order=order, trend=trend).fit()
            aicc, params, names = _estimate(y[:100], order, trend, None)
            previous = SeriesFit(80, order, trend, _estimate(y[:81], order, trend, None)[1], names=names)
            warm = _estimate(y[:100], order, trend, previous)
            mine = ARIMA(y[:100], order=order, trend=trend).loglike(params)
        assert names == tuple(plain.model.param_names)
        assert aicc == pytest.approx(plain.aicc, abs=1e-3)
        assert mine >= plain.llf - 1e-6
        np.testing.assert_allclose(params, plain.params, atol=5e-3)
        assert warm[0] == pytest.approx(aicc, abs=1e-3)
        np.testing.assert_allclose(warm[1], params, atol=5e-3)
    model = ARIMA(y[:100], order=(1, 0, 0), trend="c", concentrate_scale=True)
    explosive = SeriesFit(80, (1, 0, 0), "c", np.array([0.0, 1.2, 1.0]), names=("const", "ar.L1", "sigma2"))
    assert _start(model, explosive) is None
    grown = ARIMA(y[:100], order=(2, 0, 0), trend="c", concentrate_scale=True)
    stable = SeriesFit(80, (1, 0, 0), "c", np.array([0.4, 0.6, 1.0]), names=("const", "ar.L1", "sigma2"))
    np.testing.assert_array_equal(_start(grown, stable), [0.4, 0.6, 0.0])  # the new lag starts at zero


def test_arima_chooses_orders_by_aicc_on_training_data_and_falls_back():
    data = ar_study(S=1, F=1)
    y = data.y.copy()
    y[0, 3:30] = np.nan  # too few training observations left
    short = ModalityData(series=["s0"], times=data.times, features=["f0"], values=y, meta={"modality": "x"})
    data2 = align({"x": short}, target="x")
    task = ForecastTask(data=data2, horizon=2, train_end=np.array([24]))
    f = ArimaForecaster().fit(task)
    pred = f.predict(task, np.array([[0, 30], [0, 31]]))
    report = f.report()
    assert report["series_features"]["s0|f0"]["selections"][0]["fallback"] == "only 3 observations"
    assert report["fallback"] == {"series": 1, "of": 1, "origins": 2, "of_origins": 2, "to": "persistence"}
    assert "equal persistence on 1 of 1" in report["notes"][0]
    np.testing.assert_array_equal(pred.mean[:, 0, 0], data2.y[0, [30, 31], 0])  # persistence


def test_arima_preselection_ranks_orders_as_hannan_rissanen_and_keeps_the_full_search_choice():
    """The pre-selection's least squares agree with statsmodels' own Hannan–Rissanen estimator (innovation
    variance), keep the true order of a simulated ARMA(2, 1) among the finalists, choose what the full search
    chooses there, and step aside for a series with gaps."""
    from statsmodels.tsa.arima.estimators.hannan_rissanen import hannan_rissanen

    from biocount_arima.forecaster import _hannan_rissanen_aicc, preselect, select

    rng = np.random.default_rng(0)
    e, y = rng.normal(size=301), np.zeros(301)
    for t in range(2, 301):
        y[t] = 0.6 * y[t - 1] - 0.2 * y[t - 2] + e[t] + 0.4 * e[t - 1]
    m = 25  # the long AR of both: statsmodels' initial_ar_order
    lags = np.column_stack([y[m - i: 301 - i] for i in range(1, m + 1)] + [np.ones(301 - m)])
    resid = y[m:] - lags @ np.linalg.lstsq(lags, y[m:], rcond=None)[0]
    start = m + 2
    aicc = _hannan_rissanen_aicc(y, ((2, 0, 1), "c", (0, 0, 0, 0)), start, m, resid)
    n, k = 301 - start, 5
    sigma2 = np.exp((aicc - 2 * k - 2 * k * (k + 1) / (n - k - 1)) / n)
    reference = hannan_rissanen(y, ar_order=2, ma_order=1, demean=True, initial_ar_order=m)[0].sigma2
    assert sigma2 == pytest.approx(reference, rel=0.05)
    candidates = [((p, 0, q), "c", (0, 0, 0, 0)) for p in range(3) for q in range(2)]
    kept = preselect(y, candidates, 3)
    assert len(kept) == 3 and ((2, 0, 1), "c", (0, 0, 0, 0)) in kept
    assert select(y, 300, ArimaOptions(preselect=3)).order == select(y, 300, ArimaOptions(preselect=None)).order
    gappy = y.copy()
    gappy[50] = np.nan
    assert preselect(gappy, candidates, 3) == candidates  # no least squares across a gap: the full search


def seasonal_study(T=96, s=12, step=2.0, seed=1):
    """Two series of a seasonal AR: y_t = 0.3 y_{t-1} + 0.8 y_{t-s} + noise, on a grid of ``step`` time units."""
    rng = np.random.default_rng(seed)
    y = np.zeros((2, T, 1))
    for t in range(T):
        y[:, t] = (0.3 * y[:, t - 1] if t else 0) + (0.8 * y[:, t - s] if t >= s else 0) + rng.normal(0, 0.5, (2, 1))
    d = ModalityData(series=["a", "b"], times=np.arange(T) * step, features=["f"], values=y + 5,
                     meta={"modality": "x"})
    return align({"x": d}, target="x")


def test_arima_tries_seasonal_terms_at_the_declared_period_and_forecasts_as_statsmodels():
    """With a period (24 time units on a 2-unit grid: lag 12) the seasonal AR is chosen on a seasonal series, its
    forecasts are statsmodels' for the chosen order and estimates on the data up to each origin, and they beat the
    same search without seasonal terms; the report says how often they were chosen."""
    from statsmodels.tsa.arima.model import ARIMA

    data = seasonal_study()
    H, train_end = 3, 60
    task = ForecastTask(data=data, horizon=H, train_end=np.full(2, train_end))
    orig = np.array([(s, t) for s in range(2) for t in range(train_end, 93)])
    seasonal = ArimaForecaster(ArimaOptions(period=24.0, reselect_growth=None))
    fc = seasonal.fit(task).predict(task, orig)
    plain = ArimaForecaster(ArimaOptions(reselect_growth=None)).fit(task).predict(task, orig)
    future = np.stack([data.y[s, t + 1: t + 1 + H, 0] for s, t in orig])
    assert np.mean((fc.mean[..., 0] - future) ** 2) < 0.6 * np.mean((plain.mean[..., 0] - future) ** 2)
    report = seasonal.report()
    for s in range(2):
        (sel,) = report["series_features"][f"{'ab'[s]}|f"]["selections"]
        assert sel["seasonal"][0] + sel["seasonal"][2] >= 1 and sel["seasonal"][3] == 12
        fit = seasonal.fits[("ab"[s], "f")][train_end]
        y = data.y[s, :, 0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in np.flatnonzero(orig[:, 0] == s)[::8]:
                t = orig[i, 1]
                direct = ARIMA(y[: t + 1], order=fit.order, trend=fit.trend, seasonal_order=fit.seasonal)
                np.testing.assert_allclose(fc.mean[i, :, 0], direct.filter(fit.params).forecast(H), atol=1e-6)
    assert "chosen in 2 of 2 selections" in report["notes"][0]


def test_arima_seasonal_terms_need_a_regular_grid_whole_steps_and_two_cycles(monkeypatch):
    """No seasonal terms (and a note saying why) on an irregular grid, for a period that is not a whole number
    of steps, or on data shorter than two cycles; without a period the search is the non-seasonal one."""
    from biocount_arima.forecaster import season_of, select

    assert season_of(np.arange(10.0) * 3, 24.0) == (8, None)
    assert season_of(np.arange(10.0) * 3, None) == (0, None)
    assert "not a whole number" in season_of(np.arange(10.0) * 3, 25.0)[1]
    assert "not regular" in season_of(np.array([0.0, 1.0, 3.0]), 2.0)[1]
    import biocount_arima.forecaster as arima

    tried = []
    estimate = arima._estimate
    monkeypatch.setattr(arima, "_estimate", lambda *a: tried.append(a[4]) or estimate(*a))
    y = seasonal_study(T=40).y[0, :, 0]
    assert select(y, 22, ArimaOptions(period=24.0), season=12).seasonal == (0, 0, 0, 0)  # 23 points < 2 cycles
    assert set(tried) == {(0, 0, 0, 0)}
    assert select(y, 39, ArimaOptions(period=24.0, max_P=0, max_Q=0), season=12).seasonal == (0, 0, 0, 0)
    fit = select(y, 39, ArimaOptions(period=24.0), season=12)
    assert fit.seasonal != (0, 0, 0, 0) and {(1, 0, 0, 12), (0, 0, 1, 12), (1, 0, 1, 12)} <= set(tried)
    # a re-selection's stepwise step also toggles the seasonal AR and MA terms
    steps = {(c[0], c[2]) for c in arima._neighbours(fit, ArimaOptions(period=24.0), 12)}
    P, _, Q, _ = fit.seasonal
    assert (fit.order, (1 - P, 0, Q, 12) if (1 - P) or Q else (0, 0, 0, 0)) in steps
    assert (fit.order, (P, 0, 1 - Q, 12) if P or (1 - Q) else (0, 0, 0, 0)) in steps


def test_arima_with_a_period_reads_no_data_after_an_origin():
    """The truncation contract with seasonal terms: deleting data after t leaves forecasts at origins <= t
    bit-identical (selections, seasonal candidates, the divergence rule)."""
    data = seasonal_study()
    origins = np.array([[0, t] for t in range(50, 93)])

    def forecast(until):
        d = ModalityData(series=["a"], times=data.times[:until], features=["f"], values=data.y[:1, :until],
                         meta={"modality": "x"})
        task = ForecastTask(data=align({"x": d}, target="x"), horizon=2, train_end=np.array([49]))
        return ArimaForecaster(ArimaOptions(period=24.0)).fit(task).predict(task, origins[origins[:, 1] < until]).mean

    full, cut = forecast(96), forecast(75)
    np.testing.assert_array_equal(cut, full[: cut.shape[0]])


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
    split = make_split(points(data), horizon=2)
    grid = split.on_grid(data)
    host = load_host()
    models = {n: PlannedForecaster(host.forecaster(n),
                                   host.forecaster(n).build(**({"quiet": True, "epochs": 3} if n == "lstm" else {})))
              for n in ("lstm", "arima", "naive")}
    bt = run_backtest(data, grid, models, horizon=2, baselines=["arima", "naive"])
    np.testing.assert_array_equal(bt.test_origins, grid.test)
    assert (grid.test[:, 1] >= grid.val_end[grid.test[:, 0]]).all()
    assert (grid.val[:, 1] < grid.val_end[grid.val[:, 0]]).all() and (grid.val[:, 1] >= grid.train_end[grid.val[:, 0]]).all()
    m = bt.metrics()
    overall = m[m.scope == "overall"].set_index("forecaster")
    assert overall["n"].nunique() == 1  # the same target points for everyone
    assert np.isnan(overall.loc["arima", "dm_arima_p"]) and np.isfinite(overall.loc["lstm", "dm_arima_p"])
    assert {"fit_s", "predict_s"} <= set(bt.timings["lstm"])
    frame = bt.forecasts_frame()
    assert {"series", "feature", "origin", "horizon", "time", "observed", "lstm", "arima", "naive"} <= set(frame)
    assert frame["time"].gt(frame["origin"]).all()


def test_dm_sign_agrees_with_mse_and_is_reported_per_horizon():
    """Units with fewer scored points no longer weigh as much as full ones: DM and MSE tell one story."""
    data = ar_study(S=4, T=40, F=2, missing=0.3, seed=5)
    grid = make_split(points(data), horizon=3).on_grid(data)
    host = load_host()
    models = {n: PlannedForecaster(host.forecaster(n), host.forecaster(n).build()) for n in ("arima", "naive")}
    bt = run_backtest(data, grid, models, horizon=3, baselines=["naive"])
    m = bt.metrics()
    for scope, h in (("overall", "all"), ("horizon", 1), ("horizon", 2), ("horizon", 3)):
        rows = m[(m.scope == scope) & (m.horizon == h)].set_index("forecaster")
        diff = rows.loc["arima", "mse"] - rows.loc["naive", "mse"]
        assert np.sign(rows.loc["arima", "dm_naive_stat"]) == np.sign(diff), (scope, h)
