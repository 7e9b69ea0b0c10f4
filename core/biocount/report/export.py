"""Forecasts of a run folder in the formats forecasting hubs read.

``hubverse``: the hubverse model-output table (https://hubverse.io), one row per task and quantile:
task-id columns ``reference_date`` (the forecast origin), ``horizon``, ``target_end_date`` (the
time forecast), ``location`` (the series) and ``target`` (``modality feature``); then
``output_type`` (``quantile``), ``output_type_id`` (the quantile level, the FluSight set
:data:`biocount.evaluation.scores.QUANTILES`) and ``value``; ``model_id`` names the forecaster. The quantiles
are each forecaster's conformal predictive distribution on the test origins, rebuilt exactly from
``forecasts.csv`` and the calibration in ``run.json`` (forecast + width[h, level] x naive scale of
the series and feature), so any forecaster of the run can be exported without refitting. They are
computed on the encoder's scale (``forecasts_encoded.csv`` where forecasts.csv is in the data's units)
and mapped to the data's units by the target's :class:`~biocount.Units` from run.json: a monotone map,
so they stay the distribution's quantiles.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from biocount.errors import BiocountInputError

TASK_IDS = ("reference_date", "horizon", "target_end_date", "location", "target")
COLUMNS = ("model_id", *TASK_IDS, "output_type", "output_type_id", "value")


def model_id(forecaster: str) -> str:
    """A hub model id: 'biocount-' + the forecaster's name with anything but letters, digits, '_' as '-'."""
    return "biocount-" + re.sub(r"[^A-Za-z0-9_]+", "-", forecaster).strip("-")


def hubverse(folder: str | Path, *, forecaster: str | None = None) -> pd.DataFrame:
    """The hubverse model-output table of ``forecaster`` (default: the run's headline) in a run folder."""
    folder = Path(folder)
    try:
        info = json.loads((folder / "run.json").read_text())
        units = info.get("units", {})
        source = "forecasts_encoded.csv" if units.get("forecasts") == "data" else "forecasts.csv"
        forecasts = pd.read_csv(folder / source, dtype={"series": str, "feature": str})
    except FileNotFoundError as exc:
        raise BiocountInputError(f"{folder}: not a biocount run folder (no {Path(exc.filename).name}); point at a "
                                 "folder biocount run wrote") from None
    except (ValueError, OSError) as exc:  # a truncated run.json or a CSV not written by biocount
        raise BiocountInputError(f"{folder}: cannot read its run files ({type(exc).__name__}: {exc}); rerun "
                                 "biocount run to rewrite the folder") from None
    scores = info.get("scores") or {}
    widths = scores.get("conformal_widths") or {}
    if not widths:
        raise BiocountInputError(f"{folder}/run.json has no conformal calibration (written by an older biocount); "
                                 "rerun biocount run to export it")
    name = forecaster or info.get("headline")
    if name not in widths or name not in forecasts:
        raise BiocountInputError(f"--forecaster {name}: not a forecaster of this run; choose one of "
                                 + ", ".join(w for w in widths if w in forecasts))
    levels = np.asarray(scores["quantile_levels"], dtype=float)
    w = np.asarray(widths[name], dtype=float)  # (H, K)
    features = [str(f) for f in info["target"]["features"]]
    scale_of = scores["naive_scale"]
    frame = forecasts.dropna(subset=[name])
    col = {f: i for i, f in enumerate(features)}
    scale = np.array([scale_of[str(s)][col[str(f)]] for s, f in zip(frame["series"], frame["feature"], strict=True)])
    values = frame[name].to_numpy()[:, None] + w[frame["horizon"].to_numpy() - 1] * scale[:, None]  # (rows, K)
    values = np.sort(values, axis=1)  # monotone by construction; sorting guards float ties
    if units.get("forecasts") == "data":  # quantiles of the data's units: the same levels, mapped back
        from pydantic import ValidationError

        from biocount.evaluation.units import to_data
        from biocount.host.contract import Units

        try:
            u = Units.model_validate({k: units[k] for k in Units.model_fields})
        except (KeyError, ValidationError):
            raise BiocountInputError(f"{folder}/run.json: its 'units' entry is incomplete; rerun biocount run to "
                                     "rewrite the folder") from None
        values = to_data(values, u, rows=np.array([col[str(f)] for f in frame["feature"]]))
    K = levels.size
    modality = info["target"]["modality"]
    out = pd.DataFrame({
        "model_id": model_id(name),
        "reference_date": np.repeat(frame["origin"].to_numpy(), K),
        "horizon": np.repeat(frame["horizon"].to_numpy(), K),
        "target_end_date": np.repeat(frame["time"].to_numpy(), K),
        "location": np.repeat(frame["series"].astype(str).to_numpy(), K),
        "target": np.repeat((modality + " " + frame["feature"].astype(str)).to_numpy(), K),
        "output_type": "quantile",
        "output_type_id": np.tile(levels, len(frame)),
        "value": values.reshape(-1),
    })
    out = out[list(COLUMNS)]
    target = info.get("modalities", {}).get(modality, {})
    scale_name = units.get("label") if units.get("forecasts") == "data" else target.get("normalisation", "none")
    out.attrs |= {"model_id": model_id(name), "scale": scale_name}  # for the caller to say
    return out
