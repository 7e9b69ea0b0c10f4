"""The engine behind ``biocount run`` and ``bc.run``: read -> encode -> align -> backtest -> report.

:func:`run` takes a :class:`RunConfig` and returns a :class:`RunResult` holding everything the CLI
writes; :func:`write` puts it in a folder atomically (a failed or interrupted run never leaves a
folder that looks complete).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._version import PLUGIN_API, __version__
from .config import SHARED_OPTIONS, RunConfig, config_from, validated  # noqa: F401  (engine.RunConfig & co. stay)
from .errors import BiocountInputError, PluginError


@dataclass
class RunResult:
    config: RunConfig
    comparison: pd.DataFrame
    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    info: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict)
    backtest: Any = None
    observed: pd.DataFrame | None = None
    scores: pd.DataFrame | None = None  # scores.csv: hub-grade probabilistic scores (biocount.scoring)
    encoded: pd.DataFrame | None = None  # forecasts_encoded.csv: forecasts on the encoder's scale, where
    # forecasts.csv is in the data's units (biocount.units)
    checkpoints: list[str] = field(default_factory=list)  # forecasters that declare Capabilities.checkpointable
    rank: int = 0  # under torchrun: this process's rank; only rank 0's result is complete and written

    def write(self, out: str | Path | None = None, *, overwrite: bool | None = None) -> Path:
        """Write the folder ``biocount run`` writes (see :func:`write`)."""
        return write(self, out, overwrite=overwrite)


def _fingerprint(config: RunConfig) -> list[dict[str, Any]]:
    out = []
    for source in config.data or ["demo"]:
        if source == "demo":
            out.append({"source": "demo", "seed": config.demo_seed})
            continue
        path = Path(source)
        if not path.is_file():
            out.append({"source": source})
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        out.append({"source": source, "sha256": digest.hexdigest(), "bytes": path.stat().st_size})
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scipy", "torch", "statsmodels", "anndata", "mudata", "pluggy", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def run(config: RunConfig, *, host: Any = None, log=None, data: Any = None) -> RunResult:
    """Run the whole pipeline, stage by stage (see the module docstring).

    ``data`` (an AnnData, MuData or ``{modality: AnnData}``) replaces reading ``config.data``. With
    ``--dask`` per-series work goes to a Dask cluster (:mod:`biocount.parallel`); under torchrun the
    ranks train the LSTM together and only rank 0 runs the rest (:mod:`biocount.ddp`).
    """
    from . import ddp
    from .parallel import dask_cluster
    from .plugins import load_host

    if ddp.follower():  # torchrun ranks > 0 say nothing; rank 0 speaks for the run
        config, log = config.model_copy(update={"quiet": True}), None
    log, clock = log or (lambda msg: None), _Clock()
    plan = resolve(config, host or load_host())
    clock.lap("resolve")
    with ddp.process_group(_ddp_device(plan)) as rank, dask_cluster(config.dask, log=log):
        ddp.agree(json.dumps([json.loads(config.model_dump_json(exclude={"quiet"})), _fingerprint(config)]))
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
        metrics, comparison, forecasts = bt.metrics(), bt.comparison(), bt.forecasts_frame()  # fill bt.notes
        scores = bt.scores()
        clock.lap("report")
        importance, attributions = explain(config, plan, bt)
        clock.lap("explain")
    info = run_info(config, plan, split, encoded, aligned, bt, clock) | {"importance": importance,
                                                                         "attributions": attributions}
    encoded_frame = bt.forecasts_frame(encoded=True) if aligned.units is not None else None
    saved = [n for n, (comp, *_rest) in plan.forecasters.items() if comp.spec.capabilities.checkpointable
             and "[" not in n and n in bt.fitted]
    return RunResult(config, comparison, metrics, forecasts, info, bt.fitted, bt, observed_frame(aligned), scores,
                     encoded_frame, saved)


def _ddp_device(plan: Plan) -> str:
    """The device torchrun's backend serves: the one the distributed forecasters resolved (an LSTM given
    ``options: lstm: {device: cpu}`` trains on the CPU, so gloo, whatever the run-wide --device)."""
    devices = {getattr(m.options, "device", "auto") for c, m, *_ in plan.forecasters.values()
               if c.spec.capabilities.distributed}
    return "cpu" if devices <= {"cpu"} else ("cuda" if "cuda" in devices else "auto")


def follow(config: RunConfig, plan: Plan, data: Any, rank: int) -> RunResult:
    """A torchrun rank other than 0: the same study, read, encoded and aligned, and the distributed
    forecasters (and their ablations) fitted together with rank 0, in rank 0's order; nothing written."""
    plan.forecasters = {n: e for n, e in plan.forecasters.items() if e[0].spec.capabilities.distributed}
    study, design_report = read_study(config, plan, data)
    split = split_study(config, plan, study)
    aligned = align_study(config, plan, encode_study(config, plan, study, split), study, design_report)
    bt = backtest(config, plan, aligned, split.on_grid(aligned), lambda msg: None, ensembles=[])
    return RunResult(config, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {"rank": rank}, bt.fitted, bt, rank=rank)


