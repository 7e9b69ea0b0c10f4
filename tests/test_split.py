"""Evaluation protocols: roles, cuts and origins by hand, and nothing left unscored without a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biocount import BiocountInputError
from biocount.study.split import make_split


def pts(lengths: dict[str, int], step: float = 1.0, start: dict[str, float] | None = None) -> pd.DataFrame:
    rows = [(s, (start or {}).get(s, 0.0) + step * i) for s, n in lengths.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["series", "time"])


def test_time_split_cuts_each_series_at_its_own_points():
    # two series of 20 points on unrelated clocks: each gets its own last 5 test and 4 validation points
    split = make_split(pts({"a": 20, "b": 20}, start={"b": 100.0}), horizon=2)
    assert split.train_until == {"a": 10.0, "b": 110.0} and split.val_until == {"a": 14.0, "b": 114.0}
    assert [t for s, t in split.test_origins if s == "a"] == [14.0, 15.0, 16.0, 17.0, 18.0]
    assert [t for s, t in split.val_origins if s == "b"] == [110.0, 111.0, 112.0, 113.0]
    assert split.unscored == {}


def test_a_series_too_short_is_reported_not_dropped_silently():
    split = make_split(pts({"a": 20, "b": 2}), horizon=2)
    assert "b" not in split.role and "only 2 measured point(s)" in split.unscored["b"]
    assert split.summary()["unscored"] == {"b": split.unscored["b"]}


def test_series_split_roles_warmup_and_origins_up_to_each_series_end():
    lengths = {f"s{i}": 12 + i for i in range(6)}
    split = make_split(pts(lengths), horizon=2, kind="series", train_series=["s0", "s1", "s2"],
                       val_series=["s3"], test_series=["s4", "s5"], warmup=4)
    assert split.role == {"s4": "test", "s5": "test", "s3": "val", "s0": "train", "s1": "train", "s2": "train"}
    # a test series: 4 points of context, then an origin at every point with something ahead
    assert [t for s, t in split.test_origins if s == "s5"] == [float(t) for t in range(3, 16)]
    assert split.train_until["s5"] == 3.0 and split.val_until["s5"] == 3.0
    assert [t for s, t in split.val_origins if s == "s3"] == [float(t) for t in range(3, 14)]
    assert split.train_until["s0"] == 11.0  # training series give all their points
    sel = split.train_selection()
    assert sel.series == frozenset({"s0", "s1", "s2"}) and sel.until is None


def test_default_series_split_validates_on_held_out_series():
    split = make_split(pts({f"s{i}": 20 for i in range(10)}), horizon=2, kind="series", seed=1)
    roles = pd.Series(split.role).value_counts().to_dict()
    assert roles == {"train": 6, "test": 2, "val": 2} or roles == {"train": 6, "test": 3, "val": 1} or \
        roles["val"] >= 1
    assert not split.notes
    again = make_split(pts({f"s{i}": 20 for i in range(10)}), horizon=2, kind="series", seed=1)
    assert again.role == split.role  # seeded


def test_series_split_with_few_series_validates_in_time_and_says_so():
    split = make_split(pts({"a": 20, "b": 20, "c": 20}), horizon=2, kind="series", test_series=["c"])
    assert "val" not in split.role.values() and "no validation series" in split.notes[0]
    assert split.val_until["a"] == 19.0 and split.train_until["a"] == 15.0


def test_origins_are_scored_exactly():
    origins = pd.DataFrame({"series": ["s4", "s4", "s5"], "time": [5.0, 9.0, 7.0]})
    split = make_split(pts({f"s{i}": 14 for i in range(6)}), horizon=2, kind="series", origins=origins,
                       val_series=["s3"])
    assert sorted(split.test_origins) == [("s4", 5.0), ("s4", 9.0), ("s5", 7.0)]
    assert split.train_until["s4"] == 5.0  # context up to its first origin
    assert {s for s, r in split.role.items() if r == "test"} == {"s4", "s5"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "series", "test_series": ["zz"]}, "--test-series names unknown series zz"),
    ({"kind": "series", "test_series": 0.0}, "strictly between 0 and 1"),
    ({"kind": "series", "test_series": -0.5}, "strictly between 0 and 1"),
    ({"kind": "series", "train_series": ["s0"], "test_series": ["s0"]}, "more than one of"),
    ({"warmup": 3}, "--warmup applies to --split series"),
    ({"test_series": ["s0"]}, "--test-series applies to --split series"),
    ({"test_size": 9, "val_size": 9}, "no series is long enough"),
    ({"origins": pd.DataFrame({"series": ["s0"], "time": [2.5]})}, "no measurement at time 2.5"),
    ({"origins": pd.DataFrame({"series": ["s0"], "time": [19.0]})}, "no measurement after time 19"),
    ({"origins": pd.DataFrame({"series": ["nope"], "time": [1.0]})}, "series 'nope' is not in the target"),
    ({"kind": "series", "test_series": ["s1"], "origins": pd.DataFrame({"series": ["s0"], "time": [5.0]})},
     "not test series"),
])
def test_split_errors_say_what_to_do(kwargs, message):
    with pytest.raises(BiocountInputError, match=message):
        make_split(pts({f"s{i}": 20 for i in range(4)}), horizon=2, **kwargs)


def test_default_sizes_shrink_on_short_series_and_the_error_names_a_horizon_that_fits():
    split = make_split(pts({"a": 12}), horizon=3)  # 25 % / 20 % would be 3 + 2 -> at least 4 + 4
    assert split.train_until["a"] == 3.0 and split.val_until["a"] == 7.0
    with pytest.raises(BiocountInputError, match=r"use --horizon 2 or less"):
        make_split(pts({"a": 10}), horizon=3)


def test_on_grid_keeps_times_and_drops_origins_without_a_target():
    from biocount import ModalityData
    from biocount.study.align import align

    y = np.arange(40, dtype=float).reshape(2, 20, 1)
    y[1, 17] = np.nan  # an origin whose target row the encoder dropped
    d = ModalityData(series=["a", "b"], times=np.arange(20.0), features=["f"], values=y, meta={"modality": "x"})
    data = align({"x": d}, target="x")
    split = make_split(pts({"a": 20, "b": 20}), horizon=2)
    grid = split.on_grid(data)
    assert grid.train_end.tolist() == [10, 10] and grid.val_end.tolist() == [14, 14]
    assert (1, 17) not in set(map(tuple, grid.test.tolist())) and "lost their target" in grid.notes[-1]
    assert grid.notes[-1].endswith("(the target's encoder dropped those rows): b at 17")  # which, not only how many


def test_a_time_split_counts_the_series_it_scores():
    """Every series of a time split is trained, validated and tested on its own points: the summary counts
    them in every role (it said 0 test series while scoring them)."""
    summary = make_split(pts({"a": 20, "b": 20, "c": 3}), horizon=2).summary()
    assert summary["series"] == {"train": 2, "val": 2, "test": 2}
    assert summary["test_series"] == ["a", "b"] and list(summary["unscored"]) == ["c"]


def test_series_in_no_role_are_said():
    split = make_split(pts({"S0": 20, "S1": 20, "S2": 20, "S3": 20}), horizon=2, kind="series",
                       train_series=["S1"], test_series=["S0"])
    assert any(n.startswith("series S2, S3 (2) in no role: not in --train-series, --val-series or --test-series")
               for n in split.notes)


def test_origins_keyed_by_any_series_column(tmp_path):
    from biocount.io.readers import SERIES_KEYS
    from biocount.study.split import read_origins

    for key in SERIES_KEYS:
        path = tmp_path / f"{key}.csv"
        path.write_text(f"{key},origin\nD01,4\n")
        assert read_origins(path).to_dict("list") == {"series": ["D01"], "time": [4.0]}
