"""The data contract: valid data passes, and each violation is named in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

from biocount import ContractError, ModalityData


def valid(**over):
    rng = np.random.default_rng(0)
    kw = {"series": ["a", "b"], "times": [0.0, 1.0, 3.0], "features": ["g1", "g2", "g3", "g4"],
              "values": rng.normal(size=(2, 3, 4)), "meta": {"modality": "rna"}}
    kw.update(over)
    return kw


def test_valid_contract_is_numpy_backed():
    d = ModalityData(**valid(static=np.ones((2, 1)), static_names=["cn"]))
    assert d.values.dtype == np.float32 and d.shape == (2, 3, 4)
    assert d.series.tolist() == ["a", "b"] and d.times.dtype == np.float64
    sub = d.subset(series=["b"], times=[3.0], features=["g2", "g1"])
    assert sub.shape == (1, 1, 2)
    assert sub.values[0, 0, 0] == d.values[1, 2, 1]
    assert "2 series x 3 times x 4 features" in d.summary()


def test_missing_values_are_nan_and_allowed():
    values = valid()["values"]
    values[0, 1, :] = np.nan
    d = ModalityData(**valid(values=values))
    assert d.observed.sum() == values.size - 4


@pytest.mark.parametrize(
    ("over", "sentence"),
    [
        ({"values": np.zeros((2, 3))}, "values must be 3-D"),
        ({"values": np.zeros((2, 3, 5))}, "values have shape (2, 3, 5) but series, times and features give (2, 3, 4)"),
        ({"times": [0.0, 2.0, 1.0]}, "times are not sorted"),
        ({"times": [0.0, 1.0, 1.0]}, "times contain duplicates"),
        ({"times": [0.0, np.nan, 1.0]}, "times contain NaN"),
        ({"series": ["a", "a"]}, "series ids are duplicated: a"),
        ({"features": ["g1", "g1", "g3", "g4"]}, "feature names are duplicated: g1"),
        ({"values": np.full((2, 3, 4), np.inf)}, "values contain infinite numbers"),
        ({"static": np.ones((3, 1)), "static_names": ["cn"]}, "static must be (series x covariates)"),
        ({"static": np.ones((2, 2)), "static_names": ["cn"]}, "static_names must name every"),
        ({"static": np.full((2, 1), np.nan), "static_names": ["cn"]}, "static covariates contain NaN"),
        ({"counts": -np.ones((2, 3, 4))}, "counts contain negative numbers"),
        ({"size_factors": np.zeros((2, 3))}, "size_factors must be positive"),
        ({"size_factors": np.ones((3, 2))}, "size_factors must be (series x times)"),
        ({"meta": {"modality": "rna", "is_counts": True}}, "no raw counts are attached"),
        ({"meta": {"modality": "rna", "log1p_rate": True}}, "log1p_rate is true but counts or size_factors are missing"),
        ({"meta": {"modality": "rna", "log1p_rate": True}, "counts": np.ones((2, 3, 4)),
          "size_factors": np.ones((2, 3))}, "values differ from log1p(counts / size_factors)"),
        ({"values": np.array([["x"] * 4] * 6).reshape(2, 3, 4)}, "values must be numeric"),
    ],
)
def test_each_violation_is_one_clear_sentence(over, sentence):
    with pytest.raises(ContractError) as info:
        ModalityData(**valid(**over))
    assert sentence in str(info.value)
    assert "modality" in str(info.value)


def test_log1p_rate_values_pass_when_they_are_what_they_claim():
    counts = np.arange(24, dtype=float).reshape(2, 3, 4)
    size = np.full((2, 3), 2.0)
    d = ModalityData(**valid(values=np.log1p(counts / size[..., None]), counts=counts, size_factors=size,
                             meta={"modality": "rna", "is_counts": True, "log1p_rate": True}))
    assert d.meta.log1p_rate


def test_never_observed_feature_is_named():
    values = valid()["values"]
    values[:, :, 2] = np.nan
    with pytest.raises(ContractError, match=r"1 feature\(s\) are never observed: g3"):
        ModalityData(**valid(values=values))


def test_all_problems_reported_together():
    with pytest.raises(ContractError) as info:
        ModalityData(**valid(series=["a", "a"], features=["g", "g", "h", "i"]))
    assert len(info.value.problems) == 2