def observed_frame(aligned: Any) -> pd.DataFrame:
    """Every observed target value on the grid, long form (observed.csv: the history the report plots), in
    the data's units where the target's encoder declares them, as forecasts.csv."""
    from .backtest import grid_in_units

    s, t, f = np.nonzero(~np.isnan(aligned.y))
    y = aligned.y if aligned.units is None else grid_in_units(aligned)
    return pd.DataFrame({"series": aligned.series[s].astype(str), "feature": aligned.target_features[f].astype(str),
                         "time": aligned.times[t], "observed": y[s, t, f]})


def units_info(aligned: Any, encoded: dict[str, Any]) -> dict[str, Any]:
    """run.json "units": the scale of forecasts.csv, observed.csv and bc.tl's results, and how to get there."""
    if aligned.units is None:
        how = encoded[aligned.target].meta.normalisation
        return {"forecasts": "encoded", "label": f"{aligned.target} as encoded ({how})",
                "why": f"the encoder of '{aligned.target}' declares no data units ({how} cannot be inverted feature "
                       "by feature), so forecasts stay on its scale"}
    point = "mean: Duan's smearing over validation residuals" if aligned.units.log1p else "mean"
    return {"forecasts": "data", "point": point} | aligned.units.summary()


class _Clock:
    """Seconds and peak memory (MB, so far) per stage, for run.json."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.rss: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        import resource

        now = time.perf_counter()
        self.timings[stage] = round(now - self.last, 3)
        self.rss[stage] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        self.last = now


@dataclass
class Plan:
    """What the options resolve to before any data is read: names, the target, built forecasters."""

    host: Any
    target: str
    target_features: list[str] | None
    names: list[str]  # every modality the run reads, the target included
    overrides: dict[str, str]  # modality -> encoder reference given as name=encoder
    forecasters: dict[str, tuple]
    threads: dict[str, Any]
    origins: Any  # the --origins table, or None


def resolve(config: RunConfig, host: Any) -> Plan:
    """Stage 0: check the host and the options, build every forecaster (fails fast, before reading)."""
    from .ddp import launched

    host.raise_for_registry()
    host.raise_for_strict()
    if config.dask and launched():
        raise BiocountInputError("--dask: not under torchrun (every rank would start its own cluster); use one or "
                                 "the other: torchrun for the LSTM, --dask for per-series work")
    target, target_features = config.target_spec()
    names = [c.name for c in config.choices]
    overrides = {c.name: c.encoder for c in config.choices if c.encoder}
    if target not in names:
        names.append(target)  # the target's own history is always an input
    _check_options_keys(config, names, overrides, host)
    threads = thread_policy(config)
    forecasters = _build_forecasters(config, host, threads["threads"])
    origins = None
    if config.origins is not None:
        from .split import read_origins

        origins = read_origins(config.origins, series_key=config.series_key)
    return Plan(host, target, target_features, names, overrides, forecasters, threads, origins)


def read_study(config: RunConfig, plan: Plan, data: Any) -> tuple[dict[str, Any], list[str]]:
    """Stage 1: the study as {modality: AnnData}, after the declared design; the design's report."""
    data, source = _read(config, plan.host, data)
    missing = [n for n in plan.names if n not in data]
    if missing:
        from .plugins import did_you_mean

        raise BiocountInputError(f"modality '{missing[0]}' is not in {source}{did_you_mean(missing[0], list(data))}; "
                                 f"available: {', '.join(data)}")
    data, report = _design(config, data, plan.target)
    if config.time_axis == "index":
        data = _observation_index(data, plan.names)
    if "time" not in data[plan.target].obs:
        raise BiocountInputError(f"target modality '{plan.target}' has no time column; choose a time-resolved target")
    return data, report


