"""Rolling-origin backtests: every forecaster is scored on identical origins and target points.

Which series and points train, validate and test is decided in :mod:`biocount.study.split`; here each
forecaster is fitted once (seeing nothing after ``train_end``), forecasts validation and test origins
in one call, and is scored. Diebold–Mariano tests compare each forecaster with every baseline of the
run (``baselines``): on each (series, origin)'s *summed* squared error, divided by the mean number
of scored points per origin, so the test's mean loss difference is the MSE difference and its sign
always agrees with the MSE column; per horizon too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from biocount.errors import BiocountInputError, PluginError
from biocount.evaluation.candidates import PlannedForecaster, View, block_of
from biocount.evaluation.ensemble import combine, guarded
from biocount.evaluation.intervals import conformal, interval_scores, pct, quantile_scores
from biocount.evaluation.metrics import METRICS, bh, dm_test, loss_by_unit, naive_scale, point_metrics
from biocount.evaluation.units import DATA_METRICS, data_metrics, point, smearing, to_data
from biocount.forecast import Forecast, ForecastTask
from biocount.study.align import Aligned
from biocount.study.split import GridSplit


def targets(data: Aligned, orig: np.ndarray, horizon: int, until: np.ndarray | None = None,
            values: np.ndarray | None = None) -> np.ndarray:
    """Observed values at origin + 1 ... origin + H ((N, H, F), NaN where none or beyond ``until``);
    of ``values`` (S, T, F) instead of ``data.y`` if given (the raw counts behind it)."""
    T = data.times.size
    ahead = orig[:, 1:2] + np.arange(1, horizon + 1)[None, :]
    ok = ahead < T
    if until is not None:
        ok &= ahead <= until[orig[:, 0]][:, None]
    y = (data.y if values is None else values)[orig[:, 0][:, None], np.minimum(ahead, T - 1)]
    return np.where(ok[..., None], y, np.nan)


def grid_in_units(data: Aligned) -> np.ndarray:
    """The target on the whole grid (S, T, F) in the data's units (needs ``data.units``): from the raw counts
    where the encoder kept them (exact: g⁻¹ of float32 values is off in the last digits), else g⁻¹(y)."""
    if data.units.log1p and data.y_counts is not None:
        sizes = 1.0 if data.size_factors is None else data.size_factors[..., None]
        return np.where(np.isnan(data.y), np.nan, data.y_counts / sizes)
    return to_data(data.y, data.units)


@dataclass
class Backtest:
    """Everything a report needs: forecasts on identical origins, observed targets, metrics."""

    data: Aligned
    split: GridSplit
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
    views: dict[str, View] = field(default_factory=dict)  # name -> the fitted model and the inputs it reads
    ensemble_notes: list[str] = field(default_factory=list)  # an ensemble left out or falling back, and why
    tasks: dict[str, ForecastTask] = field(default_factory=dict)
    baselines: list[str] = field(default_factory=list)  # forecasters every other one is DM-tested against
    timings: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> fit_s, predict_s

    def _test_in_units(self) -> tuple[np.ndarray, np.ndarray]:
        """The test targets (N, H, F) in the data's units and their MASE scale (in-sample naive MAE in those
        units); computed once (needs ``data.units``)."""
        if not hasattr(self, "_units_truth"):
            grid = grid_in_units(self.data)
            y = np.where(np.isnan(self.y_test), np.nan,
                         targets(self.data, self.test_origins, self.horizon, values=grid))
            scale = naive_scale(grid, self.split.train_end)[self.test_origins[:, 0]][:, None, :]
            self._units_truth = (y, np.broadcast_to(scale, y.shape))
        return self._units_truth

    def _scales(self) -> tuple[np.ndarray, np.ndarray]:
        s = naive_scale(self.data.y, self.split.train_end)
        return (np.broadcast_to(s[self.val_origins[:, 0]][:, None, :], self.y_val.shape),
                np.broadcast_to(s[self.test_origins[:, 0]][:, None, :], self.y_test.shape))

    @property
    def notes(self) -> list[str]:
        """What was left out, capped or skipped: the ensembles', then the conformal intervals' and the
        predictive quantiles' notes (derived from them when asked: no later call adds to them)."""
        from biocount.evaluation.scoring import distribution_notes

        return [*self.ensemble_notes, *self._conformal()[2], *distribution_notes(self)]

    def intervals(self) -> dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]:
        """Per forecaster and level: (lower, upper) on test origins. Conformal for every forecaster;
        the forecaster's own intervals under ``"<name>:native"`` where it has matching quantiles."""
        return self._conformal()[0]

    @property
    def calibration(self) -> dict[str, dict[float, np.ndarray]]:
        """name -> level -> the conformal half-width per horizon, in naive-scale units."""
        return self._conformal()[1]

    def _conformal(self) -> tuple[dict, dict, list[str]]:
        """The intervals, their calibration and their notes, computed once."""
        if not hasattr(self, "_conformal_cache"):
            val_scale, test_scale = self._scales()
            out: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
            calibration: dict[str, dict[float, np.ndarray]] = {}
            notes: list[str] = []
            for name, fc in self.forecasts.items():
                out[name] = {}
                for level in self.levels:
                    try:
                        lo, up, q = conformal(fc["val"].mean, self.y_val, val_scale, fc["test"].mean, test_scale, level)
                        calibration.setdefault(name, {})[level] = q
                    except BiocountInputError as exc:  # too little validation data: skip this level, say so
                        if str(exc) not in notes:
                            notes.append(str(exc))
                        continue
                    out[name][level] = (lo, up)
                q = fc["test"].quantiles
                native = {lv: (q[round((1 - lv) / 2, 6)], q[round((1 + lv) / 2, 6)]) for lv in self.levels
                          if round((1 - lv) / 2, 6) in q and round((1 + lv) / 2, 6) in q}
                if native:
                    out[f"{name}:native"] = native
            self._conformal_cache = (out, calibration, notes)
        return self._conformal_cache

    def future(self) -> dict[str, dict[str, Any]]:
        """Forecasts beyond the data: from each series' last observed point, for every forecaster.

        Returns name -> {"origins", "mean" (S', H, F), "lower"/"upper" {level: array}} with conformal
        bounds from the validation calibration.
        """
        data = self.data
        last = np.array([[s, np.flatnonzero(data.present[s])[-1]] for s in range(data.series.size)
                         if data.present[s].any()], dtype=int)
        scale = naive_scale(data.y, self.split.train_end)[last[:, 0]][:, None, :]
        out: dict[str, dict[str, Any]] = {}
        for name, model in self.fitted.items():
            out[name] = {"mean": model.predict(self.tasks[name], last).mean}
        for name, v in self.views.items():
            out[name] = {"mean": self.fitted[v.model].predict(self.tasks[v.model], last, without=v.off).mean}
        for name, spec in self.weights.items():
            out[name] = {"mean": combine([out[m]["mean"] for m in spec["members"]], spec["weights"], spec["per"])}
        for name, res in out.items():
            res["origins"] = last
            res["lower"], res["upper"] = {}, {}
            for level, q in self.calibration.get(name, {}).items():
                half = q[None, :, None] * scale
                res["lower"][level], res["upper"][level] = res["mean"] - half, res["mean"] + half
        extended = data.extended_times(self.horizon)
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

    def _dm(self, pred: np.ndarray, other: np.ndarray, h: int | None = None, f: int | None = None) -> tuple[float, float]:
        """DM of ``pred`` against ``other`` on the test origins (one horizon / feature if given)."""
        hs = slice(None) if h is None else slice(h, h + 1)
        fs = slice(None) if f is None else slice(f, f + 1)
        y, a, b = self.y_test[:, hs, fs], pred[:, hs, fs], other[:, hs, fs]
        units = self.test_origins[:, 0] * self.data.times.size + self.test_origins[:, 1]  # time order per series
        stat, p, _ = dm_test(loss_by_unit(y, a, units), loss_by_unit(y, b, units), self.horizon if h is None else h + 1)
        return stat, p

    def _tests(self, name: str, pred: np.ndarray, **scope: int) -> dict[str, float]:
        """DM columns against every baseline (and the full model, for an ablation member)."""
        row: dict[str, float] = {}
        against = [(b, b) for b in self.baselines if b != name and b in self.forecasts]
        if name in self.reference:
            against.append(("full", self.reference[name]))
        for label, other in against:
            row[f"dm_{label}_stat"], row[f"dm_{label}_p"] = self._dm(pred, self.forecasts[other]["test"].mean, **scope)
        return row

    def _in_units(self, name: str, pred: np.ndarray):
        """metrics.csv's ``data_*`` columns of ``name`` for a slice (h, f) of the test points: a function of
        the slice, or of nothing where the target has no data units."""
        if self.data.units is None:
            return lambda sl=(slice(None),): {}
        y, scale = self._test_in_units()
        mean = self.in_units(name, pred)
        return lambda sl=(slice(None),): data_metrics(y[sl], mean[sl], scale[sl])

    def _compute_metrics(self) -> pd.DataFrame:
        scale = naive_scale(self.data.y, self.split.train_end)[self.test_origins[:, 0]][:, None, :]
        scale = np.broadcast_to(scale, self.y_test.shape)
        rows = []
        for name, fc in self.forecasts.items():
            pred = fc["test"].mean
            units = self._in_units(name, pred)
            row = {"forecaster": name, "scope": "overall", "feature": "all", "horizon": "all"}
            row |= point_metrics(self.y_test, pred, scale) | self._tests(name, pred)
            row |= self._prob_scores(name, self.y_test, pred) | units()
            rows.append(row)
            native = f"{name}:native"
            if native in self.intervals():
                rows.append({"forecaster": native, "scope": "overall", "feature": "all", "horizon": "all"}
                            | self._prob_scores(native, self.y_test, pred))
            feature_rows = []
            for f, feature in enumerate(self.data.target_features):
                r = {"forecaster": name, "scope": "feature", "feature": str(feature), "horizon": "all"}
                r |= point_metrics(self.y_test[..., f:f + 1], pred[..., f:f + 1], scale[..., f:f + 1])
                feature_rows.append(r | self._tests(name, pred, f=f) | units((Ellipsis, slice(f, f + 1))))
            for key in {k for r in feature_rows for k in r if k.startswith("dm_") and k.endswith("_p")}:
                adjusted = bh(np.array([r.get(key, np.nan) for r in feature_rows]))
                for r, q in zip(feature_rows, adjusted, strict=True):
                    r[f"{key}_bh"] = q
            rows += feature_rows
            for h in range(self.horizon):
                r = {"forecaster": name, "scope": "horizon", "feature": "all", "horizon": h + 1}
                r |= point_metrics(self.y_test[:, h:h + 1], pred[:, h:h + 1], scale[:, h:h + 1])
                r |= self._tests(name, pred, h=h)
                r |= self._prob_scores(name, self.y_test, pred, (slice(None), slice(h, h + 1)))
                rows.append(r | units((slice(None), slice(h, h + 1))))
        prob = [f"{k}_{pct(lv)}" for lv in self.levels for k in ("coverage", "width", "winkler")]
        tests = [f"dm_{b}_{k}" for b in [*self.baselines, "full"] for k in ("stat", "p", "p_bh")]
        columns = ["forecaster", "scope", "feature", "horizon", *METRICS, "n", *tests, *prob, "pinball", "crps",
                   *DATA_METRICS]
        frame = pd.DataFrame(rows)
        return frame.reindex(columns=[c for c in columns if c in frame or not c.startswith(("dm_", "data_"))])

    def scores(self, by_feature: bool = False) -> pd.DataFrame:
        """Hub-grade probabilistic scores per forecaster, distribution and horizon (:mod:`biocount.evaluation.scoring`):
        CRPS, log score, WIS and its parts, coverage, CRPS skill against each baseline with a bootstrap
        interval and a DM test. The default table is computed once."""
        from biocount.evaluation.scoring import score_table

        if by_feature:
            return score_table(self, by_feature=True)
        if not hasattr(self, "_scores"):
            self._scores = score_table(self)
        return self._scores.copy()

    def score_summary(self) -> dict[str, Any]:
        """PIT histograms, coverage by horizon, the toughest baseline, the conformal widths (run.json)."""
        from biocount.evaluation.scoring import summary

        return summary(self)

    def modality_sets(self) -> list[dict[str, Any]]:
        """Per input modality and horizon, on validation points only: the MSE of the full model and of its
        view without that modality, and the headline's weight on members that read it; with a sentence.
        Empty without views (no forecaster forecasts from input subsets)."""
        out = []
        head = next(iter(self.weights.values()), None)
        for base in dict.fromkeys(v.model for v in self.views.values()):
            mine = {label: v for label, v in self.views.items() if v.model == base}
            inputs = list(dict.fromkeys(m for v in mine.values() for m in v.drops))
            reads = {base: set(inputs)} | {label: set(v.reads) for label, v in mine.items()} \
                | {label: _modalities_read(self.tasks[label].data, inputs) for label, full in self.reference.items()
                   if full == base and label in self.tasks}  # a refit reads the modalities it was fitted on
            for m in inputs:
                without = next((label for label, v in mine.items() if v.drops == (m,)), None)
                if without is None:
                    continue
                row: dict[str, Any] = {"modality": m, "model": base, "without": without, "horizons": []}
                for h in range(self.horizon):
                    cell = {"h": h + 1,
                            "mse_with": point_metrics(self.y_val[:, h], self.forecasts[base]["val"].mean[:, h])["mse"],
                            "mse_without": point_metrics(self.y_val[:, h],
                                                         self.forecasts[without]["val"].mean[:, h])["mse"]}
                    if head is not None and head["per"] != "feature":
                        w = np.asarray(head["weights"])
                        w = w if head["per"] == "pooled" else w[h]
                        cell["headline_weight"] = round(float(sum(x for name, x in zip(head["members"], w, strict=True)
                                                                  if m in reads.get(name, set()))), 3)
                    row["horizons"].append(cell)
                row["text"] = _modality_sentence(row)
                out.append(row)
        return out

    def scored(self) -> dict[str, Any]:
        """Series, origins and target points scored per role (validation, test)."""
        out = {}
        for role, orig, y in (("validation", self.val_origins, self.y_val), ("test", self.test_origins, self.y_test)):
            out[role] = {"series": int(np.unique(orig[:, 0]).size), "origins": int(orig.shape[0]),
                         "points": int(np.sum(~np.isnan(y)))}
        return out

    def comparison(self) -> pd.DataFrame:
        """One row per forecaster: overall metrics and the DM tests against each baseline."""
        m = self.metrics()
        m = m[(m["scope"] == "overall") & ~m["forecaster"].str.endswith(":native")]
        return m.drop(columns=["scope", "feature", "horizon", *[c for c in m if c.endswith("_bh")]]).set_index("forecaster")

    def smearing(self, name: str) -> np.ndarray:
        """(H, F) the smearing factors that make ``name``'s point forecasts means in data units (:mod:`biocount.evaluation.units`),
        from its validation residuals only."""
        cache = self.__dict__.setdefault("_smearing", {})
        if name not in cache:
            cache[name] = smearing(self.forecasts[name]["val"].mean, self.y_val, self.data.units)
        return cache[name]

    def in_units(self, name: str, mean: np.ndarray) -> np.ndarray:
        """``name``'s point forecasts ``mean`` (N, H, F) as means in the data's units."""
        return point(mean, self.smearing(name), self.data.units)

    def forecasts_frame(self, *, encoded: bool = False) -> pd.DataFrame:
        """series, feature, origin, horizon, time, observed, one column per forecaster (test origins), with
        interval bounds: in the data's units where the target's encoder declares them (point forecasts are
        means, :mod:`biocount.evaluation.units`), else (or ``encoded=True``) on the encoder's scale."""
        units = None if encoded else self.data.units
        o, H, F = self.test_origins, self.horizon, self.data.target_features.size
        extended = self.data.extended_times(H)
        s = np.repeat(o[:, 0], H * F)
        origin = np.repeat(o[:, 1], H * F)
        h = np.tile(np.repeat(np.arange(1, H + 1), F), len(o))
        f = np.tile(np.arange(F), len(o) * H)
        frame = pd.DataFrame({
            "series": self.data.series[s], "feature": self.data.target_features[f],
            "origin": self.data.times[origin], "horizon": h, "time": extended[origin + h],
            "observed": (self.y_test if units is None else self._test_in_units()[0]).reshape(-1),
        })
        for name, fc in self.forecasts.items():
            frame[name] = (fc["test"].mean if units is None else self.in_units(name, fc["test"].mean)).reshape(-1)
        for name, by_level in self.intervals().items():
            for level, (lo, up) in by_level.items():
                frame[f"{name}_lower_{pct(level)}"] = (lo if units is None else to_data(lo, units)).reshape(-1)
                frame[f"{name}_upper_{pct(level)}"] = (up if units is None else to_data(up, units)).reshape(-1)
        return frame[frame["time"] <= self.data.times[-1]].reset_index(drop=True)


