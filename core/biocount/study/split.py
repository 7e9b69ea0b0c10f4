"""Evaluation protocols: which series and points train, validate and test, decided before any fitting.

A split is decided on the target's measured points (series, time), so it does not depend on how
encoders or the alignment grid treat other modalities, and it is stated in times, not grid indices.
Every series either gets a role or is listed in ``unscored`` with the reason: none is dropped silently.

- ``time``: each series is cut at its *own* measured points: its last ``test_size`` points are
  scored, the ``val_size`` before them validate, the rest train. With ``origins`` (a lab's list of
  (series, origin time)), a listed series is cut before its first listed origin instead; unlisted
  series train and validate only. Series measured at the same times are cut at the same times; a
  global model may learn from one series at times after another series' origin, as in the
  per-series holdout of the M competitions.
- ``series``: test series are forecast after a ``warmup`` of their own points (their context:
  scalers, local fits), at every later measured point that has something ahead to score (or exactly at
  the listed ``origins``). Validation series are treated the same way, so validation measures what
  the test measures: transfer to unseen series. Training series give all their points to fitting.
  With fewer than 3 non-test series there is no series to spare for validation: the last
  ``val_size`` points of each training series validate instead (and the run says so).

:meth:`Split.on_grid` turns the times into grid indices on the aligned study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from biocount.study.align import Aligned

TEST_FRACTION = 0.25  # default share of each series' points scored (time split), or of series held out
VAL_FRACTION = 0.2  # default share of each series' points (time split) or of the other series validating


@dataclass(frozen=True)
class TrainSelection:
    """Which rows encoders may learn from: times up to ``until`` and/or the listed series.

    ``until`` is one time for every series, or a time per series (a time split cuts each series at
    its own points; a series it does not name is cut at the earliest of them). Static rows (no time) belong to training
    whenever their series does.
    """

    until: float | dict[str, float] | None = None
    series: frozenset[str] | None = None

    def mask(self, obs: pd.DataFrame) -> np.ndarray:
        keep = np.ones(len(obs), dtype=bool)
        ids = obs["series"].astype(str)
        if self.series is not None:
            keep &= ids.isin(self.series).to_numpy()
        if isinstance(self.until, dict):
            # a series the split does not know (an input's own unit, e.g. a pooled series) learns up to
            # the earliest cut of all: nothing it contributes lies after any series' training part
            earliest = min(self.until.values(), default=-np.inf)
            if "time" in obs:
                cut = ids.map(self.until).fillna(earliest).to_numpy(dtype=float)
                keep &= obs["time"].to_numpy(dtype=float) <= cut
        elif self.until is not None and "time" in obs:
            keep &= obs["time"].to_numpy(dtype=float) <= self.until
        return keep


@dataclass(frozen=True)
class GridSplit:
    """A split on the aligned grid: what forecasters and the backtest work with."""

    kind: str
    train_end: np.ndarray  # (S,) last grid index fitting may see; -1: none
    val_end: np.ndarray  # (S,) last grid index validation targets may reach
    train_series: np.ndarray  # (S,) bool: series a global model may learn weights from
    val: np.ndarray  # (N, 2) validation origins (series index, grid index)
    test: np.ndarray  # (M, 2) test origins
    notes: tuple[str, ...] = ()  # origins lost on the way to the grid, and where


@dataclass(frozen=True)
class Split:
    kind: Literal["time", "series"]
    role: dict[str, str]  # series -> "train" | "val" | "test" (time split: "train" for every used series)
    train_until: dict[str, float]  # series -> last time fitting may see
    val_until: dict[str, float]  # series -> last time validation targets may reach
    val_origins: list[tuple[str, float]]
    test_origins: list[tuple[str, float]]
    unscored: dict[str, str] = field(default_factory=dict)  # series -> why it has no test origin
    notes: list[str] = field(default_factory=list)

    def train_selection(self) -> TrainSelection:
        """The rows encoders may learn from: training series (series split) or points up to each cut."""

        if self.kind == "series":
            return TrainSelection(series=frozenset(s for s, r in self.role.items() if r == "train"))
        return TrainSelection(until=dict(self.train_until))

    def on_grid(self, data: Aligned) -> GridSplit:
        """Grid indices on ``data``; origins the encoders left without a target measurement are dropped (the
        grid split's notes say which)."""
        S, T = data.series.size, data.times.size
        index = {s: i for i, s in enumerate(data.series.tolist())}

        def last_index(until: dict[str, float]) -> np.ndarray:
            out = np.full(S, -1)
            for s, t in until.items():
                if s in index:
                    out[index[s]] = int(np.searchsorted(data.times, t, side="right")) - 1
            return out

        notes = []

        def origins(pairs: list[tuple[str, float]], what: str) -> np.ndarray:
            rows, lost = [], {}
            for s, t in pairs:
                i = int(np.searchsorted(data.times, t))
                if s in index and i < T and data.times[i] == t and data.present[index[s], i]:
                    rows.append((index[s], i))
                else:
                    lost.setdefault(s, []).append(t)
            if lost:
                where = "; ".join(f"{s} at {', '.join(f'{t:g}' for t in ts[:5])}{' ...' if len(ts) > 5 else ''}"
                                  for s, ts in list(lost.items())[:10])
                notes.append(f"{sum(map(len, lost.values()))} {what} origin(s) lost their target measurement in "
                                  f"encoding (the target's encoder dropped those rows): {where}"
                                  + (f"; and {len(lost) - 10} more series" if len(lost) > 10 else ""))
            return np.array(rows, dtype=int).reshape(-1, 2)

        train_series = np.array([self.role.get(s) == "train" for s in data.series.tolist()])
        val, test = origins(self.val_origins, "validation"), origins(self.test_origins, "test")
        return GridSplit(self.kind, last_index(self.train_until), last_index(self.val_until), train_series, val, test,
                         tuple(notes))

    def summary(self) -> dict[str, Any]:
        """Series per role. A time split gives every series all three parts: its validation and test series
        are those with validation and test origins."""
        roles = {r: sorted(s for s, x in self.role.items() if x == r) for r in ("train", "val", "test")}
        if self.kind == "time":
            roles["val"] = sorted({s for s, _ in self.val_origins})
            roles["test"] = sorted({s for s, _ in self.test_origins})
        return {"kind": self.kind, "series": {r: len(v) for r, v in roles.items()},
                "validation_series": roles["val"], "test_series": roles["test"],
                "unscored": dict(self.unscored)}


def points(data: Aligned) -> pd.DataFrame:
    """The target's measured (series, time) points of an aligned study (to split one directly)."""
    s, t = np.nonzero(data.present)
    return pd.DataFrame({"series": data.series[s].astype(str), "time": data.times[t].astype(float)})


def _sizes(n: int, horizon: int, test: int | None, val: int | None) -> tuple[int, int] | None:
    """Test and validation points of a series of ``n`` points; defaults shrink to horizon + 1; None: too short."""
    floor = horizon + 1
    size_t = test if test is not None else max(floor, round(TEST_FRACTION * n))
    size_v = val if val is not None else max(floor, round(VAL_FRACTION * n))
    if size_t + size_v >= n - 2:  # defaults too large for a short series: the smallest that work
        size_t, size_v = (test if test is not None else floor), (val if val is not None else floor)
    return None if size_t + size_v >= n - 2 else (size_t, size_v)


def _too_short(n_max: int, horizon: int) -> str:
    fits = max(0, -(-(n_max - 4) // 2) - 1)  # largest h with 2 (h + 1) < n - 2
    return f"use --horizon {fits} or less" if fits >= 1 else "the series are too short to backtest"


def read_origins(path: str | Path, *, series_key: str | None = None, time_key: str | None = None) -> pd.DataFrame:
    """A CSV of (series, origin time): columns ``series`` (or --series-key) and ``origin`` (or ``time``)."""
    import csv

    try:
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            raise BiocountInputError(f"--origins {path}: the file is empty; give one row per origin to score "
                                     "(columns series, origin) or drop --origins")
        frame = pd.read_csv(path, dtype=str, sep=None, engine="python")  # IDs stay strings: '007' is not 7
    except FileNotFoundError:
        raise BiocountInputError(f"--origins {path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, csv.Error) as exc:
        raise BiocountInputError(f"--origins {path}: cannot read it as a CSV table ({type(exc).__name__})") from None
    from biocount.io.readers import SERIES_KEYS

    if frame.empty:
        raise BiocountInputError(f"--origins {path}: lists no origin; give one row per origin to score "
                                 "(columns series, origin) or drop --origins")
    lower = {c.lower(): c for c in frame.columns}
    s_col = next((lower[c] for c in [series_key, *SERIES_KEYS] if c and c in lower), None)
    t_col = next((lower[c] for c in [time_key, "origin", "time"] if c and c in lower), None)
    if s_col is None or t_col is None:
        raise BiocountInputError(f"--origins {path}: needs a series column ({', '.join(SERIES_KEYS)} or "
                                 f"--series-key) and an 'origin' column (found {', '.join(map(str, frame.columns))}); "
                                 "one row per origin to score")
    times = pd.to_numeric(frame[t_col], errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0]) + 2
        raise BiocountInputError(f"--origins {path}: line {row}: origin '{frame[t_col].iloc[row - 2]}' is not a number")
    return pd.DataFrame({"series": frame[s_col].astype(str).str.strip(), "time": times.astype(float)})


def _pick(spec: list[str] | float | None, pool: list[str], what: str, rng: np.random.Generator,
          known: set[str]) -> list[str] | None:
    """Series named in ``spec`` (a list), a seeded fraction of ``pool`` (a float), or None."""
    if spec is None:
        return None
    if isinstance(spec, list):
        unknown = sorted(set(spec) - known)
        if unknown:
            some = ", ".join(sorted(known)[:8])
            raise BiocountInputError(f"--{what} names unknown series {', '.join(unknown[:5])}; series are {some}"
                                     f"{' ...' if len(known) > 8 else ''}")
        return list(dict.fromkeys(spec))
    if not 0 < spec < 1:
        raise BiocountInputError(f"--{what} {spec}: a fraction must lie strictly between 0 and 1 (e.g. 0.25), "
                                 "or give a comma list of series")
    n = max(1, round(spec * len(pool)))
    if n >= len(pool):
        raise BiocountInputError(f"--{what} {spec} takes all {len(pool)} remaining series; use a smaller fraction")
    return sorted(rng.choice(sorted(pool), size=n, replace=False).tolist())


def make_split(points: pd.DataFrame, *, horizon: int, kind: Literal["time", "series"] = "time",
               test_size: int | None = None, val_size: int | None = None,
               train_series: list[str] | float | None = None, val_series: list[str] | float | None = None,
               test_series: list[str] | float | None = None, warmup: int | None = None,
               origins: pd.DataFrame | None = None, seed: int = 0) -> Split:
    """Decide the split from the target's measured ``points`` (columns ``series``, ``time``)."""
    pts = points[["series", "time"]].astype({"series": str, "time": float}).drop_duplicates()
    by_series = {s: np.sort(g["time"].to_numpy()) for s, g in pts.groupby("series", sort=True)}
    known = set(by_series)
    if origins is not None:
        _check_origins(origins, by_series)
    if kind == "time":
        for flag, value in (("train-series", train_series), ("val-series", val_series), ("test-series", test_series),
                            ("warmup", warmup)):
            if value is not None:
                raise BiocountInputError(f"--{flag} applies to --split series; a time split cuts every series "
                                         "at its own last points (use --test-size / --val-size)")
        return _time_split(by_series, horizon, test_size, val_size, origins)
    rng = np.random.default_rng(seed)
    listed = sorted(set(origins["series"])) if origins is not None else None
    test = _pick(test_series, sorted(known), "test-series", rng, known)
    if test is None:
        test = listed or _pick(TEST_FRACTION, sorted(known), "test-series", rng, known)
    if listed is not None and set(listed) - set(test):
        raise BiocountInputError(f"--origins lists series {', '.join(sorted(set(listed) - set(test))[:5])} that are "
                                 "not test series; list only test series, or name them in --test-series")
    rest = [s for s in sorted(known) if s not in test]
    train = _pick(train_series, rest, "train-series", rng, known)
    val = _pick(val_series, train if train is not None else rest, "val-series", rng, known)
    if val is None and train is None and len(rest) >= 3:
        val = _pick(VAL_FRACTION, rest, "val-series", rng, known)
    val = val or []
    train = train if train is not None else [s for s in rest if s not in val]
    clash = (set(train) & set(val)) | (set(train) & set(test)) | (set(val) & set(test))
    if clash:
        raise BiocountInputError(f"series {', '.join(sorted(clash)[:5])} named for more than one of --train-series, "
                                 "--val-series and --test-series; each series has one role")
    if not train:
        raise BiocountInputError("a series split needs at least one training series; name fewer test or "
                                 "validation series")
    split = _series_split(by_series, horizon, train, val, test, warmup, test_size, val_size, origins)
    unused = sorted(known - set(train) - set(val) - set(test))
    if unused:
        split.notes.append(f"series {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''} ({len(unused)}) in no "
                           "role: not in --train-series, --val-series or --test-series, so not used at all; name "
                           "them in one of those to use them")
    return split


def _check_origins(origins: pd.DataFrame, by_series: dict[str, np.ndarray]) -> None:
    for i, (s, t) in enumerate(zip(origins["series"], origins["time"], strict=True)):
        line = f"--origins: line {i + 2}"
        if s not in by_series:
            raise BiocountInputError(f"{line}: series '{s}' is not in the target; series are "
                                     f"{', '.join(sorted(by_series)[:8])}")
        times = by_series[s]
        if not np.any(times == t):
            raise BiocountInputError(f"{line}: series '{s}' has no measurement at time {t:g}; an origin must be a "
                                     "measured time (the forecast starts from what was seen then)")
        if not np.any(times > t):
            raise BiocountInputError(f"{line}: series '{s}' has no measurement after time {t:g}, so nothing there "
                                     "can be scored; remove the row")
    if origins.duplicated().any():
        raise BiocountInputError("--origins lists an origin twice; list each (series, origin) once")


def _time_split(by_series, horizon, test_size, val_size, origins) -> Split:
    role, train_until, val_until, val_o, test_o, unscored = {}, {}, {}, [], [], {}
    listed = {} if origins is None else {s: np.sort(g["time"].to_numpy()) for s, g in origins.groupby("series")}
    for s, times in by_series.items():
        n = times.size
        sizes = _sizes(n, horizon, test_size, val_size)
        if s in listed:
            first = int(np.searchsorted(times, listed[s][0]))
            n_val = val_size if val_size is not None else max(horizon + 1, round(VAL_FRACTION * first))
            if first - n_val < 1:
                raise BiocountInputError(f"--origins: series '{s}' has {first} point(s) before its first origin "
                                         f"({listed[s][0]:g}), too few for {n_val} validation points and training; "
                                         "list later origins or set a smaller --val-size")
            cut, test_times = first, listed[s]
        elif sizes is None:
            unscored[s] = f"only {n} measured point(s): too short to split with horizon {horizon}"
            continue
        elif origins is not None:  # a lab's origins elsewhere: this series trains and validates only
            cut, test_times = n - 1, np.array([])
            n_val = sizes[1]
            unscored[s] = "not listed in --origins (used for training and validation)"
        else:
            n_test, n_val = sizes
            cut, test_times = n - n_test - 1, times[n - n_test - 1: n - 1]
        role[s] = "train"
        train_until[s], val_until[s] = float(times[cut - n_val]), float(times[cut])
        val_o += [(s, float(t)) for t in times[cut - n_val: cut]]
        test_o += [(s, float(t)) for t in test_times]
    if not role:
        raise BiocountInputError(f"no series is long enough to split ({max(map(len, by_series.values()))} points at "
                                 f"most); {_too_short(max(map(len, by_series.values())), horizon)}, or set smaller "
                                 "--test-size/--val-size")
    return Split("time", role, train_until, val_until, val_o, test_o, unscored)


def _series_split(by_series, horizon, train, val, test, warmup, test_size, val_size, origins) -> Split:
    role, train_until, val_until, val_o, test_o, unscored, notes = {}, {}, {}, [], [], {}, []
    listed = {} if origins is None else {s: np.sort(g["time"].to_numpy()) for s, g in origins.groupby("series")}

    def context(s: str) -> int | None:
        """Index of the last context point (= first origin) of a validation or test series."""
        n = by_series[s].size
        if s in listed:
            return int(np.searchsorted(by_series[s], listed[s][0]))
        if warmup is not None:
            return warmup - 1 if warmup >= 1 and n > warmup else None
        sizes = _sizes(n, horizon, test_size, 0)  # default: the last test_size points are scored
        return None if sizes is None else n - sizes[0] - 1

    for s in test + val:
        times, first = by_series[s], context(s)
        if first is None:
            kind = "test" if s in test else "validation"
            if warmup is not None:
                why = f"needs at least warmup {warmup} + 1"
            elif test_size is not None:  # the scored part alone leaves no context: the size is the cause
                why = f"--test-size {test_size} scores more points than it leaves context for (a {kind} series " \
                      f"needs at least {test_size + 3}); lower --test-size"
            else:
                why = f"a {kind} series needs at least {2 * horizon + 5}"
            unscored[s] = f"only {times.size} measured point(s): {why}"
            continue
        role[s] = "test" if s in test else "val"
        train_until[s] = float(times[first])
        if s in test:
            val_until[s] = float(times[first])
            test_o += [(s, float(t)) for t in (listed[s] if s in listed else times[first:-1])]
        else:
            val_until[s] = float(times[-1])
            val_o += [(s, float(t)) for t in times[first:-1]]
    for s in train:
        times = by_series[s]
        role[s] = "train"
        if val:
            train_until[s] = val_until[s] = float(times[-1])
            continue
        sizes = _sizes(times.size, horizon, 0, val_size)
        if sizes is None:
            train_until[s] = val_until[s] = float(times[-1])
            continue
        cut = times.size - 1 - sizes[1]
        train_until[s], val_until[s] = float(times[cut]), float(times[-1])
        val_o += [(s, float(t)) for t in times[cut:-1]]
    if not val:
        notes.append("no validation series (fewer than 3 non-test series, or none named): the training series' "
                     "last points validate, which measures extrapolation in time, not transfer to new series")
    if not any(r == "test" for r in role.values()):
        raise BiocountInputError("no test series has enough points to be scored: " + "; ".join(
            f"{s}: {why}" for s, why in list(unscored.items())[:3]))
    return Split("series", role, train_until, val_until, val_o, test_o, unscored, notes)
