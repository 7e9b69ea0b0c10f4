"""Cost against study size: ``biocount run`` end to end on synthetic studies of 100 to 10,000 series.

    python -m bench scaling                 # 100, 1,000, 10,000 series x 100 points; 100 series x 50 -> 500 points
    python -m bench scaling --quick         # 100 and 1,000 series only
    python -m bench scaling --models lstm,arima,naive --series 100,1000

Each study is a long CSV (series_id, time, feature, value, modality) of a target modality ``y`` (4
features, AR(1) around a series level, driven by ``x`` two steps earlier) and an input modality ``x`` (4
features), generated into a temporary folder; each run is its own process (peak memory per stage from
run.json). Reported: seconds and peak RSS per stage, and seconds per series (flat = linear cost).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import report, run_biocount, table

FEATURES = 4


def study(path: Path, series: int, points: int, seed: int = 0, features: int = FEATURES) -> None:
    """Write the synthetic study (see the module docstring; ``features`` per modality) as a long CSV."""
    study_frame(series, points, seed, features).to_csv(path, index=False)


def study_frame(series: int, points: int, seed: int = 0, features: int = FEATURES) -> pd.DataFrame:
    """The synthetic study as a long table (series_id, time, feature, value, modality)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(series, points + 2, features))
    level = rng.normal(3.0, 1.0, size=(series, 1, features))
    y = np.empty((series, points, features))
    y[:, 0] = level[:, 0]
    for t in range(1, points):
        y[:, t] = level[:, 0] + 0.6 * (y[:, t - 1] - level[:, 0]) + 0.5 * x[:, t] + 0.3 * rng.normal(size=(series, features))
    s, t, f = np.meshgrid(np.arange(series), np.arange(points), np.arange(features), indexing="ij")
    ids = np.char.add("s", s.ravel().astype(str))
    frames = [pd.DataFrame({"series_id": ids, "time": t.ravel().astype(float), "feature": np.char.add(m, f.ravel().astype(str)),
                            "value": v.ravel(), "modality": m}) for m, v in (("y", y), ("x", x[:, 2:]))]
    return pd.concat(frames, ignore_index=True)


def one(series: int, points: int, models: str, folder: Path) -> dict:
    path = folder / f"s{series}_t{points}.csv"
    study(path, series, points)
    out = folder / f"out_{series}_{points}"
    wall, info = run_biocount(["--data", str(path), "--modalities", "y=tabular,x=tabular", "--target", "y",
                               "--models", models, "--horizon", "3"], out)
    row = {"series": series, "points": points, "wall_s": round(wall, 2), "s_per_series": wall / series}
    row |= {f"{k}_s": v for k, v in info["timings_s"].items()}
    row["peak_rss_mb"] = max(info["peak_rss_mb"].values())
    lstm = info["forecasters"].get("lstm", {})
    row |= {"lstm_batch": lstm.get("batch_size"), "lstm_epochs": lstm.get("epochs_run")}
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scaling")
    parser.add_argument("--series", default="100,1000,10000")
    parser.add_argument("--points", default="50,100,200,500", help="time points, at 100 series")
    parser.add_argument("--models", default="lstm,naive")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 series; 50 and 100 points")
    args = parser.parse_args(argv or [])
    series = [100, 1000] if args.quick else [int(v) for v in args.series.split(",")]
    points = [50, 100] if args.quick else [int(v) for v in args.points.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in series:
            rows.append(one(n, 100, args.models, Path(tmp)))
            print(table(rows[-1:]), flush=True)
        for p in points:
            if p != 100:
                rows.append(one(100, p, args.models, Path(tmp)))
                print(table(rows[-1:]), flush=True)
    by_series = {r["series"]: r["s_per_series"] for r in rows if r["points"] == 100}
    notes = [f"models {args.models}; seconds per series, {a} -> {b} series: x{by_series[b] / by_series[a]:.2f}"
             for a, b in zip(sorted(by_series), sorted(by_series)[1:], strict=False)]
    report("scaling", rows, notes)


if __name__ == "__main__":
    main(sys.argv[1:])