def _modalities_read(data: Aligned, inputs: list[str]) -> set[str]:
    """The input modalities a refit's restricted study still holds, as sequences or static covariates."""
    return {block_of(b, inputs) for b in [*data.inputs, *data.static_modalities()]}


def run_backtest(data: Aligned, split: GridSplit, forecasters: dict[str, PlannedForecaster], *, horizon: int,
                 seed: int = 0, levels: list[float] | None = None, ensembles: list[str] | None = None,
                 ensemble_per: str = "pooled", baselines: list[str] | None = None, log=lambda msg: None,
                 strict: bool = True, views: dict[str, dict[str, View]] | None = None) -> Backtest:
    """Fit each forecaster once and forecast validation and test origins in one call.

    ``forecasters`` maps a name to a :class:`~biocount.evaluation.candidates.PlannedForecaster`; an ablation's own
    ``data`` replaces ``data`` for it (same target and grid, fewer inputs) and it is tested against the
    forecaster it is an ablation of.
    ``views`` maps a forecaster whose capabilities say ``subsets`` to ``{label: View}``: the same fitted
    model forecasting with some inputs off, scored and ensembled as a forecaster of its own.
    A forecaster that fails is reported in ``failed`` and left out; input errors still stop the run.
    ``strict=False`` (the default headline ensemble, not one the user asked for): an ensemble that cannot
    be fitted (too few validation points) is left out with a note instead of stopping the run.
    """
    val, test = split.val, split.test
    if test.shape[0] == 0:
        raise BiocountInputError("no test origins: the target is never observed where the split scores it")
    forecasts, fitted, failed, tasks, timings, made = _fit_all(data, split, forecasters, horizon, seed, views or {}, log)
    if not forecasts:
        raise PluginError("every forecaster failed: " + "; ".join(failed.values()))
    y_val = targets(data, val, horizon, split.val_end)
    # every forecaster, its views and the --ablate-modalities refits: a network trained without a modality is
    # not the full one with it switched off, and where an input only adds noise the refit is the better
    # member (the accuracy suite, docs/model.md); the weights still come from validation points only
    reference = {n: p.ablation_of for n, p in forecasters.items() if p.ablation_of is not None}
    members = list(forecasts)
    weights, notes = _ensembles(forecasts, members, y_val, ensembles or [], ensemble_per, baselines or [], strict)
    return Backtest(data, split, horizon, val, test, y_val, targets(data, test, horizon), forecasts, fitted, failed,
                    levels=levels or [0.8, 0.95], weights=weights, reference=reference, tasks=tasks,
                    baselines=list(baselines or []), timings=timings, ensemble_notes=notes, views=made)


