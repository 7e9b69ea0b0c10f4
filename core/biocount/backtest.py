"""Rolling-origin backtests: every forecaster is scored on identical origins and target points.

Splits (grid indices per series, T grid points):

- ``time``: the last ``test`` points are the test period, the ``val`` points before them the
  validation period, the rest training. Validation origins run from the end of training to just
  before the test period, their targets capped at its start; test origins run from the end of
  validation to T - 2, their targets within the test period.
- ``series``: held-out series (named, or a seeded fraction) are forecast over the test period,
  their own earlier points serving only as context (scaling, local ARIMA fits). Global models learn
  weights from the other series only, which validate on their last ``val`` points.

Fitting sees nothing after ``train_end``; forecasts come for validation and test origins at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from .align import Aligned
from .ensemble import combine
from .ensemble import fit as fit_ensemble
from .errors import BiocountInputError, PluginError
from .forecast import Forecast, ForecastTask, present_origins
from .intervals import conformal, interval_scores, pct, quantile_scores
from .metrics import METRICS, bh, dm_test, loss_by_unit, naive_scale, point_metrics

BASELINE = "arima"
FLOOR = "naive"


@dataclass(frozen=True)
class Split:
    kind: str
    train_end: np.ndarray  # (S,)
    val_end: np.ndarray  # (S,)
    test_start: int  # first grid index of the test period
    train_series: np.ndarray  # (S,) bool
    train_until: float | None  # encoders: learn from times <= this (time split)
    train_series_ids: frozenset[str] | None  # encoders: learn from these series (series split)

    def regrid(self, times_before: np.ndarray, series_before: np.ndarray, times: np.ndarray,
               series: np.ndarray) -> Split:
        """The same split on another grid (encoders may drop rows, e.g. QC injections), by time.

        Cutoffs keep their times: a training part ends at the last grid time not after the old one, so
        nothing fitted later sees more than the encoders did.
        """
        if np.array_equal(times_before, times) and np.array_equal(series_before, series):
            return self
        old = {s: i for i, s in enumerate(series_before.tolist())}
        idx = np.array([old[s] for s in series.tolist()])
        train_end = np.searchsorted(times, times_before[self.train_end[idx]], side="right") - 1
        val_end = np.searchsorted(times, times_before[self.val_end[idx]], side="right") - 1
        test_start = int(np.searchsorted(times, times_before[self.test_start], side="left"))
        return Split(self.kind, train_end, val_end, test_start, self.train_series[idx], self.train_until,
                     self.train_series_ids)

    def summary(self, times: np.ndarray, series: np.ndarray) -> dict[str, Any]:
        return {"kind": self.kind, "test_start_time": float(times[self.test_start]),
                "train_end_time": float(times[int(self.train_end[self.train_series].max())]),
                "held_out_series": series[~self.train_series].tolist()}


def _sizes(T: int, horizon: int, test: int | None, val: int | None) -> tuple[int, int]:
    """Test and validation sizes; defaults shrink to their minimum (horizon + 1) on short series."""
    floor = horizon + 1
    size_t = test if test is not None else max(floor, round(0.25 * T))
    size_v = val if val is not None else max(floor, round(0.2 * T))
    if size_t + size_v >= T - 2:  # defaults too large for a short study: use the smallest that work
        size_t, size_v = (test if test is not None else floor), (val if val is not None else floor)
    if size_t + size_v >= T - 2:
        fits = max(0, -(-(T - 4) // 2) - 1)  # largest h with 2 (h + 1) < T - 2
        hint = f"use --horizon {fits} or less" if fits >= 1 else "the series are too short to backtest"
        raise BiocountInputError(f"{T} time points cannot hold {size_t} test and {size_v} validation points plus a "
                                 f"training part; {hint}, or set smaller --test-size/--val-size")
    return size_t, size_v


def make_split(times: np.ndarray, series: np.ndarray, *, horizon: int, kind: Literal["time", "series"] = "time",
               test: int | None = None, val: int | None = None, holdout: list[str] | float | None = None,
               seed: int = 0) -> Split:
    """Decide the split on the target's grid, before anything is fitted."""
    T, S = times.size, series.size
    test, val = _sizes(T, horizon, test, val)
    test_start = T - test
    if kind == "time":
        train_end = np.full(S, T - test - val - 1)
        return Split("time", train_end, np.full(S, test_start - 1), test_start, np.ones(S, dtype=bool),
                     float(times[train_end[0]]), None)
    if isinstance(holdout, list):
        unknown = sorted(set(holdout) - set(series.tolist()))
        if unknown:
            raise BiocountInputError(f"--holdout names unknown series {', '.join(unknown)}; "
                                     f"series are {', '.join(series[:8].tolist())}{' ...' if S > 8 else ''}")
        held = np.isin(series, holdout)
    else:
        fraction = 0.25 if holdout is None else float(holdout)
        n = max(1, round(fraction * S))
        if n >= S:
            raise BiocountInputError(f"--holdout {fraction} leaves no training series out of {S}")
        held = np.zeros(S, dtype=bool)
        held[np.random.default_rng(seed).choice(S, size=n, replace=False)] = True
    if held.all() or not held.any():
        raise BiocountInputError("a series split needs at least one held-out and one training series")
    train_end = np.where(held, test_start - 1, T - val - 1)
    val_end = np.where(held, test_start - 1, T - 1)
    return Split("series", train_end, val_end, test_start, ~held, None, frozenset(series[~held].tolist()))


