"""ARIMA's approximation for large studies: orders chosen and estimated by conditional sums of squares,
batched over series (plugins/biocount_arima/css.py and ``forecaster.approximate``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import least_squares

import biocount_arima.forecaster as arima
from biocount import ModalityData
from biocount.forecast import ForecastTask
from biocount.study.align import align
from biocount_arima import css
from biocount_arima.forecaster import ArimaForecaster, approximate
from biocount_arima.options import ArimaOptions


def arma(n, phi=(), theta=(), c=0.0, seed=0, burn=100):
    rng = np.random.default_rng(seed)
    e = rng.normal(size=n + burn)
    z = np.zeros(n + burn)
    for t in range(n + burn):
        z[t] = c + e[t] + sum(p * z[t - 1 - i] for i, p in enumerate(phi) if t - 1 - i >= 0) \
            + sum(q * e[t - 1 - j] for j, q in enumerate(theta) if t - 1 - j >= 0)
    return z[burn:]


def reference_errors(beta, z, p, q, const):
    """The conditional one-step errors written out per time step, one series at a time (the reference)."""
    c = beta[0] if const else 0.0
    phi, theta = beta[const: const + p], beta[const + p:]
    e = np.zeros(z.size)
    for t in range(p, z.size):
        e[t] = z[t] - c - sum(phi[i] * z[t - 1 - i] for i in range(p)) \
            - sum(theta[j] * e[t - 1 - j] for j in range(q) if t - 1 - j >= p)
    return e


@pytest.mark.parametrize(("p", "q", "const", "phi", "theta"), [
    (1, 1, True, (0.6,), (0.4,)), (2, 1, False, (0.5, -0.3), (-0.5,)), (0, 1, True, (), (0.7,)),
    (2, 0, True, (0.4, 0.3), ()), (1, 2, True, (0.3,), (0.2, 0.4))])
def test_css_reaches_the_conditional_least_squares_minimum_of_every_row(p, q, const, phi, theta):
    """Each row's estimates minimise its own sum of squares: scipy's least_squares on the reference errors
    (q = 0: numpy's lstsq) reaches the same minimum."""
    Z = np.stack([arma(80, phi, theta, c=1.0 if const else 0.0, seed=s) for s in range(6)])
    start = max(p, 2)
    beta, rss = css.fit(Z, p, q, const, start)
    for z, b, r in zip(Z, beta, rss, strict=True):
        ref = least_squares(lambda x, z=z: reference_errors(x, z, p, q, const)[start:], np.zeros(const + p + q),
                            xtol=1e-14, ftol=1e-14, gtol=1e-14)
        assert r == pytest.approx(float(np.sum(reference_errors(b, z, p, q, const)[start:] ** 2)), rel=1e-12)
        # Gauss-Newton converges linearly where AR and MA roots nearly cancel (a flat valley): the tolerance
        assert 2 * ref.cost * (1 - 1e-12) <= r <= 2 * ref.cost * (1 + 1e-6)
        np.testing.assert_allclose(b, ref.x, atol=2e-3)
        if q == 0:
            X = np.column_stack([np.ones(z.size - start)] * const + [z[start - 1 - i: z.size - 1 - i] for i in range(p)])
            np.testing.assert_allclose(b, np.linalg.lstsq(X, z[start:], rcond=None)[0], atol=1e-10)


def test_css_rows_never_mix_a_series_gets_the_same_numbers_in_any_batch():
    Z = np.stack([arma(60, (0.5,), (0.3,), seed=s) for s in range(7)])
    Z[3] = arma(60, (0.95,), (-0.9,), seed=9)  # a hard row (near cancellation) in the middle
    beta, rss = css.fit(Z, 1, 1, True, 1)
    for i in range(7):
        alone, rss_alone = css.fit(Z[i: i + 1], 1, 1, True, 1)
        np.testing.assert_array_equal(alone[0], beta[i])
        assert rss_alone[0] == rss[i]
    np.testing.assert_array_equal(css.fit(Z[::-1], 1, 1, True, 1)[0], beta[::-1])


def test_admissible_checks_stationarity_and_invertibility_by_the_roots():
    coefs = np.array([[0.5, 0.3], [1.2, -0.1], [0.5, 0.6], [-0.2, -0.99]])
    for sign in (-1.0, 1.0):
        expected = [np.all(np.abs(np.roots(np.r_[sign * row[::-1], 1.0])) > 1) for row in coefs]
        np.testing.assert_array_equal(css.admissible(coefs, sign), expected)


def test_aicc_is_statsmodels_criterion_of_the_conditional_likelihood():
    from statsmodels.tools.eval_measures import aicc

    rss, n, k = np.array([12.5, 3.0]), 50, 4
    loglike = -0.5 * n * (np.log(2 * np.pi * rss / n) + 1)
    np.testing.assert_allclose(css.aicc(rss, n, k), aicc(loglike, n, k))


def test_approximate_chooses_orders_like_the_exact_search_and_returns_statsmodels_parameters():
    """On long simulated series the order chosen is the exact search's, the conditional estimates are near
    statsmodels' maximum likelihood ones for it, and the parameters carry statsmodels' names and meaning (a
    mean at d = 0, a drift at d = 1, not the intercept): the forecasts run its Kalman filter with them."""
    from statsmodels.tsa.arima.model import ARIMA

    ar2 = 5.0 + arma(300, (0.5, 0.3), seed=1)
    walk = np.cumsum(0.4 + arma(300, (0.5,), seed=2))
    options = ArimaOptions(max_q=0)  # AR orders only: well identified, no near-cancelling roots
    fits = approximate([(ar2, 299), (walk, 299)], options)
    for y, fit in zip((ar2, walk), fits, strict=True):
        exact = arima.select(y, 299, options)
        assert fit.method == "css" and (fit.order, fit.trend) == (exact.order, exact.trend)
    assert [(f.order, f.trend) for f in fits] == [((2, 0, 0), "c"), ((1, 1, 0), "t")]
    for y, fit in zip((ar2, walk), fits, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ARIMA(y, order=fit.order, trend=fit.trend)
            mle = model.fit().params
        assert fit.names == tuple(model.param_names)
        np.testing.assert_allclose(fit.params, mle, atol=0.1, rtol=0.1)


def test_approximate_leaves_gaps_tiny_and_constant_series_to_the_exact_search():
    y = 2.0 + arma(60, (0.6,), seed=3)
    gappy = y.copy()
    gappy[20] = np.nan
    late = np.r_[np.full(10, np.nan), y[10:]]  # missing before its first observation is no gap
    flat = np.full(60, 3.0)  # collinear columns, zero squares: no conditional fit, the exact search decides
    fits = approximate([(gappy, 59), (gappy, 19), (y[:3], 2), (late, 59), (flat, 59)], ArimaOptions())
    assert fits[0] is None and fits[2] is None and fits[4] is None
    assert fits[1].method == "css" and fits[3].method == "css"


def study(S, T=70, missing_series=()):
    values = np.stack([np.stack([2.0 + arma(T, (0.6,), (0.3,), seed=10 * s + f) for f in range(2)], axis=-1)
                       for s in range(S)])
    for s in missing_series:
        values[s, 40, 0] = np.nan
    d = ModalityData(series=[f"s{i}" for i in range(S)], times=np.arange(float(T)),
                     features=["f0", "f1"], values=values, meta={"modality": "x"})
    return align({"x": d}, target="x")


def test_arima_approximates_from_a_thousand_series_features_and_says_so(monkeypatch):
    data = study(4, missing_series=(1,))
    task = ForecastTask(data=data, horizon=2, train_end=np.full(4, 39))
    origins = np.array([(s, t) for s in range(4) for t in range(39, 67)])
    exact = ArimaForecaster().fit(task)
    exact.predict(task, origins)
    assert not exact.approximated and "conditional sums" not in " ".join(exact.report()["notes"])
    monkeypatch.setattr(arima, "APPROXIMATE_FROM", 8)  # 4 series x 2 features
    f = ArimaForecaster().fit(task)
    pred = f.predict(task, origins)
    assert f.approximated
    per = f.report()["series_features"]
    assert all(sel.get("method") == "css" for sel in per["s0|f0"]["selections"])
    # the gap at t = 40 sends the selections after it to the exact search
    assert [sel.get("method", "mle") for sel in per["s1|f0"]["selections"]] == ["css", "mle", "mle"]
    assert "conditional sums of squares in 22 of 24 selections" in " ".join(f.report()["notes"])
    # where the data after a selection have a gap (s1 at t = 40), its segment is forecast by statsmodels' Kalman
    # filter at the conditional estimates, on the data up to the origin
    from statsmodels.tsa.arima.model import ARIMA

    fit = f.fits[("s1", "f0")][39]
    y = data.y[1, :, 0]
    for t in (39, 44):  # before the next selection at 47
        i = int(np.flatnonzero((origins[:, 0] == 1) & (origins[:, 1] == t))[0])
        direct = ARIMA(y[: t + 1], order=fit.order, trend=fit.trend).filter(fit.params).forecast(2)
        np.testing.assert_allclose(pred.mean[i, :, 0], direct, rtol=1e-9)
    assert not ArimaForecaster(ArimaOptions(approximation=False)).fit(task)._approximates(10**6)


def test_approximated_arima_reads_no_data_after_an_origin():
    """The truncation contract: deleting data after t leaves forecasts at origins <= t bit-identical, though the
    batches hold other selections then."""
    data = study(3)
    origins = np.array([(s, t) for s in range(3) for t in range(39, 68)])

    def forecast(until):
        d = ModalityData(series=list(data.series), times=data.times[:until], features=list(data.target_features),
                         values=data.y[:, :until], meta={"modality": "x"})
        task = ForecastTask(data=align({"x": d}, target="x"), horizon=2, train_end=np.full(3, 39))
        keep = origins[:, 1] < until
        out = ArimaForecaster(ArimaOptions(approximation=True)).fit(task).predict(task, origins[keep])
        return out.mean, keep

    full, _ = forecast(70)
    for until in (40, 48, 52):  # just after the selections at 39 and 47, and between selections
        cut, keep = forecast(until)
        np.testing.assert_array_equal(cut, full[keep])


def reference_forecasts(y, d, c, phi, theta, origin, horizon):
    """Box and Jenkins' forecasts from one origin written out: the conditional errors of y[: origin + 1] only."""
    levels = [np.asarray(y[: origin + 1], dtype=float)]
    for _ in range(d):
        levels.append(np.diff(levels[-1]))
    z = list(levels[-1])
    beta = np.r_[c, phi, theta]
    e = list(reference_errors(beta, np.array(z), len(phi), len(theta), True))
    for _ in range(horizon):
        t = len(z)
        z.append(c + sum(phi[i] * z[t - 1 - i] for i in range(len(phi)))
                 + sum(theta[j] * e[t - 1 - j] for j in range(len(theta))))
        e.append(0.0)
    out = np.array(z[-horizon:])
    for k in range(d - 1, -1, -1):
        out = levels[k][-1] + np.cumsum(out)
    return out


@pytest.mark.parametrize(("d", "phi", "theta", "c"), [
    (0, [0.6], [0.3], 1.0), (1, [0.4, -0.2], [0.5], 0.2), (2, [], [0.4], 0.0), (0, [0.5, 0.2], [], 3.0),
    (1, [], [], 0.1)])
def test_css_forecasts_are_box_jenkins_from_every_origin(d, phi, theta, c):
    """From every origin at once, as the recursion written out on the data up to that origin; the variance from
    statsmodels' psi weights (arma2ma); and on a long series, equal to statsmodels' Kalman filter forecasts at the
    same parameters (the start-up errors have died out)."""
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.arima_process import arma2ma

    y = 2.0 + arma(150, (0.6,), (0.3,), seed=4)
    for _ in range(d):
        y = np.cumsum(y) / 5
    origins, H, sigma2 = np.array([20, 21, 60, 120, 149]), 4, 0.7
    mean, var = css.forecast(y, d, c, np.array(phi), np.array(theta), sigma2, origins, H)
    for row, o in enumerate(origins):
        np.testing.assert_allclose(mean[row], reference_forecasts(y, d, c, phi, theta, o, H), rtol=1e-12, atol=1e-12)
    ar = np.array([1.0])
    for _ in range(d):
        ar = np.convolve(ar, [1.0, -1.0])
    psi = arma2ma(np.convolve(ar, np.r_[1.0, -np.array(phi)]), np.r_[1.0, theta], lags=H)
    np.testing.assert_allclose(var, np.broadcast_to(sigma2 * np.cumsum(psi**2), var.shape), rtol=1e-12)
    trend = "n" if c == 0 else ("c" if d == 0 else "t")
    mu = c / (1.0 - sum(phi))
    params = np.r_[[mu] if trend != "n" else [], phi, theta, sigma2]
    if d <= 1:  # statsmodels' drift (trend "t") exists for d <= 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = ARIMA(y[:121], order=(len(phi), d, len(theta)), trend=trend).filter(params)
        np.testing.assert_allclose(mean[3], res.forecast(H), rtol=1e-8)
        np.testing.assert_allclose(var[3], res.get_forecast(H).var_pred_mean, rtol=1e-6)