def _fit_all(data: Aligned, split: GridSplit, forecasters: dict[str, PlannedForecaster], horizon: int, seed: int,
             views: dict[str, dict[str, View]], log) -> tuple[dict, dict, dict, dict, dict, dict]:
    """Fit each forecaster, forecast validation and test origins in one call, then its views."""
    val = split.val
    both = np.concatenate([val, split.test])
    n = val.shape[0]
    forecasts, fitted, failed, tasks, timings, made = {}, {}, {}, {}, {}, {}
    for name, planned in forecasters.items():
        component, model = planned.component, planned.model
        task = ForecastTask(data=data if planned.data is None else planned.data, horizon=horizon, train_end=split.train_end, val_origins=val, seed=seed,
                            val_end=split.val_end, train_series=split.train_series)
        log(f"fitting {name}")
        try:
            clock = time.perf_counter()
            model.fit(task)
            fit_s = time.perf_counter() - clock
            fc = model.predict(task, both)
            timings[name] = {"fit_s": round(fit_s, 3), "predict_s": round(time.perf_counter() - clock - fit_s, 3)}
            _check_shape(fc, both, horizon, data)
            for label, v in views.get(name, {}).items():  # the same network, inputs switched off
                clock = time.perf_counter()
                view = model.predict(task, both, without=v.off)
                _check_shape(view, both, horizon, data)
                forecasts[label] = _split_forecast(view, n)
                made[label] = v
                timings[label] = {"predict_s": round(time.perf_counter() - clock, 3)}
        except BiocountInputError:
            raise
        except Exception as exc:
            failed[name] = f"{component.plugin.label} forecaster '{name}' failed: {type(exc).__name__}: {exc}"
            log(failed[name])
            for label in [label for label, v in made.items() if v.model == name]:
                del forecasts[label], made[label], timings[label]
            continue
        forecasts[name] = _split_forecast(fc, n)
        fitted[name], tasks[name] = model, task
    return forecasts, fitted, failed, tasks, timings, made


