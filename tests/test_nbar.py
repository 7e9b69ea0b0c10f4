"""The negative-binomial autoregression baseline (plugin ``nbar``): its fit against statsmodels' own NB2 maximum
likelihood, its expected log-count against sampling, forecasts that read nothing after an origin, and clear
errors and fallbacks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from biocount import BiocountInputError, ModalityData
from biocount.forecast import ForecastTask
from biocount.study.align import align
from biocount_nbar.forecaster import NbarForecaster, _fit, expected_log1p, lagged
from biocount_nbar.options import NbarOptions


def count_study(S=12, T=40, alpha=0.2, seed=0, until=None):
    """Counts from a NB autoregression on log1p counts (two features), as the tabular encoder keeps them."""
    from biocount.host.plugins import load_host
    from biocount.study.encode import TrainSelection, encode

    rng = np.random.default_rng(seed)
    y = np.zeros((S, T, 2))
    y[:, 0] = rng.poisson(20, (S, 2))
    for t in range(1, T):
        mu = np.exp(0.6 + 0.8 * np.log1p(y[:, t - 1]))
        r = 1 / alpha
        y[:, t] = rng.negative_binomial(r, r / (r + mu))
    import anndata as ad
    import pandas as pd

    T_kept = T if until is None else until + 1
    obs = pd.DataFrame({"series": np.repeat([f"s{i}" for i in range(S)], T_kept),
                        "time": np.tile(np.arange(T_kept, dtype=float), S)})
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(X=y[:, :T_kept].reshape(-1, 2).astype(np.float32), obs=obs,
                       var=pd.DataFrame(index=["f0", "f1"]))
    encoded, _ = encode({"cells": adata}, ["cells"], load_host(), train=TrainSelection(until=24.0),
                        overrides={"cells": "tabular"})
    return align(encoded, target="cells"), y


def test_fit_reaches_the_statsmodels_nb2_maximum_likelihood():
    """The alternation of GLM coefficients and dispersion (glm.nb's) lands where statsmodels' joint NB2 maximum
    likelihood does on data it handles well: same coefficients and dispersion, the same log-likelihood."""
    from statsmodels.discrete.discrete_model import NegativeBinomial

    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(400), rng.normal(size=400), rng.normal(size=400)])
    offset = np.log(rng.uniform(0.5, 2.0, 400))
    mu = np.exp(1.5 + 0.4 * X[:, 1] - 0.3 * X[:, 2] + offset)
    y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    mine, caught = _fit(y, X, offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = NegativeBinomial(y, X, loglike_method="nb2", offset=offset).fit(disp=0, method="newton")
    np.testing.assert_allclose(mine["beta"], ref.params[:-1], atol=2e-4)
    assert mine["alpha"] == pytest.approx(ref.params[-1], rel=2e-3)
    assert mine["llf"] == pytest.approx(ref.llf, abs=1e-4)
    assert mine["aic"] == pytest.approx(ref.aic, abs=1e-3)


@pytest.mark.parametrize(("mu", "size", "last"), [(3.0, 2.0, 1.0), (40.0, 0.5, 1.0), (5000.0, 0.2, 1.0),
                                                  (5000.0, 20.0, 2.0)])
def test_expected_log_count_matches_sampling(mu, size, last):
    from scipy import stats

    draws = stats.nbinom.rvs(size, size / (size + mu), size=400_000, random_state=np.random.default_rng(0))
    reference = np.log1p(draws / last).mean()
    got = expected_log1p(np.array([mu]), np.array([size]), np.array([last]))[0]
    assert got == pytest.approx(reference, abs=5e-3)


def test_lagged_reads_the_last_observed_values_only():
    x = np.array([1.0, np.nan, 3.0, 4.0, np.nan, 6.0])
    np.testing.assert_allclose(lagged(x, 2), np.log1p([[1, np.nan], [1, np.nan], [3, 1], [4, 3], [4, 3], [6, 4]]))


def test_nbar_forecasts_counts_better_than_persistence_with_a_count_distribution():
    data, y = count_study()
    S, T = y.shape[:2]
    task = ForecastTask(data=data, horizon=2, train_end=np.full(S, 24))
    origins = np.array([(s, t) for s in range(S) for t in range(25, T - 2)])
    model = NbarForecaster().fit(task)
    fc = model.predict(task, origins)
    future = np.stack([data.y[s, t + 1: t + 3] for s, t in origins])
    naive = np.broadcast_to(data.last_target(origins)[:, None, :], future.shape)
    # the oracle one step ahead: the simulation's own parameters, on the encoded scale
    mu = np.exp(0.6 + 0.8 * np.log1p(np.stack([y[s, t] for s, t in origins])))
    c, sc = data.units.center, data.units.scale
    oracle = np.stack([(expected_log1p(mu[:, f], np.full(len(mu), 5.0), np.ones(len(mu))) - c[f]) / sc[f]
                       for f in range(2)], axis=1)
    mse = np.nanmean((fc.mean - future) ** 2, axis=(0, 2))
    assert mse[0] < 1.1 * np.nanmean((oracle - future[:, 0]) ** 2)
    assert (mse < np.nanmean((naive - future) ** 2, axis=(0, 2))).all()
    assert fc.counts is not None and np.isfinite(fc.counts.mu).all() and (fc.counts.size > 0).all()
    levels = sorted(fc.quantiles)
    assert all((fc.quantiles[a] <= fc.quantiles[b] + 1e-12).all() for a, b in zip(levels, levels[1:], strict=False))
    report = model.report()
    assert report["notes"] == [] and report["models"]["f0 h=1"]["k"] in (1, 2, 3)


def test_nbar_reads_no_data_after_an_origin():
    """Deleting every row after day 30 leaves the forecasts (means, quantiles, count distributions) at origins
    up to 30 bit-identical: the fit reads the training part only, a forecast the values up to its origin."""
    full, _ = count_study()
    cut, _ = count_study(until=30)
    origins = np.array([(s, t) for s in range(12) for t in range(25, 31)])
    a = NbarForecaster().fit(ForecastTask(data=full, horizon=2, train_end=np.full(12, 24))).predict(
        ForecastTask(data=full, horizon=2, train_end=np.full(12, 24)), origins)
    task = ForecastTask(data=cut, horizon=2, train_end=np.full(12, 24))
    b = NbarForecaster().fit(task).predict(task, origins)
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.counts.mu, b.counts.mu)
    for q in a.quantiles:
        np.testing.assert_array_equal(a.quantiles[q], b.quantiles[q])


def test_nbar_needs_counts_and_says_where_it_is_persistence():
    rng = np.random.default_rng(0)
    d = ModalityData(series=["a", "b"], times=np.arange(30.0), features=["f"], values=rng.normal(size=(2, 30, 1)),
                     meta={"modality": "x"})
    continuous = align({"x": d}, target="x")
    with pytest.raises(BiocountInputError, match="nbar: the target 'x' carries no raw counts"):
        NbarForecaster().fit(ForecastTask(data=continuous, horizon=2, train_end=np.full(2, 20)))
    data, _ = count_study(S=2)
    task = ForecastTask(data=data, horizon=2, train_end=np.full(2, 10))
    model = NbarForecaster(NbarOptions(min_rows=50)).fit(task)  # 2 series x 10 points: too few rows
    origins = np.array([[0, 20], [1, 21]])
    fc = model.predict(task, origins)
    np.testing.assert_array_equal(fc.mean, np.broadcast_to(data.last_target(origins)[:, None, :], fc.mean.shape))
    assert fc.counts is None
    notes = model.report()["notes"]
    assert "persistence for 4 of 4" in notes[0] and "count-scale scores are left out" in notes[1]