def split_study(config: RunConfig, plan: Plan, study: dict[str, Any]) -> Any:
    """Stage 2: roles, cuts and origins from the target's measured points (biocount.split)."""
    from .split import make_split

    return make_split(study[plan.target].obs[["series", "time"]], horizon=config.horizon, kind=config.split,
                      test_size=config.test_size, val_size=config.val_size, train_series=config.train_series,
                      val_series=config.val_series, test_series=config.test_series, warmup=config.warmup,
                      origins=plan.origins, seed=config.seed)


def encode_study(config: RunConfig, plan: Plan, study: dict[str, Any], split: Any) -> dict[str, Any]:
    """Stage 3: every modality through its encoder, fitted on training rows only."""
    from .encode import encode

    encoded, _ = encode(study, plan.names, plan.host, train=split.train_selection(), options=config.options,
                        overrides=plan.overrides)
    return encoded


def align_study(config: RunConfig, plan: Plan, encoded: dict[str, Any], study: dict[str, Any],
                design_report: list[str]) -> Any:
    """Stage 4: one grid; the target encoder may keep or drop rows, never invent them."""
    from .align import align

    aligned = align(encoded, target=plan.target, target_features=plan.target_features, grid=config.grid)
    points = study[plan.target].obs[["series", "time"]]
    unknown = np.setdiff1d(aligned.series, np.unique(points["series"].astype(str).to_numpy()))
    times = np.unique(points["time"].to_numpy(dtype=float))
    if unknown.size or (config.grid == "target" and np.setdiff1d(aligned.times, times).size):
        raise PluginError(f"the encoder of target modality '{plan.target}' invented series or time points "
                          f"({', '.join(map(str, unknown[:3])) or 'times'}); it may only keep or drop rows")
    aligned.report[:0] = design_report
    from .defaults import TARGET

    if config.target is None and len(plan.names) > 1 and plan.target != TARGET:  # chosen, not asked for: say so
        aligned.report.insert(0, f"target: {plan.target} (no '{TARGET}' among --modalities {','.join(plan.names)}, "
                                 "so the first is forecast); choose with --target MOD or MOD:FEATURE,...")
    aligned.report.extend(_flat_target_notes(aligned))
    shared = float(aligned.present.mean())
    if shared < 0.5:
        aligned.report.append(f"series are measured at different times: each covers {shared:.0%} of the shared grid "
                              "on average, so horizons skip other series' times; consider --time-axis index")
    return aligned


def backtest(config: RunConfig, plan: Plan, aligned: Any, grid_split: Any, log, ensembles: list[str] | None = None) -> Any:
    """Stage 5: fit every forecaster (and ablation), forecast identical origins, ensemble on validation
    (``ensembles``: default ``config.ensemble``, else the headline stack)."""
    from threadpoolctl import threadpool_limits

    from .backtest import run_backtest

    inputs = [n for n in plan.names if n != plan.target]
    for line in _many_local_fits(plan.forecasters, aligned):  # before the wait, not after it
        log(line)
        aligned.report.append(line)
    views = _views(plan.forecasters, aligned, inputs)
    reference = _add_ablations(config, plan.forecasters, aligned, inputs)
    log("backtesting " + ", ".join(plan.forecasters))
    ensembles = config.ensemble if ensembles is None else ensembles
    if ensembles is None:  # the headline: a validation-weighted stack, where there is something to stack
        ensembles = ["stack"] if len(config.models) > 1 or views else []
    with threadpool_limits(limits=plan.threads["blas"]):  # BLAS / OpenMP of this process
        return run_backtest(aligned, grid_split, plan.forecasters, horizon=config.horizon, seed=config.seed,
                            levels=config.levels, ensembles=ensembles, ensemble_per=config.ensemble_per,
                            reference=reference, baselines=_baselines(config, plan), log=log,
                            strict=config.ensemble is not None, views=views)