def _ensembles(forecasts: dict[str, dict[str, Forecast]], members: list[str], y_val: np.ndarray, methods: list[str],
               per: str, baselines: list[str], strict: bool) -> tuple[dict[str, Any], list[str]]:
    """Each ensemble's weights (guarded against the baselines), added to ``forecasts``; notes."""
    weights, notes = {}, []
    guard = {i: m for i, m in enumerate(members) if m in baselines}
    for method in methods:
        try:
            w, choices = guarded(method, [forecasts[m]["val"].mean for m in members], y_val, per=per, baselines=guard)
        except BiocountInputError as exc:
            if strict:
                raise
            notes.append(f"no headline ensemble: {exc}; the headline is {members[0]}")
            continue
        name = f"ensemble:{method}"
        forecasts[name] = {part: Forecast(combine([forecasts[m][part].mean for m in members], w, per))
                           for part in ("val", "test")}
        weights[name] = {"members": members, "per": per, "weights": np.asarray(w).tolist(), "choices": choices}
        notes += _fallback_notes(name, choices, per)
    return weights, notes


def _spans(hs: list[int]) -> str:
    """[1, 2, 3, 5] -> 'h = 1–3, 5'."""
    parts, start = [], None
    for i, h in enumerate(hs):
        start = h if start is None else start
        if i + 1 == len(hs) or hs[i + 1] != h + 1:
            parts.append(f"{start}" if start == h else f"{start}–{h}")
            start = None
    return "h = " + ", ".join(parts)


