"""Ensemble weights against independent solutions; conformal intervals and scores by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from biocount import BiocountInputError
from biocount.evaluation.ensemble import ensemble, fit_weights, simplex_least_squares
from biocount.evaluation.intervals import (
    check_levels,
    conformal,
    interval_scores,
    min_calibration,
    pinball,
    quantile_scores,
)


def members(seed=0, n=40, M=3):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 2, 1))
    preds = [y + rng.normal(0, s, size=y.shape) + b for s, b in zip((0.3, 0.6, 1.0)[:M], (0.2, -0.1, 0.4)[:M], strict=True)]
    return preds, y


def test_stack_weights_match_scipy_on_the_simplex():
    preds, y = members()
    P = np.stack([p.ravel() for p in preds], axis=1)
    t = y.ravel()
    ref = minimize(lambda w: np.sum((P @ w - t) ** 2), np.full(3, 1 / 3), method="SLSQP", bounds=[(0, 1)] * 3,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-14}).x
    w = fit_weights("stack", preds, y)
    np.testing.assert_allclose(w, ref, atol=1e-5)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0)


def test_stack_never_goes_negative_even_when_regression_would():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    a = y + rng.normal(0, 0.3, 200)
    b = a + (a - y)  # the same error, doubled: regression would take 2a - b = y exactly
    ols = np.linalg.lstsq(np.stack([a, b], axis=1), y, rcond=None)[0]
    np.testing.assert_allclose(ols, [2, -1], atol=1e-8)
    w = simplex_least_squares(np.stack([a, b], axis=1), y)
    np.testing.assert_allclose(w, [1, 0], atol=1e-6)


def test_mean_and_inverse_weights_by_hand():
    preds, y = members()
    np.testing.assert_allclose(fit_weights("mean", preds, y), [1 / 3] * 3)
    mse = np.array([np.mean((p - y) ** 2) for p in preds])
    np.testing.assert_allclose(fit_weights("inverse", preds, y), (1 / mse) / np.sum(1 / mse))


def test_ensemble_per_feature_and_pooled():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(30, 2, 2))
    good0 = y.copy()
    good0[..., 1] += rng.normal(0, 2, size=(30, 2))  # member 0 is good on feature 0 only
    good1 = y.copy()
    good1[..., 0] += rng.normal(0, 2, size=(30, 2))
    combined, W = ensemble("stack", [good0, good1], y, [good0, good1], per="feature")
    assert W.shape == (2, 2) and W[0, 0] > 0.9 and W[1, 1] > 0.9
    np.testing.assert_allclose(combined[..., 0], W[0, 0] * good0[..., 0] + W[0, 1] * good1[..., 0])
    _, w = ensemble("mean", [good0, good1], y, [good0, good1])
    assert w.shape == (2,)


def test_ensemble_bad_input():
    preds, y = members()
    with pytest.raises(BiocountInputError, match="needs at least two members, got 1"):
        ensemble("stack", preds[:1], y, preds[:1])
    with pytest.raises(BiocountInputError, match="at least 10 observed validation points"):
        fit_weights("stack", [p[:2, :1] for p in preds], y[:2, :1])
    with pytest.raises(BiocountInputError, match="levels 1.2"):
        check_levels([0.8, 1.2])


def test_conformal_quantile_by_hand():
    rng = np.random.default_rng(3)
    y_val = rng.normal(size=(19, 1, 1))
    pred_val = np.zeros_like(y_val)
    scale = np.ones_like(y_val)
    lo, up, q = conformal(pred_val, y_val, scale, np.zeros((5, 1, 1)), np.full((5, 1, 1), 2.0), 0.9)
    r = np.sort(np.abs(y_val.ravel()))
    k = math.ceil(20 * 0.9)  # the ceil((n + 1) level)-th smallest residual
    assert q[0] == r[k - 1]
    np.testing.assert_allclose(up[:, 0, 0], 2.0 * r[k - 1])  # rescaled by the test points' scale
    assert min_calibration(0.95) == 19 and min_calibration(0.8) == 4
    with pytest.raises(BiocountInputError, match="need at least 19 validation residuals, got 10"):
        conformal(pred_val[:10], y_val[:10], scale[:10], pred_val, scale, 0.95)


def test_conformal_covers_exchangeable_data():
    rng = np.random.default_rng(4)
    hits = []
    for _ in range(200):
        e = rng.standard_t(4, size=(61, 1, 1))
        lo, up, _ = conformal(np.zeros((60, 1, 1)), e[:60], np.ones((60, 1, 1)), np.zeros((1, 1, 1)),
                              np.ones((1, 1, 1)), 0.8)
        hits.append(lo[0, 0, 0] <= e[60, 0, 0] <= up[0, 0, 0])
    assert 0.72 < np.mean(hits) < 0.88


def test_scores_by_hand():
    y = np.array([0.0, 1.0, 3.0])
    lo, up = np.array([-1.0, -1.0, -1.0]), np.array([1.0, 0.5, 1.0])
    s = interval_scores(y, lo, up, 0.8)
    assert s["coverage"] == pytest.approx(1 / 3) and s["width"] == pytest.approx((2 + 1.5 + 2) / 3)
    wink = np.array([2.0, 1.5 + 10 * 0.5, 2.0 + 10 * 2.0])  # 2 / alpha = 10
    assert s["winkler"] == pytest.approx(wink.mean())
    assert pinball(np.array([2.0]), np.array([1.0]), 0.9)[0] == pytest.approx(0.9)
    assert pinball(np.array([0.0]), np.array([1.0]), 0.9)[0] == pytest.approx(0.1)
    q = quantile_scores(y, {0.1: lo, 0.9: up})
    expected = np.mean([np.mean(pinball(y, lo, 0.1)), np.mean(pinball(y, up, 0.9))])
    assert q["pinball"] == pytest.approx(expected) and q["crps"] == pytest.approx(2 * expected)


def test_ensemble_per_horizon_fits_one_weight_vector_per_horizon():
    """Per horizon, the weights are exactly those fitted on that horizon's points alone."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=(40, 2, 1))
    near = y + np.stack([rng.normal(0, 0.1, (40, 1)), rng.normal(0, 1.0, (40, 1))], axis=1)  # good at h=1 only
    far = y + np.stack([rng.normal(0, 1.0, (40, 1)), rng.normal(0, 0.1, (40, 1))], axis=1)  # good at h=2 only
    combined, W = ensemble("stack", [near, far], y, [near, far], per="horizon")
    assert W.shape == (2, 2) and W[0, 0] > 0.8 and W[1, 1] > 0.8
    for h in range(2):
        np.testing.assert_allclose(W[h], fit_weights("stack", [near[:, h], far[:, h]], y[:, h]))
        np.testing.assert_allclose(combined[:, h], W[h, 0] * near[:, h] + W[h, 1] * far[:, h])
