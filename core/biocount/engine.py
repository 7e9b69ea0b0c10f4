"""The engine behind ``biocount run`` and ``bc.run``: one function per stage, in the order data flows.

    resolve (biocount.plan) -> read -> split -> encode -> align -> backtest -> explain -> run_info
    (biocount.result) -> write (biocount.result, atomic)

:func:`run` takes a :class:`RunConfig` and returns a :class:`RunResult` holding everything the CLI
writes; :func:`write` puts it in a folder atomically (a failed or interrupted run never leaves a
folder that looks complete). Each stage's work lives in the module it names; here they are only
called in order.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from biocount.config import RunConfig, config_from, validated  # noqa: F401  (engine.RunConfig & co. stay)
from biocount.errors import BiocountInputError, PluginError
from biocount.plan import Plan, ddp_device, resolve
from biocount.result import Clock, RunResult, fingerprint, observed_frame, run_info, write  # noqa: F401  (engine.write stays)


def run(config: RunConfig, *, host: Any = None, log=None, data: Any = None) -> RunResult:
    """Run the whole pipeline, stage by stage (see the module docstring).

    ``data`` (an AnnData, MuData or ``{modality: AnnData}``) replaces reading ``config.data``. With
    ``--dask`` per-series work goes to a Dask cluster (:mod:`biocount.parallel`); under torchrun the
    ranks train the LSTM together and only rank 0 runs the rest (:mod:`biocount.ddp`).
    """
    from biocount import ddp
    from biocount.host.plugins import load_host
    from biocount.parallel import dask_cluster

    if ddp.follower():  # torchrun ranks > 0 say nothing; rank 0 speaks for the run
        config, log = config.model_copy(update={"quiet": True}), None
    log, clock = log or (lambda msg: None), Clock()
    plan = resolve(config, host or load_host())
    clock.lap("resolve")
    with ddp.process_group(ddp_device(plan)) as rank, dask_cluster(config.dask, log=log):
        ddp.agree(json.dumps([json.loads(config.model_dump_json(exclude={"quiet"})), fingerprint(config)]))
        if rank:
            return follow(config, plan, data, rank)
        clock.lap("start")
        log("reading data")
        study, design_report = read_study(config, plan, data)
        clock.lap("read")
        split = split_study(config, plan, study)
        log("encoding " + ", ".join(plan.names))
        encoded = encode_study(config, plan, study, split)
        clock.lap("encode")
        aligned = align_study(config, plan, encoded, study, design_report)
        clock.lap("align")
        bt = backtest(config, plan, aligned, split.on_grid(aligned), log)
        clock.lap("fit+backtest")
        metrics, comparison, forecasts = bt.metrics(), bt.comparison(), bt.forecasts_frame()
        scores = bt.scores()
        clock.lap("report")
        importance, attributions = explain(config, plan, bt)
        clock.lap("explain")
    info = run_info(config, plan, split, encoded, aligned, bt, clock) | {"importance": importance,
                                                                         "attributions": attributions}
    encoded_frame = bt.forecasts_frame(encoded=True) if aligned.units is not None else None
    saved = [n for n, p in plan.forecasters.items() if p.capabilities.checkpointable and p.ablation_of is None
             and n in bt.fitted]
    return RunResult(config, comparison, metrics, forecasts, info, bt.fitted, bt, observed_frame(aligned), scores,
                     encoded_frame, saved)


def follow(config: RunConfig, plan: Plan, data: Any, rank: int) -> RunResult:
    """A torchrun rank other than 0: the same study, read, encoded and aligned, and the distributed
    forecasters (and their ablations) fitted together with rank 0, in rank 0's order; nothing written."""
    plan.forecasters = {n: p for n, p in plan.forecasters.items() if p.capabilities.distributed}
    study, design_report = read_study(config, plan, data)
    split = split_study(config, plan, study)
    aligned = align_study(config, plan, encode_study(config, plan, study, split), study, design_report)
    bt = backtest(config, plan, aligned, split.on_grid(aligned), lambda msg: None, ensembles=[])
    return RunResult(config, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {"rank": rank}, bt.fitted, bt, rank=rank)


def read_study(config: RunConfig, plan: Plan, data: Any) -> tuple[dict[str, Any], list[str]]:
    """Stage 1: the study as {modality: AnnData}, after the declared design; the design's report."""
    from biocount.io.readers import as_modalities, index_time_axis, read_sources

    keys = {"time_key": config.time_key, "series_key": config.series_key}
    if data is not None:
        data, source = as_modalities(data, where="data", **keys), "the data"
    else:
        data, source = read_sources(config.data or ["demo"], host=plan.host, demo_seed=config.demo_seed, **keys)
    missing = [n for n in plan.names if n not in data]
    if missing:
        from biocount.host.plugins import did_you_mean

        raise BiocountInputError(f"modality '{missing[0]}' is not in {source}{did_you_mean(missing[0], list(data))}; "
                                 f"available: {', '.join(data)}")
    design, report = config.design(), []
    if design != type(design)():  # clocks, replicates, shared modalities as declared (biocount.study.design)
        from biocount.study.design import apply

        data, report = apply(data, target=plan.target, design=design)
    if config.time_axis == "index":
        data = index_time_axis(data, plan.names)
    if "time" not in data[plan.target].obs:
        raise BiocountInputError(f"target modality '{plan.target}' has no time column; choose a time-resolved target")
    return data, report