def _modality_sentence(row: dict[str, Any]) -> str:
    """'rna helps the lstm at h = 1–3 on validation (MSE 0.64 with, 0.83 without at h = 1); the headline puts
    0.71 / 0.66 / 0.60 of its weight on members reading it (h = 1–3)'."""
    cells = row["horizons"]
    helps = [c["h"] for c in cells if c["mse_with"] < c["mse_without"]]
    first = next(c for c in cells if c["h"] == (helps[0] if helps else 1))
    what = f"helps the {row['model']} at {_spans(helps)}" if helps else f"does not help the {row['model']} at any horizon"
    text = (f"{row['modality']} {what} on validation (MSE {first['mse_with']:.3g} with, {first['mse_without']:.3g} "
            f"without at h = {first['h']})")
    if all("headline_weight" in c for c in cells):
        text += ("; the headline puts " + " / ".join(f"{c['headline_weight']:.2f}" for c in cells)
                 + " of its weight on members reading it" + (f" ({_spans([c['h'] for c in cells])})" if len(cells) > 1 else ""))
    return text


def _check_shape(fc: Forecast, origins: np.ndarray, horizon: int, data: Aligned) -> None:
    expected = (origins.shape[0], horizon, data.y.shape[2])
    if fc.mean.shape != expected:
        raise PluginError(f"returned shape {fc.mean.shape}, expected {expected}")


def _split_forecast(fc: Forecast, n: int) -> dict[str, Forecast]:
    """One forecast of validation then test origins as {"val": first n, "test": the rest}."""
    return {"val": fc.rows(slice(None, n)), "test": fc.rows(slice(n, None))}


def _fallback_notes(name: str, choices: list[dict[str, Any]], per: str) -> list[str]:
    """One note per scope where the guard replaced the combination by a baseline."""
    out = []
    for i, c in enumerate(choices):
        if c.get("fallback"):
            where = "" if per == "pooled" else (f" at h={i + 1}" if per == "horizon" else f" for feature {i + 1}")
            out.append(f"{name}{where}: the combination was significantly worse than {c['worse_than']} on held-out "
                       f"validation origins (DM p = {c['p']:.2g}), so the headline is {c['fallback']} there")
    return out
