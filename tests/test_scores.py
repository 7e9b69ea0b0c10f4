"""Hub-grade scores against independent references: exact sums for count CRPS, sampled CRPS, scipy's
densities, hand-computed interval scores, and PIT uniformity on simulated forecasts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from biocount import scores as S
from biocount.evaluation.intervals import conformal_quantiles, pinball


def _crps_sampled(y, draws):
    """E|X - y| - E|X - X'| / 2 from draws (the energy form of the CRPS)."""
    d = np.sort(draws)
    n = d.size
    spread = np.sum((2 * np.arange(1, n + 1) - n - 1) * d) / n**2  # E|X - X'| / 2, exactly, from sorted draws
    return np.mean(np.abs(d - y)) - spread


def _crps_discrete(y, cdf, top=400):
    """The CRPS of a count distribution as the exact sum over k of (F(k) - 1{y <= k})^2."""
    k = np.arange(top)
    return float(np.sum((cdf(k) - (y <= k)) ** 2))


def test_poisson_and_negative_binomial_closed_forms_equal_the_exact_sum_and_a_sampled_crps():
    rng = np.random.default_rng(1)
    for y, mu in ((0, 0.7), (3, 2.5), (12, 7.0), (2, 15.0)):
        exact = _crps_discrete(y, stats.poisson(mu).cdf)
        assert S.crps_poisson(np.array([float(y)]), np.array([mu]))[0] == pytest.approx(exact, rel=1e-6)
        sampled = _crps_sampled(y, rng.poisson(mu, 200_000).astype(float))
        assert S.crps_poisson(np.array([float(y)]), np.array([mu]))[0] == pytest.approx(sampled, abs=0.02)
        by_hand = -(y * np.log(mu) - mu - gammaln(y + 1))
        assert S.logs_poisson(np.array([float(y)]), np.array([mu]))[0] == pytest.approx(by_hand)
    for y, n, mu in ((0, 2.0, 1.5), (5, 0.8, 4.0), (20, 5.0, 12.0)):
        dist = stats.nbinom(n, n / (n + mu))  # scipy's (size, success probability); mean n (1 - p) / p = mu
        exact = _crps_discrete(y, dist.cdf, top=4000)
        got = S.crps_negbinom(np.array([float(y)]), np.array([n]), np.array([mu]))[0]
        assert got == pytest.approx(exact, rel=1e-5)
        assert got == pytest.approx(_crps_sampled(y, dist.rvs(200_000, random_state=rng).astype(float)), abs=0.05)
        by_hand = -(gammaln(y + n) - gammaln(n) - gammaln(y + 1) + n * np.log(n / (n + mu)) + y * np.log(mu / (n + mu)))
        assert S.logs_negbinom(np.array([float(y)]), np.array([n]), np.array([mu]))[0] == pytest.approx(by_hand)


def test_normal_crps_and_log_score_match_sampling_and_scipy():
    rng = np.random.default_rng(2)
    for y, loc, scale in ((0.3, 0.0, 1.0), (-2.0, 1.0, 0.5), (4.0, 4.2, 3.0)):
        got = S.crps_normal(np.array([y]), np.array([loc]), np.array([scale]))[0]
        assert got == pytest.approx(_crps_sampled(y, rng.normal(loc, scale, 400_000)), abs=0.01)
        by_hand = 0.5 * np.log(2 * np.pi * scale**2) + (y - loc) ** 2 / (2 * scale**2)
        assert S.logs_normal(np.array([y]), np.array([loc]), np.array([scale]))[0] == pytest.approx(by_hand)
    far = S.logs_normal(np.array([60.0]), np.array([0.0]), np.array([1.0]))[0]  # density underflows: still finite
    assert far == pytest.approx(0.5 * np.log(2 * np.pi) + 1800.0)
    assert np.isnan(S.crps_normal(np.array([np.nan]), np.array([0.0]), np.array([1.0]))[0])  # unobserved: no score


def test_weighted_interval_score_by_hand_and_its_parts_sum_to_it():
    levels = (0.1, 0.25, 0.5, 0.75, 0.9)
    q = np.array([[1.0, 2.0, 3.0, 4.0, 6.0]])
    for y, over, under in ((3.5, 0.0, None), (0.0, None, 0.0), (9.0, 0.0, None)):
        got = S.wis(np.array([y]), q, levels)
        # by hand: K = 2 intervals (80 %: [1, 6], 50 %: [2, 4]) and the median 3
        def interval(lo, up, alpha, y=y):
            return (up - lo) + 2 / alpha * max(lo - y, 0) + 2 / alpha * max(y - up, 0)
        hand = (0.5 * abs(y - 3.0) + 0.2 / 2 * interval(1, 6, 0.2) + 0.5 / 2 * interval(2, 4, 0.5)) / 2.5
        assert got["wis"][0] == pytest.approx(hand)
        assert got["dispersion"][0] + got["overprediction"][0] + got["underprediction"][0] == pytest.approx(hand)
        assert got["dispersion"][0] == pytest.approx((0.1 * 5 + 0.25 * 2) / 2.5)
        if over is not None:
            assert got["overprediction"][0] == over
        if under is not None:
            assert got["underprediction"][0] == under
        # on a symmetric quantile set with the median, WIS equals the quantile CRPS (sum of pinball losses / (K + 1/2))
        pin = sum(pinball(np.array([y]), q[:, i], t) for i, t in enumerate(levels))[0]
        assert got["wis"][0] == pytest.approx(pin / 2.5)
        assert S.crps_quantiles(np.array([y]), q, levels)[0] == pytest.approx(2 * pin / 5)


