"""Stage 0, before any data is read: the options resolved to a :class:`Plan` (the modalities, the target,
every forecaster built, the thread policy, the baselines), failing fast on a bad option."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from biocount.config import SHARED_OPTIONS, RunConfig
from biocount.errors import BiocountInputError
from biocount.evaluation.candidates import PlannedForecaster


@dataclass
class Plan:
    """What the options resolve to before any data is read: names, the target, built forecasters."""

    host: Any
    target: str
    target_features: list[str] | None
    names: list[str]  # every modality the run reads, the target included
    overrides: dict[str, str]  # modality -> encoder reference given as name=encoder
    forecasters: dict[str, PlannedForecaster]  # name -> built forecaster (ablations join at the backtest)
    threads: dict[str, Any]
    origins: Any  # the --origins table, or None
    baselines: list[str]  # the forecasters every other one is tested against, in --baselines' order


def resolve(config: RunConfig, host: Any) -> Plan:
    """Stage 0: check the host and the options, build every forecaster (fails fast, before reading)."""
    from biocount.ddp import launched

    host.raise_for_registry()
    host.raise_for_strict()
    if config.dask and launched():
        raise BiocountInputError("--dask: not under torchrun (every rank would start its own cluster); use one or "
                                 "the other: torchrun for the LSTM, --dask for per-series work")
    choice = config.target_choice
    target, target_features = choice.modality, None if choice.features is None else list(choice.features)
    names = [c.name for c in config.choices]
    overrides = {c.name: c.encoder for c in config.choices if c.encoder}
    if target not in names:
        names.append(target)  # the target's own history is always an input
    _check_options_keys(config, names, overrides, host)
    threads = thread_policy(config)
    forecasters = _build_forecasters(config, host, threads["threads"])
    origins = None
    if config.origins is not None:
        from biocount.study.split import read_origins

        origins = read_origins(config.origins, series_key=config.series_key)
    baselines = [b for b in config.baselines if b in forecasters]
    return Plan(host, target, target_features, names, overrides, forecasters, threads, origins, baselines)


def ddp_device(plan: Plan) -> str:
    """The device torchrun's backend serves: the one the distributed forecasters resolved (an LSTM given
    ``options: lstm: {device: cpu}`` trains on the CPU, so gloo, whatever the run-wide --device)."""
    devices = {getattr(p.model.options, "device", "auto") for p in plan.forecasters.values()
               if p.capabilities.distributed}
    return "cpu" if devices <= {"cpu"} else ("cuda" if "cuda" in devices else "auto")


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


def _build_forecasters(config: RunConfig, host: Any, threads: int | None) -> dict[str, PlannedForecaster]:
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
        forecasters[name] = PlannedForecaster(comp, comp.build(**(mine | dict(config.options.get(name, {})))))
    unused = sorted(set(config.model_options) - taken)
    if unused:
        raise BiocountInputError(f"--{unused[0]}: none of the forecasters {', '.join(config.models)} takes this "
                                 "option; drop it or add a forecaster that does")
    return forecasters
