"""`biocount run --modalities rna,protein` on the demo: wall time and peak memory per stage, CLI start-up
times, and a cProfile of the slowest stage."""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import subprocess
import sys
import time

from bench.common import report


def startup(args: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "biocount", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from biocount.engine import RunConfig, run

    config = RunConfig(modalities=["rna", "protein"], jobs=2, quiet=True)
    t = time.perf_counter()
    result = run(config)
    wall = time.perf_counter() - t
    timings, rss = result.info["timings_s"], result.info["peak_rss_mb"]
    rows = [{"stage": k, "seconds": v, "peak_rss_mb_after": rss.get(k)} for k, v in timings.items()]
    rows.append({"stage": "total (in process)", "seconds": wall})
    slowest = max(timings, key=timings.get)
    profiler = cProfile.Profile()
    profiler.enable()
    run(config)
    profiler.disable()
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(25)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()][:40]
    for cmd in (["--help"], ["plugins", "list"]):
        rows.append({"stage": f"start-up: biocount {' '.join(cmd)}", "seconds": startup(cmd)})
    worst = max(r["seconds"] for r in rows if str(r["stage"]).startswith("start-up"))
    notes = [f"target: --help and plugins list under 0.5 s -> {'met' if worst < 0.5 else 'missed'} ({worst:.2f} s, "
             "python -m biocount, median of 5)",
             f"slowest stage: {slowest}; cProfile of a second run, top of the cumulative listing:", *lines,
             "ARIMA runs in 2 worker processes (joblib): their memory is not in this process's peak RSS."]
    report("e2e", rows, notes)