def test_biocount_imports_scoringrules_without_compiling_numba():
    import subprocess
    import sys

    code = "import sys, biocount.evaluation.scores as S; S._sr(); print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.split() == ["False"]


def test_scoringrules_numba_wis_agrees_where_its_numpy_backend_does_not():
    """Why biocount sums the parts itself: scoringrules 0.10's numpy WIS adds w * median, not w * |y - median|."""
    import subprocess
    import sys

    pytest.importorskip("scoringrules")
    pytest.importorskip("numba")
    ours = S.wis(np.array([9.0]), np.array([[1.0, 2.0, 3.0, 4.0, 6.0]]), (0.1, 0.25, 0.5, 0.75, 0.9))["wis"][0]
    # in a fresh process: biocount imports scoringrules without its numba backend (biocount.evaluation.scores._sr)
    code = ("import numpy as np, scoringrules as sr; y, m = np.array([9.0]), np.array([3.0]); "
            "lo, up, a = np.array([[1.0, 2.0]]), np.array([[6.0, 4.0]]), np.array([0.2, 0.5]); "
            "print(*[np.ravel(sr.weighted_interval_score(y, m, lo, up, a, backend=b))[0] for b in ('numba', 'numpy')])")
    numba, numpy = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                             check=True, timeout=300).stdout.split())
    assert numba == pytest.approx(ours)
    assert numpy != pytest.approx(ours)


def test_flusight_levels_and_coverage():
    assert len(S.QUANTILES) == 23 and S.QUANTILES[0] == 0.01 and S.QUANTILES[-1] == 0.99 and 0.5 in S.QUANTILES
    q = stats.norm.ppf(np.array(S.QUANTILES))[None].repeat(3, 0)
    y = np.array([0.0, 1.0, 3.0])
    assert S.covered(y, q, 0.5).tolist() == [1.0, 0.0, 0.0]  # the 50 % interval is [-0.674, 0.674]
    assert S.covered(y, q, 0.8).tolist() == [1.0, 1.0, 0.0]


def _ks_p(u):
    return stats.kstest(u[np.isfinite(u)], "uniform").pvalue


def test_randomised_pit_is_uniform_for_calibrated_count_forecasts_and_not_for_overdispersed_ones():
    rng = np.random.default_rng(3)
    mu = rng.uniform(0.5, 8.0, 20_000)
    calibrated = rng.poisson(mu).astype(float)
    u = S.pit_counts(calibrated, lambda k: stats.poisson(mu).cdf(k), rng)
    assert _ks_p(u) > 0.01
    overdispersed = stats.nbinom(0.7, 0.7 / (0.7 + mu)).rvs(random_state=rng).astype(float)
    v = S.pit_counts(overdispersed, lambda k: stats.poisson(mu).cdf(k), rng)
    assert _ks_p(v) < 1e-6
    h = S.pit_histogram(v)
    assert h[0] > 1.5 * h[5] and h[-1] > 1.5 * h[5]  # U-shaped: the forecasts are too narrow


def test_quantile_pit_is_uniform_for_calibrated_forecasts_and_u_shaped_for_too_narrow_ones():
    rng = np.random.default_rng(4)
    q = stats.norm.ppf(np.array(S.QUANTILES))[None].repeat(20_000, 0)
    assert _ks_p(S.pit_quantiles(rng.normal(size=20_000), q, rng)) > 0.01
    wide = S.pit_quantiles(rng.normal(scale=2.0, size=20_000), q, rng)
    assert _ks_p(wide) < 1e-6 and S.pit_histogram(wide)[0] > 2 * S.pit_histogram(wide)[5]
    # a point mass: every quantile at 0 and y = 0 gives a uniform draw over all levels, not a spike
    tie = S.pit_quantiles(np.zeros(5000), np.zeros((5000, 23)), rng)
    assert _ks_p(tie) > 0.01


def test_conformal_quantiles_by_hand():
    # 9 validation residuals |pred - y| / scale = 1..9 at one horizon: the 50 % central interval's half-width is
    # the ceil(10 * 0.5) = 5th smallest, the 80 % one's the 8th; 95 % needs 19 residuals: capped at the largest
    y = np.zeros((9, 1, 1))
    pred = np.arange(1, 10, dtype=float).reshape(9, 1, 1)
    w, capped = conformal_quantiles(pred, y, np.ones_like(y), (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975))
    assert w[0].tolist() == [-9.0, -8.0, -5.0, 0.0, 5.0, 8.0, 9.0]
    assert capped == [1]