def split_study(config: RunConfig, plan: Plan, study: dict[str, Any]) -> Any:
    """Stage 2: roles, cuts and origins from the target's measured points (biocount.study.split)."""
    from biocount.study.split import make_split

    return make_split(study[plan.target].obs[["series", "time"]], horizon=config.horizon, kind=config.split,
                      test_size=config.test_size, val_size=config.val_size, train_series=config.train_series,
                      val_series=config.val_series, test_series=config.test_series, warmup=config.warmup,
                      origins=plan.origins, seed=config.seed)


def encode_study(config: RunConfig, plan: Plan, study: dict[str, Any], split: Any) -> dict[str, Any]:
    """Stage 3: every modality through its encoder, fitted on training rows only."""
    from biocount.study.encode import encode

    encoded, _ = encode(study, plan.names, plan.host, train=split.train_selection(), options=config.options,
                        overrides=plan.overrides)
    return encoded


def align_study(config: RunConfig, plan: Plan, encoded: dict[str, Any], study: dict[str, Any],
                design_report: list[str]) -> Any:
    """Stage 4: one grid; the target encoder may keep or drop rows, never invent them."""
    from biocount.study.align import align, flat_target_notes

    aligned = align(encoded, target=plan.target, target_features=plan.target_features, grid=config.grid)
    points = study[plan.target].obs[["series", "time"]]
    unknown = np.setdiff1d(aligned.series, np.unique(points["series"].astype(str).to_numpy()))
    times = np.unique(points["time"].to_numpy(dtype=float))
    if unknown.size or (config.grid == "target" and np.setdiff1d(aligned.times, times).size):
        raise PluginError(f"the encoder of target modality '{plan.target}' invented series or time points "
                          f"({', '.join(map(str, unknown[:3])) or 'times'}); it may only keep or drop rows")
    aligned.report[:0] = design_report
    from biocount.defaults import TARGET

    if config.target is None and len(plan.names) > 1 and plan.target != TARGET:  # chosen, not asked for: say so
        aligned.report.insert(0, f"target: {plan.target} (no '{TARGET}' among --modalities {','.join(plan.names)}, "
                                 "so the first is forecast); choose with --target MOD or MOD:FEATURE,...")
    aligned.report.extend(flat_target_notes(aligned))
    shared = float(aligned.present.mean())
    if shared < 0.5:
        aligned.report.append(f"series are measured at different times: each covers {shared:.0%} of the shared grid "
                              "on average, so horizons skip other series' times; consider --time-axis index")
    return aligned


def backtest(config: RunConfig, plan: Plan, aligned: Any, grid_split: Any, log, ensembles: list[str] | None = None) -> Any:
    """Stage 5: fit every forecaster (and ablation), forecast identical origins, ensemble on validation
    (``ensembles``: default ``config.ensemble``, else the headline stack)."""
    from threadpoolctl import threadpool_limits

    from biocount.evaluation.backtest import run_backtest
    from biocount.evaluation.candidates import ablations, many_local_fits, views_of

    inputs = [n for n in plan.names if n != plan.target]
    for line in many_local_fits(plan.forecasters, aligned):  # before the wait, not after it
        log(line)
        aligned.report.append(line)
    views = views_of(plan.forecasters, aligned, inputs)
    if config.ablate_modalities:
        plan.forecasters |= ablations(plan.forecasters, aligned, inputs, models=config.models)
    log("backtesting " + ", ".join(plan.forecasters))
    ensembles = config.ensemble if ensembles is None else ensembles
    if ensembles is None:  # the headline: a validation-weighted stack, where there is something to stack
        ensembles = ["stack"] if len(config.models) > 1 or views else []
    with threadpool_limits(limits=plan.threads["blas"]):  # BLAS / OpenMP of this process
        return run_backtest(aligned, grid_split, plan.forecasters, horizon=config.horizon, seed=config.seed,
                            levels=config.levels, ensembles=ensembles, ensemble_per=config.ensemble_per,
                            baselines=plan.baselines, log=log,
                            strict=config.ensemble is not None, views=views)


def explain(config: RunConfig, plan: Plan, bt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 6: permutation importance of each input modality for every model that uses inputs, and
    integrated-gradient attributions (feature x lookback step) for those that can be differentiated."""
    from biocount.evaluation.importance import attributions, permutation

    users = {n: p.capabilities for n, p in plan.forecasters.items()
             if p.capabilities.uses_inputs and p.ablation_of is None and n in bt.fitted}
    importance = {n: imp for n in users if (imp := permutation(bt, n, seed=config.seed))}
    return importance, {n: ig.summary() for n, can in users.items()
                        if can.explainable and (ig := attributions(bt, n)) is not None}
