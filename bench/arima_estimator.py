"""ARIMA's estimator against statsmodels' plain ``ARIMA.fit``: biocount concentrates the innovation variance
out of the likelihood and warm-starts each re-selection's candidates from the previous selection's estimates.
ARIMA alone on every accuracy-suite task (seed 0, ``--jobs 1``), the plain estimator first, then biocount's,
in one process: test MSE ratio per horizon (goal of issue 27: within 2 %) and core-seconds of the whole run."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from bench.accuracy import DATA, TASKS, task_data
from bench.common import report


def _plain(part, order, trend, previous, seasonal=(0, 0, 0, 0)):
    """The estimator biocount used before: statsmodels' defaults (variance a free parameter, its own start)."""
    from biocount_arima.forecaster import _model

    res = _model(part, order, trend, seasonal=seasonal).fit()
    return (res.aicc if np.isfinite(res.aicc) else np.inf), np.asarray(res.params), tuple(res.model.param_names)


def _run(task, tmp: Path, host) -> tuple[list[float], float]:
    from biocount.engine import run, validated

    data, extra = task_data(task, tmp)
    config = validated({"data": data, "modalities": task.modalities, "horizon": task.horizon, "seed": 0,
                        "models": ["arima"], "quiet": True, "jobs": 1, "ensemble": "none", **task.options, **extra})
    clock = time.process_time()
    bt = run(config, host=host).backtest
    pred = bt.forecasts["arima"]["test"].mean
    return [float(np.nanmean((pred[:, h] - bt.y_test[:, h]) ** 2)) for h in range(pred.shape[1])], \
        time.process_time() - clock


def main() -> None:
    import biocount_arima.forecaster as arima
    from biocount.host.plugins import load_host

    host, tmp, rows = load_host(), Path(tempfile.mkdtemp()), []
    mine = arima._estimate
    warm = np.sin(np.arange(40.0)) + np.arange(40.0) / 10  # imports and first calls off the clock of both runs
    _plain(warm, (1, 1, 1), "t", None), mine(warm, (1, 1, 1), "t", None)
    for task in TASKS:
        if not task.source.startswith(("sim:", "demo")) and not all((DATA / p).exists() for p in task.source.split("+")):
            print(f"skipped {task.name}: data not found")
            continue
        arima._estimate = _plain  # the reference, swapped in for this one run
        try:
            mse_plain, s_plain = _run(task, tmp, host)
        finally:
            arima._estimate = mine
        mse, s = _run(task, tmp, host)
        ratios = np.array(mse) / np.array(mse_plain)
        rows.append({"task": task.name, "mse_plain": [round(m, 4) for m in mse_plain], "mse": [round(m, 4) for m in mse],
                     "ratio_by_h": " / ".join(f"{r:.3f}" for r in ratios), "worst_ratio": float(ratios.max()),
                     "plain_cpu_s": s_plain, "cpu_s": s, "speedup": s_plain / max(s, 1e-9)})
    ratios = np.array([float(r) for row in rows for r in row["ratio_by_h"].split(" / ")])
    plain, fast = sum(r["plain_cpu_s"] for r in rows), sum(r["cpu_s"] for r in rows)
    notes = [f"{ratios.size} cells: geometric-mean MSE ratio {np.exp(np.mean(np.log(ratios))):.4f}, "
             f"{int(np.sum(ratios > 1.02))} more than 2 % worse, {int(np.sum(ratios < 0.98))} more than 2 % better, "
             f"largest {ratios.max():.3f}; core-seconds {plain:.0f} -> {fast:.0f} ({plain / fast:.2f}x)"]
    report("arima_estimator", rows, notes)