def explain(config: RunConfig, plan: Plan, bt: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage 6: permutation importance of each input modality for every model that uses inputs, and
    integrated-gradient attributions (feature x lookback step) for those that can be differentiated."""
    from .importance import attributions, permutation

    users = {n: comp.spec.capabilities for n, (comp, *_rest) in plan.forecasters.items()
             if comp.spec.capabilities.uses_inputs and "[" not in n and n in bt.fitted}
    importance = {n: imp for n in users if (imp := permutation(bt, n, seed=config.seed))}
    return importance, {n: ig.summary() for n, can in users.items()
                        if can.explainable and (ig := attributions(bt, n)) is not None}


def _baselines(config: RunConfig, plan: Plan) -> list[str]:
    return [b for b in config.baselines if b in plan.forecasters]


def run_info(config: RunConfig, plan: Plan, split: Any, encoded: dict[str, Any], aligned: Any, bt: Any,
             clock: _Clock) -> dict[str, Any]:
    """Stage 7: run.json: what ran, on what, how long, what was scored, every note."""
    reports = {name: _report(model) for name, model in bt.fitted.items()}
    host = plan.host
    info = {
        "biocount": __version__, "plugin_api": PLUGIN_API, "config": json.loads(config.model_dump_json()),
        "target": {"modality": plan.target, "features": aligned.target_features.tolist()},
        "data": _fingerprint(config), "split": split.summary(), "design": _design_of(config).summary(),
        "scored": bt.scored(), "baselines": _baselines(config, plan),
        "origins": {"validation": int(bt.val_origins.shape[0]), "test": int(bt.test_origins.shape[0])},
        "grid": {"kind": config.grid, "points": int(aligned.times.size)},
        "modalities": {n: {"shape": list(d.shape), "encoder": d.meta.encoder, "normalisation": d.meta.normalisation}
                       for n, d in encoded.items()},
        "alignment_report": aligned.report,
        "plugins": {"forecasters": {n: {"component": c.ref, "version": c.plugin.version, "options": m.options.model_dump()
                                        if hasattr(m.options, "model_dump") else None}
                                    for n, (c, m, *_) in plan.forecasters.items()},
                    "encoders": {n: d.meta.encoder for n, d in encoded.items()}},
        "registry": {"files": [str(p) for p in host.loaded_registry.sources], "sha256": host.loaded_registry.sha256},
        "versions": _versions(), "timings_s": clock.timings, "peak_rss_mb": clock.rss,
        "forecasters": {n: {"timings_s": bt.timings.get(n, {})} | r for n, r in reports.items()},
        "failed": bt.failed, "ensembles": bt.weights, "modality_sets": bt.modality_sets(),
        "scores": bt.score_summary(), "units": units_info(aligned, encoded),
        "conformal_levels": config.levels, "threads": plan.threads,
        "headline": next((n for n in bt.weights), next(n for n in config.models if n in bt.forecasts)),
    }
    from .verdict import verdict

    level = min(config.levels, key=lambda lv: abs(lv - 0.8))
    info["verdict"] = verdict(bt, bt.comparison(), info["headline"], info["baselines"], level)
    info["notes"] = ([f"{n}: {note}" for n, d in encoded.items() for note in d.meta.notes]
                     + aligned.report + split.notes
                     + [f"series {s} not scored: {why}" for s, why in split.unscored.items()]
                     + bt.notes + [f"{n}: {note}" for n, r in reports.items() for note in r.get("notes", [])]
                     + [why for why in [info["units"].get("why")] if why])
    return info


def _design_of(config: RunConfig) -> Any:
    from .design import Design

    return Design(link=dict(config.link), replicates=config.replicates, period=config.period,
                  time_scale=dict(config.time_scale))


def _design(config: RunConfig, data: dict[str, Any], target: str) -> tuple[dict[str, Any], list[str]]:
    """Clocks, replicates and shared modalities as declared (biocount.design); nothing when none is."""
    from .design import Design, apply

    design = _design_of(config)
    return (data, []) if design == Design() else apply(data, target=target, design=design)


def _flat_target_notes(aligned: Any) -> list[str]:
    """A note for target features that never change within any series (scores would mean nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing series has no spread: not "flat"
        spread = np.nanmax(np.nanstd(aligned.y, axis=1), axis=0)  # the largest within-series spread per feature
    flat = [str(f) for f, sd in zip(aligned.target_features, spread, strict=True) if sd == 0]
    if not flat:
        return []
    return [f"target feature(s) {', '.join(flat[:5])} never change within any series: every forecaster is trivially "
            "exact there and MSE / R² mean nothing; check the data and the encoder's normalisation"]


def thread_policy(config: RunConfig) -> dict[str, Any]:
    """How many CPU threads this process uses: --threads, else $BIOCOUNT_THREADS, else the automatic policy.

    Explicit: torch (each forecaster's ``threads`` option) and BLAS/OpenMP (threadpoolctl) are held to N.
    Automatic (measured, docs/performance.md "Threads"): BLAS runs on 1 thread (statsmodels' and numpy's
    matrices here are tiny), and the LSTM picks 1 thread for small models and torch's default for large
    ones. Worker processes (ARIMA) always use one thread each, so N workers use N cores, never N x cores.
    """
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = os.environ.get("BIOCOUNT_THREADS")
    if config.threads is not None:
        return {"threads": config.threads, "blas": config.threads, "source": "--threads", "cores_available": cores}
    if env:
        try:
            n = int(env)
            if n < 1:
                raise ValueError
        except ValueError:
            raise BiocountInputError(f"BIOCOUNT_THREADS={env}: not a positive whole number; unset it or use e.g. "
                                     "BIOCOUNT_THREADS=2") from None
        return {"threads": n, "blas": n, "source": "BIOCOUNT_THREADS", "cores_available": cores}
    return {"threads": None, "blas": 1, "source": "automatic", "cores_available": cores}


def _check_options_keys(config: RunConfig, modalities: list[str], overrides: dict[str, str], host: Any) -> None:
    """``options`` are keyed by a modality of the run or by an installed forecaster (a shared config file
    may hold options of forecasters this run does not use); anything else is a typo, not ignored."""
    forecasters = sorted({c.spec.name for c in host.components("forecaster")} | set(host.registry.models))
    for key in config.options:
        if key in modalities or key in forecasters:
            continue
        mods = [m for m, enc in overrides.items() if enc.split(":")[-1] == key]
        hint = (f"options of an encoder are keyed by modality: use '{mods[0]}'" if mods else
                f"valid keys: the modalities {', '.join(modalities)} or the forecasters {', '.join(forecasters)}")
        raise BiocountInputError(f"options: '{key}' is neither a modality of this run nor a forecaster; {hint}")


def _build_forecasters(config: RunConfig, host: Any, threads: int | None) -> dict[str, tuple]:
    """Resolve and build every forecaster before any heavy work; shared options go where declared."""
    if len(set(config.models)) != len(config.models):
        raise BiocountInputError(f"--models lists a forecaster twice: {', '.join(config.models)}")
    shared = dict(config.model_options) | {"n_jobs": config.jobs, "quiet": config.quiet, "threads": threads}
    if config.period is not None:  # the study's cycle, for forecasters that forecast from it (climatology)
        shared["period"] = config.period
    unknown = set(config.model_options) - set(SHARED_OPTIONS)
    if unknown:
        raise BiocountInputError(f"model option '{sorted(unknown)[0]}' is not shared; use options: "
                                 f"{{<forecaster>: {{{sorted(unknown)[0]}: ...}}}} for one forecaster's options")
    forecasters, taken = {}, set()
    for name in config.models:
        comp = host.forecaster(name)
        fields = getattr(comp.spec.options, "model_fields", {})
        mine = {k: v for k, v in shared.items() if k in fields}
        taken |= set(mine)
        forecasters[name] = (comp, comp.build(**(mine | dict(config.options.get(name, {})))))
    unused = sorted(set(config.model_options) - taken)
    if unused:
        raise BiocountInputError(f"--{unused[0]}: none of the forecasters {', '.join(config.models)} takes this "
                                 "option; drop it or add a forecaster that does")
    return forecasters


def _read(config: RunConfig, host: Any, data: Any) -> tuple[dict[str, Any], str]:
    """The study as {modality: AnnData} from ``data`` or the configured sources, and a name for messages."""
    from .readers import as_modalities, read

    sources = config.data or ["demo"]
    if data is not None:
        return as_modalities(data, where="data", time_key=config.time_key, series_key=config.series_key), "the data"
    out, origin = {}, {}
    for src in sources:
        if src == "demo":
            from .datasets import demo

            part = as_modalities(demo(seed=config.demo_seed), where="demo study", time_key=config.time_key,
                                 series_key=config.series_key)
        else:
            part = read(src, time_key=config.time_key, series_key=config.series_key, host=host)
        for mod, adata in part.items():
            if mod in out:
                raise BiocountInputError(f"modality '{mod}' is in both {origin[mod]} and {src}; rename one of them")
            out[mod], origin[mod] = adata, src
    return out, " + ".join("the demo study" if s == "demo" else s for s in sources)


def _add_ablations(config: RunConfig, forecasters: dict[str, tuple], aligned: Any, inputs: list[str]) -> dict[str, str]:
    """With --ablate-modalities: each forecaster that uses inputs, again on every subset of them."""
    if not config.ablate_modalities:
        return {}
    users = [n for n, (c, _m) in forecasters.items() if c.spec.capabilities.uses_inputs]
    if not users:
        raise BiocountInputError("--ablate-modalities compares a model on modality subsets, but none of "
                                 f"{', '.join(config.models)} uses input modalities; add one that does (e.g. lstm)")
    reference = {}
    for name in users:
        comp, model = forecasters[name]
        for subset, restricted in _ablations(aligned, inputs):
            label = f"{name}[{'+'.join([*subset, aligned.target])}]"
            forecasters[label] = (comp, comp.build(**model.options.model_dump()), restricted)
            reference[label] = name
    return reference


MANY_LOCAL_FITS = 20_000  # series x target features from which a per-feature local model is said to be slow


def _many_local_fits(forecasters: dict[str, tuple], aligned: Any) -> list[str]:
    """A line per forecaster that fits one model per series and feature, where there are very many of them
    (a 100,000-column table as the target): said before fitting, so a long run is not a silent one."""
    n = int(aligned.series.size * aligned.target_features.size)
    if n < MANY_LOCAL_FITS:
        return []
    return [f"{name} fits one model per series x target feature: {n:,} here ({aligned.series.size:,} series x "
            f"{aligned.target_features.size:,} features), which can take hours; forecast fewer features with "
            f"--target {aligned.target}:F1,F2,... or leave {name} out of --models"
            for name, (comp, *_rest) in forecasters.items() if comp.spec.capabilities.local_fits]


VIEW_SUBSETS_UP_TO = 3  # input modalities up to which every subset is a view (2^3 = 8 views); above: all or none


def _views(forecasters: dict[str, tuple], aligned: Any, inputs: list[str]) -> dict[str, dict[str, Any]]:
    """The headline's modality-subset candidates: for each forecaster that forecasts from any subset of its
    inputs (``Capabilities.subsets``), every proper subset of the input modalities (the target alone at
    least), labelled by what it reads: ``lstm(protein)`` is the LSTM on the target's history only."""
    from itertools import combinations

    from .backtest import View

    static = [str(n).split(":")[0] for n in (aligned.static_names if aligned.static_names is not None else [])]
    blocks = {m: [b for b in dict.fromkeys([*aligned.inputs, *static]) if _block_of(b, inputs) == m] for m in inputs}
    present = [m for m in inputs if blocks[m]]
    if not present:
        return {}
    sizes = range(len(present)) if len(present) <= VIEW_SUBSETS_UP_TO else [0]
    subsets = [kept for k in sizes for kept in combinations(present, k)]
    out = {}
    for name, (comp, *_rest) in forecasters.items():
        if comp.spec.capabilities.subsets:
            out[name] = {f"{name}({'+'.join([*kept, aligned.target])})": View(
                name, off=tuple(b for m in present if m not in kept for b in blocks[m]), reads=kept,
                drops=tuple(m for m in present if m not in kept)) for kept in subsets}
    return out


def _block_of(name: str, modalities: list[str]) -> str:
    """The modality an aligned input block belongs to: its own name, or ``modality_*`` (an encoder may write
    extra blocks, e.g. rna's ``rna_celltypes``)."""
    return next((m for m in modalities if name == m or name.startswith(f"{m}_")), name)


def _report(model: Any) -> dict[str, Any]:
    """A forecaster's own report (the Forecaster protocol), tolerating plugins written before it."""
    report = model.report() if hasattr(model, "report") else {}
    return dict(report or {})


def _observation_index(data: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Replace each series' times by their rank among that series' times in all used modalities."""
    timed = [n for n in names if "time" in data[n].obs]
    union = pd.concat([data[n].obs[["series", "time"]] for n in timed]).drop_duplicates()
    union["rank"] = union.groupby("series")["time"].rank(method="dense") - 1
    rank = union.set_index(["series", "time"])["rank"]
    out = dict(data)
    for n in timed:
        adata = data[n].copy()
        keys = pd.MultiIndex.from_frame(adata.obs[["series", "time"]])
        adata.obs["time"] = rank.reindex(keys).to_numpy(dtype=float)
        out[n] = adata
    return out


def _ablations(aligned: Any, inputs: list[str]):
    """Every proper subset of the non-target input modalities (the target's history always stays)."""
    from dataclasses import replace
    from itertools import combinations

    for k in range(len(inputs)):
        for subset in combinations(inputs, k):
            keep = set(subset) | {aligned.target}
            kept_inputs = {n: v for n, v in aligned.inputs.items() if _block_of(n, inputs) in keep}
            static = static_names = None
            if aligned.static is not None:
                cols = [i for i, n in enumerate(aligned.static_names) if n.split(":")[0] in keep]
                if cols:
                    static, static_names = aligned.static[:, cols], aligned.static_names[cols]
            yield list(subset), replace(aligned, inputs=kept_inputs, static=static, static_names=static_names)


def write(result: RunResult, out: str | Path | None = None, *, overwrite: bool | None = None) -> Path:
    """Write metrics.csv, forecasts.csv, observed.csv, run.json and the LSTM checkpoint to ``out``, atomically
    (:mod:`biocount.output`: nothing is lost, --overwrite replaces only biocount's own folders)."""
    from .output import write_folder

    out = Path(out or result.config.out)
    overwrite = result.config.overwrite if overwrite is None else overwrite

    def fill(tmp: Path) -> None:
        result.metrics.to_csv(tmp / "metrics.csv", index=False)
        result.forecasts.to_csv(tmp / "forecasts.csv", index=False)
        if result.encoded is not None:
            result.encoded.to_csv(tmp / "forecasts_encoded.csv", index=False)
        if result.scores is not None:
            result.scores.to_csv(tmp / "scores.csv", index=False)
        if result.observed is not None:
            result.observed.to_csv(tmp / "observed.csv", index=False)
        for name in result.checkpoints:  # forecasters that declare they can save themselves
            result.fitted[name].save(tmp / f"{name}.pt")
        info = dict(result.info)
        info["timings_s"] = dict(info["timings_s"])
        (tmp / "run.json").write_text(json.dumps(info, indent=2, default=_json_default))
        from .report import build

        try:  # report.html, from the files above only; a report that fails must not cost the results
            build(tmp)
        except Exception as exc:  # any failure: said loudly, results kept
            import logging

            logging.getLogger("biocount").warning(
                "report.html could not be built (%s: %s); the results are written: rebuild it later with "
                "biocount report %s", type(exc).__name__, exc, out)

    return write_folder(out, fill, overwrite=overwrite)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


