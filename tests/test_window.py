"""Windows cut from a hand-built aligned study, checked entry by entry against what they must hold."""

from __future__ import annotations

import numpy as np
import pytest

from biocount.forecasters.lstm.windows import TIME, InputScaler, SeriesScaler, make_windows
from biocount.study.align import Aligned, AlignedInput

NAN = np.nan


@pytest.fixture
def study() -> Aligned:
    """Two series on an uneven grid (days 0, 1, 2, 4, 5, 7); target 'p' (one feature), input 'r'."""
    times = np.array([0.0, 1, 2, 4, 5, 7])
    y = np.array([[1, 2, NAN, 4, 5, 6], [10, 20, 30, 40, NAN, 60]], dtype=np.float32)[..., None]
    r = np.array([[NAN, 0.5, 0.5, 2.0, 2.0, 3.0], [1, 1, 1, 1, 1, 1]], dtype=np.float32)[..., None]
    r_obs = np.array([[0, 1, 0, 1, 0, 1], [1, 1, 1, 1, 1, 1]], dtype=bool)
    r_gap = np.array([[np.inf, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    p_obs = ~np.isnan(y[..., 0])
    filled = y.copy()
    filled[0, 2] = 2  # the target carried forward as an input
    filled[1, 4] = 40
    p_gap = np.where(p_obs, 0, 1).astype(np.float32)
    inputs = {"p": AlignedInput(np.array(["P1"]), filled, p_obs, p_gap, {}),
              "r": AlignedInput(np.array(["R1"]), r, r_obs, r_gap, {})}
    return Aligned(target="p", series=np.array(["a", "b"]), times=times, present=p_obs, y=y,
                   target_features=np.array(["P1"]), inputs=inputs, target_index=np.array([0]))


def identity(study: Aligned) -> SeriesScaler:
    return SeriesScaler(np.zeros((2, 1), np.float32), np.ones((2, 1), np.float32))


def test_history_targets_and_channels_by_hand(study):
    origins = np.array([[0, 3], [1, 1]])  # series a at day 4, series b at day 1
    w = make_windows(study, origins, lookback=3, horizon=2, scaler=identity(study))
    # series a, history = grid 1..3: p carried forward (2, 2, 4), observed (1, 0, 1), gap (0, 1, 0) as log1p
    np.testing.assert_allclose(w.inputs["p"][0, :, 0], [2, 2, 4])
    np.testing.assert_allclose(w.inputs["p"][0, :, 1], [1, 0, 1])
    np.testing.assert_allclose(w.inputs["p"][0, :, 2], np.log1p([0, 1, 0]))
    # series b at grid 1: history grid -1..1, the step before the grid is missing (value 0, unobserved)
    np.testing.assert_allclose(w.inputs["r"][1, :, 0], [0, 1, 1])
    np.testing.assert_allclose(w.inputs["r"][1, :, 1], [0, 1, 1])
    np.testing.assert_allclose(w.inputs[TIME][0, :, 0], np.log1p([1, 1, 2]))  # days since the previous grid point
    # targets: a at grid 4, 5 (days 5, 7): 5, 6; b at grid 2, 3: 30, 40; days ahead from the origin
    np.testing.assert_allclose(w.y[:, :, 0], [[5, 6], [30, 40]])
    assert w.mask.all()
    np.testing.assert_allclose(w.ahead, [[1, 3], [1, 3]])
    np.testing.assert_allclose(w.last[:, 0], [4, 20])


def test_targets_after_the_cut_are_masked_and_the_grid_extends_past_its_end(study):
    origins = np.array([[0, 3], [1, 4], [1, 5]])
    w = make_windows(study, origins, lookback=2, horizon=2, scaler=identity(study),
                     target_until=np.array([4, 5]))
    assert w.mask[0].tolist() == [[True], [False]]  # a: grid 5 lies after its cut (4)
    assert w.mask[1].tolist() == [[True], [False]]  # b: grid 5 observed, grid 6 does not exist
    assert not w.mask[2].any()
    np.testing.assert_allclose(w.ahead[2], [1, 2])  # past the end (day 7): the median step (1 day) extends the grid
    assert w.last[1, 0] == 40  # b's origin (grid 4) is unobserved: its last value is carried from grid 3


def test_scalers_apply_per_series_and_per_feature(study):
    scaler = SeriesScaler(np.array([[1.0], [10.0]], np.float32), np.array([[2.0], [5.0]], np.float32))
    inputs = InputScaler({"p": (np.array([0.0], np.float32), np.array([1.0], np.float32)),
                          "r": (np.array([1.0], np.float32), np.array([0.5], np.float32))})
    w = make_windows(study, np.array([[1, 3]]), lookback=2, horizon=1, scaler=scaler, inputs_scaler=inputs)
    np.testing.assert_allclose(w.inputs["p"][0, :, 0], [(30 - 10) / 5, (40 - 10) / 5])  # the target's own scaler
    np.testing.assert_allclose(w.inputs["r"][0, :, 0], [0, 0])  # (1 - 1) / 0.5
    assert not w.mask[0, 0, 0] and w.y[0, 0, 0] == 0  # b at grid 4 is unobserved: masked, value 0
    np.testing.assert_allclose(w.last[0, 0], (40 - 10) / 5)


def test_history_at_regular_times_by_hand(study):
    """every=1: a's history at days 2, 3, 4, 5 before its origin (grid 4, day 5). r was measured on days 1
    (0.5), 4 (2.0) and 7 (3.0): days 2 and 3 lie between the first two, days 4 and 5 after day 4, and day 7
    is after the origin, so they hold 2.0 (carried, not interpolated towards a future value)."""
    w = make_windows(study, np.array([[0, 4], [0, 1]]), lookback=4, horizon=1, scaler=identity(study), every=1.0)
    np.testing.assert_allclose(w.inputs["r"][0, :, 0], [1.0, 1.5, 2.0, 2.0])
    np.testing.assert_allclose(w.inputs["r"][0, :, 1], [0, 0, 1, 0])  # an observation within half a day
    np.testing.assert_allclose(w.inputs["r"][0, :, 2], np.log1p([1, 2, 0, 1]))  # days since the last one
    np.testing.assert_allclose(w.inputs["p"][0, :, 0], [2 + 2 / 3, 2 + 4 / 3, 4, 5])  # the target too
    np.testing.assert_allclose(w.inputs[TIME][0, :, 0], np.log1p([1, 1, 1, 1]))
    # the origin at day 1: days -2 and -1 lie before the grid, day 0 before r's first observation: empty
    np.testing.assert_allclose(w.inputs["r"][1, :, 0], [0, 0, 0, 0.5])
    np.testing.assert_allclose(w.inputs["r"][1, :, 1], [0, 0, 0, 1])


def test_history_at_regular_times_matches_interpolating_each_window_by_hand():
    """Random irregular grids and gaps: every window equals np.interp over the observations up to its
    origin (carried flat after the last one, empty before the first), computed one window at a time."""
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.choice([0.5, 1.0, 1.0, 2.0, 3.0], size=25))
    S, T = 4, times.size
    observed = rng.random((S, T)) < 0.6
    raw = rng.normal(size=(S, T, 2)).astype(np.float32)
    idx = np.where(observed, np.arange(T)[None], -1)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.where((idx >= 0)[..., None], np.take_along_axis(raw, np.maximum(idx, 0)[..., None], axis=1), np.nan)
    gap = np.where(idx >= 0, times[None] - times[np.maximum(idx, 0)], np.inf).astype(np.float32)
    y = np.where(observed, raw[..., 0], np.nan)[..., None]
    inputs = {"p": AlignedInput(np.array(["P1"]), filled[..., :1].copy(), observed, gap, {}),
              "r": AlignedInput(np.array(["R1", "R2"]), filled.astype(np.float32), observed, gap, {})}
    data = Aligned(target="p", series=np.array(list("abcd")), times=times, present=observed, y=y,
                   target_features=np.array(["P1"]), inputs=inputs, target_index=np.array([0]))
    origins = np.array([(s, t) for s in range(S) for t in range(T)])
    every, L = 1.5, 6
    w = make_windows(data, origins, lookback=L, horizon=1, scaler=SeriesScaler(np.zeros((S, 1), np.float32),
                     np.ones((S, 1), np.float32)), every=every)
    for i, (s, t) in enumerate(origins):
        q = times[t] - every * np.arange(L - 1, -1, -1)
        known = observed[s, : t + 1]
        for f in range(2):
            if not known.any():
                expect = np.zeros(L)
            else:
                kt, kv = times[: t + 1][known], raw[s, : t + 1, f][known]
                expect = np.where(q < kt[0], 0.0, np.interp(q, kt, kv))
            np.testing.assert_allclose(w.inputs["r"][i, :, f], expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("every", [None, 1.0])
def test_windows_only_read_the_past(study, every):
    """Truncation: changing every value after an origin leaves its history channels unchanged."""
    origins = np.array([[0, 2], [1, 2]])
    before = make_windows(study, origins, lookback=3, horizon=2, scaler=identity(study), window_norm=True,
                          every=every)
    later = study.y.copy()
    later[:, 3:] = 99.0
    for m in study.inputs.values():
        m.values[:, 3:] = 99.0
    after = make_windows(study, origins, lookback=3, horizon=2, scaler=identity(study), window_norm=True,
                         every=every)
    for name in before.inputs:
        np.testing.assert_array_equal(before.inputs[name], after.inputs[name])
    np.testing.assert_array_equal(before.center, after.center)
