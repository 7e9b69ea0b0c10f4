"""What a run returns and writes: :class:`RunResult`, run.json's contents (:func:`run_info`) and the
folder (:func:`write`, atomic through :mod:`biocount.io.output`)."""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from biocount._version import PLUGIN_API, __version__
from biocount.config import RunConfig

if TYPE_CHECKING:
    from biocount.plan import Plan


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
    scores: pd.DataFrame | None = None  # scores.csv: hub-grade probabilistic scores (biocount.evaluation.scoring)
    encoded: pd.DataFrame | None = None  # forecasts_encoded.csv: forecasts on the encoder's scale, where
    # forecasts.csv is in the data's units (biocount.evaluation.units)
    checkpoints: list[str] = field(default_factory=list)  # forecasters that declare Capabilities.checkpointable
    rank: int = 0  # under torchrun: this process's rank; only rank 0's result is complete and written

    def write(self, out: str | Path | None = None, *, overwrite: bool | None = None) -> Path:
        """Write the folder ``biocount run`` writes (see :func:`write`)."""
        return write(self, out, overwrite=overwrite)


class Clock:
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


def run_info(config: RunConfig, plan: Plan, split: Any, encoded: dict[str, Any], aligned: Any, bt: Any,
             clock: Clock) -> dict[str, Any]:
    """Stage 7: run.json: what ran, on what, how long, what was scored, every note."""
    reports = {name: _report(model) for name, model in bt.fitted.items()}
    host = plan.host
    info = {
        "biocount": __version__, "plugin_api": PLUGIN_API, "config": json.loads(config.model_dump_json()),
        "target": {"modality": plan.target, "features": aligned.target_features.tolist()},
        "data": fingerprint(config), "split": split.summary(), "design": config.design().summary(),
        "scored": bt.scored(), "baselines": plan.baselines,
        "origins": {"validation": int(bt.val_origins.shape[0]), "test": int(bt.test_origins.shape[0])},
        "grid": {"kind": config.grid, "points": int(aligned.times.size)},
        "modalities": {n: {"shape": list(d.shape), "encoder": d.meta.encoder, "normalisation": d.meta.normalisation}
                       for n, d in encoded.items()},
        "alignment_report": aligned.report,
        "plugins": {"forecasters": {n: _plugin_entry(p) for n, p in plan.forecasters.items()},
                    "encoders": {n: d.meta.encoder for n, d in encoded.items()}},
        "registry": {"files": [str(p) for p in host.loaded_registry.sources], "sha256": host.loaded_registry.sha256},
        "versions": _versions(), "timings_s": clock.timings, "peak_rss_mb": clock.rss,
        "forecasters": {n: {"timings_s": bt.timings.get(n, {})} | r for n, r in reports.items()},
        "failed": bt.failed, "ensembles": bt.weights, "modality_sets": bt.modality_sets(),
        "scores": bt.score_summary(), "units": units_info(aligned, encoded),
        "conformal_levels": config.levels, "threads": plan.threads,
        "headline": next((n for n in bt.weights), next(n for n in config.models if n in bt.forecasts)),
    }
    from biocount.report.verdict import verdict

    level = min(config.levels, key=lambda lv: abs(lv - 0.8))
    info["verdict"] = verdict(bt, bt.comparison(), info["headline"], info["baselines"], level)
    info["notes"] = ([f"{n}: {note}" for n, d in encoded.items() for note in d.meta.notes]
                     + aligned.report + split.notes + list(bt.split.notes)
                     + [f"series {s} not scored: {why}" for s, why in split.unscored.items()]
                     + bt.notes + [f"{n}: {note}" for n, r in reports.items() for note in r.get("notes", [])]
                     + [why for why in [info["units"].get("why")] if why])
    return info


def observed_frame(aligned: Any) -> pd.DataFrame:
    """Every observed target value on the grid, long form (observed.csv: the history the report plots), in
    the data's units where the target's encoder declares them, as forecasts.csv."""
    from biocount.evaluation.backtest import grid_in_units

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


def fingerprint(config: RunConfig) -> list[dict[str, Any]]:
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


def _report(model: Any) -> dict[str, Any]:
    """A forecaster's own report (the Forecaster protocol's ``report()``) as a dict."""
    return dict(model.report() or {})


def _plugin_entry(planned: Any) -> dict[str, Any]:
    """run.json's record of a forecaster: its component, plugin version and options as built."""
    options = planned.model.options
    return {"component": planned.component.ref, "version": planned.component.plugin.version,
            "options": options.model_dump() if isinstance(options, BaseModel) else None}


def write(result: RunResult, out: str | Path | None = None, *, overwrite: bool | None = None) -> Path:
    """Write metrics.csv, forecasts.csv, observed.csv, run.json and the LSTM checkpoint to ``out``, atomically
    (:mod:`biocount.io.output`: nothing is lost, --overwrite replaces only biocount's own folders)."""
    from biocount.io.output import write_folder

    out = Path(out or result.config.out)
    overwrite = result.config.overwrite if overwrite is None else overwrite

    def fill(tmp: Path) -> None:
        clock = time.perf_counter()
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
        # the tables' writing is a stage of its own on a large study (1.2 GB forecasts.csv at 10,000 series)
        info["timings_s"] = dict(info["timings_s"]) | {"write": round(time.perf_counter() - clock, 3)}
        (tmp / "run.json").write_text(json.dumps(info, indent=2, default=_json_default))
        from biocount.report.html import build

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