def origins(data: Aligned, split: Split, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation and test origins (each (N, 2) series and grid index)."""
    S, T = data.series.size, data.times.size
    if split.kind == "time":
        val = present_origins(data, split.train_end, split.val_end - 1)
        test = present_origins(data, np.full(S, split.test_start - 1), np.full(S, T - 2))
    else:
        val = present_origins(data, np.where(split.train_series, split.train_end, T), np.full(S, T - 2))
        test = present_origins(data, np.where(split.train_series, T, split.test_start - 1), np.full(S, T - 2))
    if test.shape[0] == 0:
        raise BiocountInputError("no test origins: the target is never observed in the test period")
    return val, test


def targets(data: Aligned, orig: np.ndarray, horizon: int, until: np.ndarray | None = None) -> np.ndarray:
    """Observed values at origin + 1 ... origin + H ((N, H, F), NaN where none or beyond ``until``)."""
    T = data.times.size
    ahead = orig[:, 1:2] + np.arange(1, horizon + 1)[None, :]
    ok = ahead < T
    if until is not None:
        ok &= ahead <= until[orig[:, 0]][:, None]
    y = data.y[orig[:, 0][:, None], np.minimum(ahead, T - 1)]
    return np.where(ok[..., None], y, np.nan)


@dataclass
class Backtest:
    """Everything a report needs: forecasts on identical origins, observed targets, metrics."""

    data: Aligned
    split: Split
    horizon: int
    val_origins: np.ndarray
    test_origins: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    forecasts: dict[str, dict[str, Forecast]]  # name -> {"val": ..., "test": ...}
    fitted: dict[str, Any]
    failed: dict[str, str]
    levels: list[float] = field(default_factory=lambda: [0.8, 0.95])
    weights: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)  # ablation member -> the full model it is tested against
    notes: list[str] = field(default_factory=list)  # what was skipped, e.g. intervals without enough validation data
    tasks: dict[str, ForecastTask] = field(default_factory=dict)
    calibration: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)  # name -> level -> q per horizon

    def _scales(self) -> tuple[np.ndarray, np.ndarray]:
        s = naive_scale(self.data.y, self.split.train_end)
        return (np.broadcast_to(s[self.val_origins[:, 0]][:, None, :], self.y_val.shape),
                np.broadcast_to(s[self.test_origins[:, 0]][:, None, :], self.y_test.shape))

    def intervals(self) -> dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """Per forecaster and level: (lower, upper) on test origins. Conformal for every forecaster;
        the forecaster's own intervals under ``"<name>:native"`` where it has matching quantiles."""
        if not hasattr(self, "_intervals"):
            val_scale, test_scale = self._scales()
            out: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
            for name, fc in self.forecasts.items():
                out[name] = {}
                for level in self.levels:
                    try:
                        lo, up, q = conformal(fc["val"].mean, self.y_val, val_scale, fc["test"].mean, test_scale, level)
                        self.calibration.setdefault(name, {})[level] = q
                    except BiocountInputError as exc:  # too little validation data: skip this level, say so
                        if str(exc) not in self.notes:
                            self.notes.append(str(exc))
                        continue
                    out[name][level] = (lo, up)
                q = fc["test"].quantiles
                native = {lv: (q[round((1 - lv) / 2, 6)], q[round((1 + lv) / 2, 6)]) for lv in self.levels
                          if round((1 - lv) / 2, 6) in q and round((1 + lv) / 2, 6) in q}
                if native:
                    out[f"{name}:native"] = native
            self._intervals = out
        return self._intervals

    def future(self) -> dict[str, dict[str, Any]]:
        """Forecasts beyond the data: from each series' last observed point, for every forecaster.

        Returns name -> {"origins", "mean" (S', H, F), "lower"/"upper" {level: array}} with conformal
        bounds from the validation calibration.
        """
        data = self.data
        T = data.times.size
        last = np.array([[s, np.flatnonzero(data.present[s])[-1]] for s in range(data.series.size)
                         if data.present[s].any()], dtype=int)
        scale = naive_scale(data.y, self.split.train_end)[last[:, 0]][:, None, :]
        self.intervals()
        out: dict[str, dict[str, Any]] = {}
        for name, model in self.fitted.items():
            out[name] = {"mean": model.predict(self.tasks[name], last).mean}
        for name, spec in self.weights.items():
            out[name] = {"mean": combine([out[m]["mean"] for m in spec["members"]], spec["weights"])}
        for name, res in out.items():
            res["origins"] = last
            res["lower"], res["upper"] = {}, {}
            for level, q in self.calibration.get(name, {}).items():
                half = q[None, :, None] * scale
                res["lower"][level], res["upper"][level] = res["mean"] - half, res["mean"] + half
        step = float(np.median(np.diff(data.times))) if T > 1 else 1.0
        extended = np.concatenate([data.times, data.times[-1] + step * np.arange(1, self.horizon + 1)])
        for res in out.values():
            res["times"] = extended[last[:, 1][:, None] + np.arange(1, self.horizon + 1)[None, :]]
        return out

    def _prob_scores(self, name: str, y: np.ndarray, pred: np.ndarray | None, sl=(slice(None),)) -> dict[str, float]:
        scores: dict[str, float] = {}
        grid: dict[float, np.ndarray] = {} if pred is None else {0.5: pred[sl]}
        for level, (lo, up) in self.intervals()[name].items():
            label = pct(level)
            for k, v in interval_scores(y[sl], lo[sl], up[sl], level).items():
                scores[f"{k}_{label}"] = v
            grid[round((1 - level) / 2, 6)] = lo[sl]
            grid[round((1 + level) / 2, 6)] = up[sl]
        return scores | quantile_scores(y[sl], grid)

    def metrics(self) -> pd.DataFrame:
        """Long table: one row per forecaster x scope (overall / feature / horizon); computed once."""
        if not hasattr(self, "_metrics"):
            self._metrics = self._compute_metrics()
        return self._metrics.copy()

    def _compute_metrics(self) -> pd.DataFrame:
        scale = naive_scale(self.data.y, self.split.train_end)[self.test_origins[:, 0]][:, None, :]
        scale = np.broadcast_to(scale, self.y_test.shape)
        units = [f"{s}|{t}" for s, t in self.test_origins]
        base = self.forecasts.get(BASELINE, {}).get("test")
        floor = self.forecasts.get(FLOOR, {}).get("test")
        rows = []
        for name, fc in self.forecasts.items():
            pred = fc["test"].mean
            row = {"forecaster": name, "scope": "overall", "feature": "all", "horizon": "all"}
            row |= point_metrics(self.y_test, pred, scale)
            if base is not None and name != BASELINE:
                stat, p, _ = dm_test(loss_by_unit(self.y_test, pred, units),
                                     loss_by_unit(self.y_test, base.mean, units), self.horizon)
                row |= {"dm_stat": stat, "dm_p": p}
            if floor is not None and name != FLOOR:
                stat, p, _ = dm_test(loss_by_unit(self.y_test, pred, units),
                                     loss_by_unit(self.y_test, floor.mean, units), self.horizon)
                row |= {"dm_naive_stat": stat, "dm_naive_p": p}
            if name in self.reference:
                full = self.forecasts[self.reference[name]]["test"].mean
                stat, p, _ = dm_test(loss_by_unit(self.y_test, pred, units), loss_by_unit(self.y_test, full, units),
                                     self.horizon)
                row |= {"dm_full_stat": stat, "dm_full_p": p}
            row |= self._prob_scores(name, self.y_test, pred)
            rows.append(row)
            native = f"{name}:native"
            if native in self.intervals():
                rows.append({"forecaster": native, "scope": "overall", "feature": "all", "horizon": "all"}
                            | self._prob_scores(native, self.y_test, pred))
            feature_rows = []
            for f, feature in enumerate(self.data.target_features):
                r = {"forecaster": name, "scope": "feature", "feature": str(feature), "horizon": "all"}
                r |= point_metrics(self.y_test[..., f:f + 1], pred[..., f:f + 1], scale[..., f:f + 1])
                if base is not None and name != BASELINE:
                    stat, p, _ = dm_test(loss_by_unit(self.y_test[..., f:f + 1], pred[..., f:f + 1], units),
                                         loss_by_unit(self.y_test[..., f:f + 1], base.mean[..., f:f + 1], units),
                                         self.horizon)
                    r |= {"dm_stat": stat, "dm_p": p}
                feature_rows.append(r)
            if base is not None and name != BASELINE:
                adjusted = bh(np.array([r.get("dm_p", np.nan) for r in feature_rows]))
                for r, q in zip(feature_rows, adjusted, strict=True):
                    r["dm_p_bh"] = q
            rows += feature_rows
            for h in range(self.horizon):
                r = {"forecaster": name, "scope": "horizon", "feature": "all", "horizon": h + 1}
                r |= point_metrics(self.y_test[:, h:h + 1], pred[:, h:h + 1], scale[:, h:h + 1])
                r |= self._prob_scores(name, self.y_test, pred, (slice(None), slice(h, h + 1)))
                rows.append(r)
        prob = [f"{k}_{pct(lv)}" for lv in self.levels for k in ("coverage", "width", "winkler")]
        columns = ["forecaster", "scope", "feature", "horizon", *METRICS, "n", "dm_stat", "dm_p", "dm_p_bh",
                   "dm_naive_stat", "dm_naive_p", "dm_full_stat", "dm_full_p", *prob, "pinball", "crps"]
        return pd.DataFrame(rows).reindex(columns=columns)

    def comparison(self) -> pd.DataFrame:
        """One row per forecaster: overall metrics and the DM test against ARIMA."""
        m = self.metrics()
        m = m[(m["scope"] == "overall") & ~m["forecaster"].str.endswith(":native")]
        return m.drop(columns=["scope", "feature", "horizon", "dm_p_bh"]).set_index("forecaster")

    def forecasts_frame(self) -> pd.DataFrame:
        """series, feature, origin, horizon, time, observed, one column per forecaster (test origins)."""
        o, H, F = self.test_origins, self.horizon, self.data.target_features.size
        T = self.data.times.size
        step = float(np.median(np.diff(self.data.times))) if T > 1 else 1.0
        extended = np.concatenate([self.data.times, self.data.times[-1] + step * np.arange(1, H + 1)])
        s = np.repeat(o[:, 0], H * F)
        origin = np.repeat(o[:, 1], H * F)
        h = np.tile(np.repeat(np.arange(1, H + 1), F), len(o))
        f = np.tile(np.arange(F), len(o) * H)
        frame = pd.DataFrame({
            "series": self.data.series[s], "feature": self.data.target_features[f],
            "origin": self.data.times[origin], "horizon": h, "time": extended[origin + h],
            "observed": self.y_test.reshape(-1),
        })
        for name, fc in self.forecasts.items():
            frame[name] = fc["test"].mean.reshape(-1)
        for name, by_level in self.intervals().items():
            for level, (lo, up) in by_level.items():
                frame[f"{name}_lower_{pct(level)}"] = lo.reshape(-1)
                frame[f"{name}_upper_{pct(level)}"] = up.reshape(-1)
        return frame[frame["time"] <= self.data.times[-1]].reset_index(drop=True)


def run_backtest(data: Aligned, split: Split, forecasters: dict[str, tuple], *, horizon: int, lookback: int,
                 seed: int = 0, levels: list[float] | None = None, ensembles: list[str] | None = None,
                 ensemble_per: str = "pooled", reference: dict[str, str] | None = None,
                 log=lambda msg: None) -> Backtest:
    """Fit each forecaster once and forecast validation and test origins in one call.

    ``forecasters`` maps a name to ``(component, model)`` or ``(component, model, aligned)`` where
    ``aligned`` replaces ``data`` for that model (modality ablations: same target and grid, fewer inputs).
    A forecaster that fails is reported in ``failed`` and left out; input errors still stop the run.
    """
    val, test = origins(data, split, horizon)
    both = np.concatenate([val, test])
    forecasts, fitted, failed, tasks = {}, {}, {}, {}
    for name, entry in forecasters.items():
        component, model = entry[0], entry[1]
        own = entry[2] if len(entry) > 2 and entry[2] is not None else data
        task = ForecastTask(data=own, horizon=horizon, lookback=lookback, train_end=split.train_end,
                            val_origins=val, seed=seed, val_end=split.val_end, train_series=split.train_series)
        log(f"fitting {name}")
        try:
            model.fit(task)
            fc = model.predict(task, both)
            if fc.mean.shape != (both.shape[0], horizon, data.y.shape[2]):
                raise PluginError(f"returned shape {fc.mean.shape}, expected {(both.shape[0], horizon, data.y.shape[2])}")
        except BiocountInputError:
            raise
        except Exception as exc:
            failed[name] = f"{component.plugin.label} forecaster '{name}' failed: {type(exc).__name__}: {exc}"
            log(failed[name])
            continue
        n = val.shape[0]
        forecasts[name] = {"val": Forecast(fc.mean[:n], {q: v[:n] for q, v in fc.quantiles.items()}),
                           "test": Forecast(fc.mean[n:], {q: v[n:] for q, v in fc.quantiles.items()})}
        fitted[name], tasks[name] = model, task
    if not forecasts:
        raise PluginError("every forecaster failed: " + "; ".join(failed.values()))
    y_val = targets(data, val, horizon, split.val_end)
    weights = {}
    if ensembles:
        members = [n for n in forecasts if n in forecasters]
        for method in ensembles:
            w = fit_ensemble(method, [forecasts[m]["val"].mean for m in members], y_val, per=ensemble_per)
            forecasts[f"ensemble:{method}"] = {
                "val": Forecast(combine([forecasts[m]["val"].mean for m in members], w)),
                "test": Forecast(combine([forecasts[m]["test"].mean for m in members], w)),
            }
            weights[f"ensemble:{method}"] = {"members": members, "per": ensemble_per, "weights": np.asarray(w).tolist()}
    return Backtest(data, split, horizon, val, test, y_val, targets(data, test, horizon), forecasts, fitted, failed,
                    levels=levels or [0.8, 0.95], weights=weights, reference=reference or {}, tasks=tasks)
