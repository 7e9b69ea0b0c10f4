"""The engine behind ``biocount run`` and ``bc.run``: read -> encode -> align -> backtest -> report.

:func:`run` takes a :class:`RunConfig` and returns a :class:`RunResult` holding everything the CLI
writes; :func:`write` puts it in a folder atomically (a failed or interrupted run never leaves a
folder that looks complete).
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._version import PLUGIN_API, __version__
from .errors import BiocountInputError, PluginError

#: Run-wide conveniences (CLI flags) handed to every chosen forecaster whose options declare them.
SHARED_OPTIONS = ("lookback", "device", "cell", "preset", "n_jobs", "quiet", "threads")


class RunConfig(BaseModel):
    """Every option of a run; a ``--config run.yaml`` holds the same keys."""

    model_config = ConfigDict(extra="forbid")

    data: list[str] = Field(default_factory=list,
                            description="Study files (.h5mu, .h5ad, .csv, .tsv), merged; 'demo' is the demo study; "
                                        "none: the demo study.")
    modalities: list[str] = Field(default=["rna", "protein"],
                                  description="Modalities to use; 'name=encoder' overrides the registry's mapping.")
    target: str | None = Field(default=None, description="'protein' or 'protein:P01,protein:P07'; default protein, "
                                                         "else the first modality.")
    horizon: int = Field(default=3, ge=1, description="Grid steps forecast from each origin.")
    models: list[str] = Field(default=["lstm", "arima", "naive"], description="Forecasters to compare.")
    baselines: list[str] = Field(default=["arima", "naive"],
                                 description="Forecasters every other one is tested against (Diebold-Mariano); "
                                             "those not in --models are left out.")
    split: Literal["time", "series"] = Field(
        default="time", description="time: each series' last points are scored; series: held-out series are.")
    test_size: int | None = Field(default=None, ge=1,
                                  description="Points of each series scored (default 25 %); series split: each test "
                                              "series' last points, unless --warmup or --origins say otherwise.")
    val_size: int | None = Field(default=None, ge=1,
                                 description="Points of each series validating, before the scored ones (default 20 %).")
    train_series: list[str] | float | None = Field(default=None, description="Series split: series the models learn "
                                                   "from (comma list or file of names; default: the rest).")
    val_series: list[str] | float | None = Field(default=None, description="Series split: validation series (names or "
                                                 "a fraction of the training series; default 20 % of them).")
    test_series: list[str] | float | None = Field(default=None, description="Series split: test series (names or a "
                                                  "fraction; default 25 %, or the series in --origins).")
    warmup: int | None = Field(default=None, ge=1, description="Series split: points of each validation and test "
                                                               "series seen before its first origin.")
    origins: Path | None = Field(default=None, description="CSV of (series, origin) to score exactly, for every "
                                                           "forecaster.")
    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Random seed: same seed, data and CPU, same numbers.")
    jobs: int = Field(default=1, ge=-1, description="Processes for per-series work (ARIMA); -1: all cores.")
    threads: int | None = Field(default=None, ge=1,
                                description="CPU threads of this process (torch, BLAS); default $BIOCOUNT_THREADS, else "
                                            "the cores available. Worker processes always use 1 each.")
    out: Path = Path("biocount-out")
    overwrite: bool = False
    quiet: bool = False
    time_key: str | None = None
    series_key: str | None = None
    demo_seed: int = Field(default=0, description="Seed of the demo study when no data is given.")
    ensemble: list[str] = Field(default_factory=list, description="Ensembles of the models: mean, inverse, stack.")
    ensemble_per: Literal["pooled", "feature"] = Field(default="pooled", description="Fit ensemble weights per feature or pooled.")
    levels: list[float] = Field(default=[0.8, 0.95], description="Prediction interval levels.")
    ablate_modalities: bool = Field(default=False, description="Also fit the LSTM on each subset of the input modalities.")
    grid: Literal["target", "union"] = Field(
        default="target", description="target: the target's time points; union: every modality's time points.")
    time_axis: Literal["time", "index"] = Field(
        default="time", description="time: the measured times; index: each series' own observation order "
                                    "(for series measured at unrelated times).")
    options: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                               description="Per component (encoder or forecaster name): its options.")
    model_options: dict[str, Any] = Field(
        default_factory=dict, description="Options handed to every chosen forecaster that declares them: "
                                          f"{', '.join(SHARED_OPTIONS)} (the CLI's --lookback, --device, --cell, --preset).")

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        """Old spellings: ``holdout`` is ``test_series``; lookback/device/cell/preset are model options."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "holdout" in data:
            data.setdefault("test_series", data.pop("holdout"))
        moved = {k: data.pop(k) for k in ("lookback", "device", "cell", "preset") if k in data}
        moved = {k: v for k, v in moved.items() if v is not None}
        if moved:
            data["model_options"] = {**moved, **(data.get("model_options") or {})}
        return data

    @field_validator("train_series", "val_series", "test_series", mode="before")
    @classmethod
    def _series_list(cls, value: Any) -> Any:
        """A comma list, a fraction, or a file with one series name per line; names stay strings."""
        if not isinstance(value, str):
            return [str(v) for v in value] if isinstance(value, (list, tuple)) else value
        text = value.strip()
        if re.fullmatch(r"[+-]?(\d*\.\d+|0)", text):  # a fraction; '007' stays a series name
            return float(text)
        path = Path(text)
        if path.is_file():
            names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
            return [n for n in names if not n.startswith("#")]
        return [v.strip() for v in text.split(",") if v.strip()]

    @field_validator("jobs")
    @classmethod
    def _jobs(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 processes cannot run anything; use 1, N, or -1 (all cores)")
        return value

    @field_validator("data", mode="before")
    @classmethod
    def _data_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, (str, Path)):
            return [str(value)]
        return [str(v) for v in value]

    @field_validator("levels", mode="before")
    @classmethod
    def _levels(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = [float(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise ValueError(f"'{value}' is not a comma list of numbers; use e.g. 0.8,0.95") from None
        from .intervals import check_levels

        return check_levels(list(value))

    @field_validator("ensemble", mode="before")
    @classmethod
    def _ensembles(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        from .ensemble import METHODS

        bad = [v for v in value if v not in METHODS]
        if bad:
            raise ValueError(f"unknown ensemble '{bad[0]}'; use {', '.join(METHODS)}")
        return value

    @field_validator("modalities", "models", "baselines", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("modalities", "models")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("empty: name at least one, e.g. rna,protein for modalities or lstm,naive for models")
        return value

    def target_spec(self) -> tuple[str, list[str] | None]:
        names = [m.split("=")[0] for m in self.modalities]
        if self.target is None:
            return ("protein" if "protein" in names else names[0]), None
        parts = [p.strip() for p in self.target.split(",") if p.strip()]
        mods = {p.split(":", 1)[0] for p in parts}
        if len(mods) != 1:
            raise BiocountInputError(f"--target {self.target}: features must come from one modality, got {', '.join(sorted(mods))}")
        features = [p.split(":", 1)[1] for p in parts if ":" in p]
        return mods.pop(), (features or None)


@dataclass
class RunResult:
    config: RunConfig
    comparison: pd.DataFrame
    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    info: dict[str, Any]
    fitted: dict[str, Any] = field(default_factory=dict)
    backtest: Any = None

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
    """Run the whole pipeline (see the module docstring).

    ``data`` (an AnnData, MuData or ``{modality: AnnData}``) replaces reading ``config.data``.
    """
    from .align import align
    from .backtest import run_backtest
    from .encode import encode
    from .plugins import load_host
    from .split import make_split

    log = log or (lambda msg: None)
    timings: dict[str, float] = {}
    rss: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        import resource

        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        rss[stage] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # peak so far, MB
        clock = now

    host = host or load_host()
    host.raise_for_registry()
    host.raise_for_strict()
    target, target_features = config.target_spec()
    names = [m.split("=")[0] for m in config.modalities]
    overrides = {m.split("=")[0]: m.split("=", 1)[1] for m in config.modalities if "=" in m}
    if target not in names:
        names.append(target)  # the target's own history is always an input
    _check_options_keys(config, names, overrides, host)
    threads = thread_policy(config)
    forecasters = _build_forecasters(config, host, threads["threads"])
    origins_table = None
    if config.origins is not None:
        from .split import read_origins

        origins_table = read_origins(config.origins, series_key=config.series_key)
    lap("resolve")

    log("reading data")
    data, source = _read(config, host, data)
    missing = [n for n in names if n not in data]
    if missing:
        raise BiocountInputError(f"modality '{missing[0]}' is not in {source}; "
                                 f"available: {', '.join(data)}")
    if config.time_axis == "index":
        data = _observation_index(data, names)
    lap("read")

    tgt = data[target]
    if "time" not in tgt.obs:
        raise BiocountInputError(f"target modality '{target}' has no time column; choose a time-resolved target")
    points = tgt.obs[["series", "time"]]
    split = make_split(points, horizon=config.horizon, kind=config.split, test_size=config.test_size,
                       val_size=config.val_size, train_series=config.train_series, val_series=config.val_series,
                       test_series=config.test_series, warmup=config.warmup, origins=origins_table, seed=config.seed)
    log("encoding " + ", ".join(names))
    encoded, _ = encode(data, names, host, train=split.train_selection(), options=config.options, overrides=overrides)
    lap("encode")
    aligned = align(encoded, target=target, target_features=target_features, grid=config.grid)
    series = np.unique(points["series"].astype(str).to_numpy())
    unknown = np.setdiff1d(aligned.series, series)
    times = np.unique(points["time"].to_numpy(dtype=float))
    if unknown.size or (config.grid == "target" and np.setdiff1d(aligned.times, times).size):
        raise PluginError(f"the encoder of target modality '{target}' invented series or time points "
                          f"({', '.join(map(str, unknown[:3])) or 'times'}); it may only keep or drop rows")
    grid_split = split.on_grid(aligned)
    aligned.report.extend(_flat_target_notes(aligned))
    shared = float(aligned.present.mean())
    if shared < 0.5:
        aligned.report.append(f"series are measured at different times: each covers {shared:.0%} of the shared grid "
                              "on average, so horizons skip other series' times; consider --time-axis index")
    lap("align")

    reference = _add_ablations(config, forecasters, aligned, [n for n in names if n != target])
    log("backtesting " + ", ".join(forecasters))
    baselines = [b for b in config.baselines if b in forecasters]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads["blas"]):  # BLAS / OpenMP of this process
        bt = run_backtest(aligned, grid_split, forecasters, horizon=config.horizon, seed=config.seed,
                          levels=config.levels, ensembles=config.ensemble, ensemble_per=config.ensemble_per,
                          reference=reference, baselines=baselines, log=log)
    lap("fit+backtest")
    metrics = bt.metrics()  # also computes the intervals, filling bt.notes
    comparison = bt.comparison()
    forecasts = bt.forecasts_frame()
    lap("report")

    reports = {name: _report(model) for name, model in bt.fitted.items()}
    info = {
        "biocount": __version__, "plugin_api": PLUGIN_API, "config": json.loads(config.model_dump_json()),
        "target": {"modality": target, "features": aligned.target_features.tolist()},
        "data": _fingerprint(config), "split": split.summary(),
        "scored": bt.scored(), "baselines": baselines,
        "origins": {"validation": int(bt.val_origins.shape[0]), "test": int(bt.test_origins.shape[0])},
        "grid": {"kind": config.grid, "points": int(aligned.times.size)},
        "modalities": {n: {"shape": list(d.shape), "encoder": d.meta.encoder, "normalisation": d.meta.normalisation}
                       for n, d in encoded.items()},
        "alignment_report": aligned.report,
        "plugins": {"forecasters": {n: {"component": c.ref, "version": c.plugin.version, "options": m.options.model_dump()
                                        if hasattr(m.options, "model_dump") else None}
                                    for n, (c, m, *_) in forecasters.items()},
                    "encoders": {n: d.meta.encoder for n, d in encoded.items()}},
        "registry": {"files": [str(p) for p in host.loaded_registry.sources], "sha256": host.loaded_registry.sha256},
        "versions": _versions(), "timings_s": timings, "peak_rss_mb": rss,
        "forecasters": {n: {"timings_s": bt.timings.get(n, {})} | r for n, r in reports.items()},
        "failed": bt.failed, "ensembles": bt.weights, "conformal_levels": config.levels, "threads": threads,
    }
    info["notes"] = ([f"{n}: {note}" for n, d in encoded.items() for note in d.meta.notes]
                     + aligned.report + split.notes
                     + [f"series {s} not scored: {why}" for s, why in split.unscored.items()]
                     + bt.notes + [f"{n}: {note}" for n, r in reports.items() for note in r.get("notes", [])])
    return RunResult(config, comparison, metrics, forecasts, info, bt.fitted, bt)


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

    def base(name: str) -> str:
        return next((m for m in inputs if name == m or name.startswith(f"{m}_")), name)

    for k in range(len(inputs)):
        for subset in combinations(inputs, k):
            keep = set(subset) | {aligned.target}
            kept_inputs = {n: v for n, v in aligned.inputs.items() if base(n) in keep}
            static = static_names = None
            if aligned.static is not None:
                cols = [i for i, n in enumerate(aligned.static_names) if n.split(":")[0] in keep]
                if cols:
                    static, static_names = aligned.static[:, cols], aligned.static_names[cols]
            yield list(subset), replace(aligned, inputs=kept_inputs, static=static, static_names=static_names)


def write(result: RunResult, out: str | Path | None = None, *, overwrite: bool | None = None) -> Path:
    """Write metrics.csv, forecasts.csv, run.json and the LSTM checkpoint to ``out``, atomically
    (:mod:`biocount.output`: nothing is lost, --overwrite replaces only biocount's own folders)."""
    from .output import write_folder

    out = Path(out or result.config.out)
    overwrite = result.config.overwrite if overwrite is None else overwrite

    def fill(tmp: Path) -> None:
        result.metrics.to_csv(tmp / "metrics.csv", index=False)
        result.forecasts.to_csv(tmp / "forecasts.csv", index=False)
        for name, model in result.fitted.items():  # checkpoints of forecasters that can save themselves
            if hasattr(model, "save") and "[" not in name:
                model.save(tmp / f"{name}.pt")
        info = dict(result.info)
        info["timings_s"] = dict(info["timings_s"])
        (tmp / "run.json").write_text(json.dumps(info, indent=2, default=_json_default))

    return write_folder(out, fill, overwrite=overwrite)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def config_from(path: str | Path | None, flags: dict[str, Any]) -> RunConfig:
    """A RunConfig from a YAML file (optional) overridden by command-line flags; one-line errors."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = yaml.load(Path(path).read_text(), Loader=_unique_key_loader()) or {}
        except OSError as exc:
            raise BiocountInputError(f"--config {path}: cannot read it ({exc.strerror})") from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise BiocountInputError(f"--config {path}: not valid YAML{where}: {exc.problem or exc.context}") from None
        except yaml.YAMLError as exc:
            raise BiocountInputError(f"--config {path}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise BiocountInputError(f"--config {path}: expected a mapping of options")
        data = {k.replace("-", "_"): v for k, v in data.items()}
    return validated({**data, **flags}, where=f"--config {path}" if path else "options")


def validated(options: dict[str, Any], *, where: str = "options") -> RunConfig:
    """A RunConfig from a mapping; a validation error becomes one line naming the option."""
    from pydantic import ValidationError

    from .registry import first_error

    try:
        return RunConfig.model_validate(options)
    except ValidationError as exc:
        raise BiocountInputError(f"{where}: {first_error(exc).replace('_', '-')}") from None


def _unique_mapping(loader: Any, node: Any, deep: bool = False) -> dict:
    """A YAML mapping that refuses a key given twice (PyYAML silently keeps the last)."""
    import yaml

    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"option '{key}' is given twice", key_node.start_mark)
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


def _unique_key_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
    return Loader
