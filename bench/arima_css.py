"""ARIMA's approximation (orders chosen and estimated by conditional sums of squares, batched over series)
against its exact search (maximum likelihood for every candidate). Both in one process, one after the other,
imports and first calls off the clock:

- every accuracy-suite task, ARIMA alone (seed 0, ``--jobs 1``): test MSE ratio per horizon (issue 27's goal:
  within 2 %) and core-seconds of the whole run;
- bench.scaling's synthetic study (``--series`` x 100 points x 4 target features, horizon 3, the default time
  split), ARIMA alone, ``--jobs 1``: test MSE and core-seconds per series (issue 27's goal: >= 5x fewer).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.accuracy import DATA, TASKS, task_data
from bench.common import report


def _run(config: dict, approximation: bool) -> tuple[list[float], float]:
    from biocount.engine import run, validated

    options = {**config.get("options", {}), "arima": {"approximation": approximation}}
    clock = time.process_time()
    bt = run(validated({**config, "options": options})).backtest
    seconds = time.process_time() - clock
    pred = bt.forecasts["arima"]["test"].mean
    return [float(np.nanmean((pred[:, h] - bt.y_test[:, h]) ** 2)) for h in range(pred.shape[1])], seconds


def _row(name: str, config: dict, series: int | None = None) -> dict:
    mse_exact, s_exact = _run(config, False)
    mse, s = _run(config, True)
    ratios = np.array(mse) / np.array(mse_exact)
    return {"task": name, "mse_exact": [round(m, 4) for m in mse_exact], "mse_css": [round(m, 4) for m in mse],
            "ratio_by_h": " / ".join(f"{r:.3f}" for r in ratios), "exact_cpu_s": round(s_exact, 2),
            "css_cpu_s": round(s, 2), "speedup": round(s_exact / max(s, 1e-9), 2)} \
        | ({"exact_ms_per_series": round(1e3 * s_exact / series, 1), "css_ms_per_series": round(1e3 * s / series, 1)}
           if series else {})


def main(argv: list[str] | None = None) -> None:
    from bench.scaling import study
    from biocount.host.plugins import load_host

    parser = argparse.ArgumentParser(prog="python -m bench arima_css")
    parser.add_argument("--series", type=int, default=100, help="series of the synthetic study (0: skip it)")
    parser.add_argument("--no-suite", action="store_true", help="the synthetic study only")
    args = parser.parse_args(argv or [])
    load_host()
    tmp, rows = Path(tempfile.mkdtemp()), []
    warm = {"data": [], "modalities": ["rna", "protein"], "models": ["arima"], "quiet": True, "jobs": 1,
            "ensemble": "none", "seed": 0}
    _run(warm, False), _run(warm, True)  # imports and first calls off the clock of both
    if args.series:
        path = tmp / "study.csv"
        study(path, args.series, 100)
        config = {"data": str(path), "modalities": ["y=tabular", "x=tabular"], "target": "y", "horizon": 3,
                  "models": ["arima"], "quiet": True, "jobs": 1, "ensemble": "none", "seed": 0}
        rows.append(_row(f"synthetic {args.series} x 100 x 4", config, args.series))
        print(rows[-1], flush=True)
    for task in [] if args.no_suite else TASKS:
        if not task.source.startswith(("sim:", "demo")) and not all((DATA / p).exists() for p in task.source.split("+")):
            print(f"skipped {task.name}: data not found")
            continue
        data, extra = task_data(task, tmp)
        config = {"data": data, "modalities": task.modalities, "horizon": task.horizon, "seed": 0, "models": ["arima"],
                  "quiet": True, "jobs": 1, "ensemble": "none", **task.options, **extra}
        rows.append(_row(task.name, config))
        print(rows[-1], flush=True)
    suite = [r for r in rows if not r["task"].startswith("synthetic")]
    notes = []
    if suite:
        ratios = np.array([float(v) for r in suite for v in r["ratio_by_h"].split(" / ")])
        exact, css = sum(r["exact_cpu_s"] for r in suite), sum(r["css_cpu_s"] for r in suite)
        notes.append(f"suite, {ratios.size} cells: geometric-mean MSE ratio {np.exp(np.mean(np.log(ratios))):.4f}, "
                     f"{int(np.sum(ratios > 1.02))} more than 2 % worse, {int(np.sum(ratios < 0.98))} more than 2 % "
                     f"better, largest {ratios.max():.3f}; core-seconds {exact:.0f} -> {css:.0f} ({exact / css:.2f}x)")
    report("arima_css", rows, notes)


if __name__ == "__main__":
    main()
