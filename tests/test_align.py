"""Alignment: hand-worked examples, no look-ahead, missing series kept and reported."""

from __future__ import annotations

import numpy as np
import pytest

from biocount import BiocountInputError, ModalityData
from biocount.study.align import align

NAN = np.nan


def md(name, series, times, values, **kw):
    return ModalityData(series=series, times=times, features=[f"{name}{i}" for i in range(np.shape(values)[2])],
                        values=values, meta={"modality": name}, **kw)


@pytest.fixture
def study():
    target = md("p", ["a", "b"], [0, 2, 4], [[[1], [2], [3]], [[4], [NAN], [6]]])
    # rna measured at 1 and 3; feature 1 of series a missing at 3
    rna = md("r", ["a", "b"], [1, 3], [[[10, 11], [12, NAN]], [[20, 21], [22, 23]]])
    return {"p": target, "r": rna}


def test_carry_forward_masks_and_gaps_by_hand(study):
    a = align(study, target="p")
    np.testing.assert_array_equal(a.times, [0, 2, 4])
    r = a.inputs["r"]
    # grid 0: nothing yet; grid 2: the value from time 1; grid 4: from time 3 (feature 1 of a: still time 1's)
    np.testing.assert_array_equal(r.values[0], [[NAN, NAN], [10, 11], [12, 11]])
    np.testing.assert_array_equal(r.observed[0], [False, False, False])  # never measured exactly on the grid
    np.testing.assert_array_equal(r.gap[0], [np.inf, 1, 1])
    np.testing.assert_array_equal(a.present, [[True, True, True], [True, False, True]])
    np.testing.assert_array_equal(a.y[1, :, 0], [4, NAN, 6])


def test_union_grid_and_exact_observations(study):
    a = align(study, target="p", grid="union")
    np.testing.assert_array_equal(a.times, [0, 1, 2, 3, 4])
    r = a.inputs["r"]
    np.testing.assert_array_equal(r.observed[1], [False, True, False, True, False])
    np.testing.assert_array_equal(r.gap[1], [np.inf, 0, 1, 0, 1])
    np.testing.assert_array_equal(a.present[0], [True, False, True, False, True])


def test_nothing_looks_forward(study):
    """Changing an input's values after time t changes nothing aligned at or before t."""
    before = align(study, target="p", grid="union")
    later = dict(study)
    values = study["r"].values.copy()
    values[:, 1] += 100  # the rna measurement at time 3
    later["r"] = study["r"].model_copy(update={"values": values})
    after = align(later, target="p", grid="union")
    upto = before.times < 3
    np.testing.assert_array_equal(before.inputs["r"].values[:, upto], after.inputs["r"].values[:, upto])
    assert not np.array_equal(before.inputs["r"].values[:, ~upto], after.inputs["r"].values[:, ~upto])


def test_series_missing_from_an_input_is_kept_masked_and_reported(study):
    study["r"] = study["r"].subset(series=["a"])
    a = align(study, target="p")
    assert a.series.tolist() == ["a", "b"]
    assert np.isnan(a.inputs["r"].values[1]).all() and not a.inputs["r"].observed[1].any()
    assert any("lacks 1 series of the target (b)" in line for line in a.report)


def test_static_covariates_are_gathered_by_series(study):
    study["g"] = ModalityData(series=["b", "a"], times=[], features=[], values=np.zeros((2, 0, 0)),
                              static=[[1.0], [2.0]], static_names=["cn"], meta={"modality": "g"})
    a = align(study, target="p")
    np.testing.assert_array_equal(a.static[:, 0], [2.0, 1.0])
    assert a.static_names.tolist() == ["g:cn"] and "g" not in a.inputs


def test_errors(study):
    study["x"] = md("x", ["zz"], [0], [[[1.0]]])
    with pytest.raises(BiocountInputError, match="modality 'x' has .* series, the target 'p' has .* share none.*--link x="):
        align(study, target="p")
    with pytest.raises(BiocountInputError, match="target modality 'q' is not among"):
        align(study, target="q")


def test_demo_alignment(demo_modalities):
    from biocount.host.plugins import load_host
    from biocount.study.encode import encode

    encoded, _ = encode(demo_modalities, ["rna", "protein", "genomic"], load_host(),
                        options={"rna": {"n_top_genes": 10}})
    a = align(encoded, target="protein")
    assert a.y.shape == (12, 30, 10) and a.static.shape == (12, 14)
    assert set(a.inputs) == {"rna", "rna_celltypes", "protein"}
    assert a.inputs["rna"].observed.all() and (a.inputs["rna"].gap == 0).all()


def test_last_target_is_the_last_observation_at_or_before_each_origin(study):
    """Persistence's starting point, by hand: series b misses time 2, so its origin there carries time 0's 4."""
    a = align(study, target="p")
    origins = np.array([[0, 0], [0, 2], [1, 1], [1, 2]])  # (series, grid index)
    np.testing.assert_array_equal(a.last_target(origins)[:, 0], [1, 3, 4, 6])
    u = align(study, target="p", grid="union")  # times 0..4: time 1 and 3 carry the value before them
    np.testing.assert_array_equal(u.last_target(np.array([[0, 1], [0, 3], [1, 3]]))[:, 0], [1, 2, 4])
