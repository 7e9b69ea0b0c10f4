"""Shared by the benchmarks: machine description, timing, tables, JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        import torch

        info |= {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()}
    except ImportError:
        pass
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gb"] = round(int(fh.readline().split()[1]) / 1e6, 1)
    except OSError:
        pass
    return info


def best_of(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``repeat`` calls after ``warmup`` calls (medians resist a noisy neighbour)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_biocount(args: list[str], out: Path, *, launcher: list[str] | None = None,
                 env: dict[str, str] | None = None) -> tuple[float, dict[str, Any]]:
    """``biocount run ARGS --quiet --out OUT --overwrite`` in a fresh process (``launcher``: e.g. torchrun's
    command instead of this Python): its wall seconds and its run.json. A failed run stops the benchmark with
    the command and the end of its error output."""
    cmd = (launcher or [sys.executable]) + ["-m", "biocount", "run", *args, "--quiet", "--out", str(out), "--overwrite"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads((out / "run.json").read_text())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(rows: list[dict[str, Any]]) -> str:
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = [[(f"{r.get(c):.4g}" if isinstance(r.get(c), float) else str(r.get(c, ""))) for c in cols] for r in rows]
    width = [max(len(c), *(len(f[i]) for f in fmt)) for i, c in enumerate(cols)]
    lines = [" | ".join(c.rjust(w) for c, w in zip(cols, width, strict=True))]
    lines.append("-+-".join("-" * w for w in width))
    lines += [" | ".join(v.rjust(w) for v, w in zip(f, width, strict=True)) for f in fmt]
    return "\n".join(lines)


def report(name: str, rows: list[dict[str, Any]], notes: list[str] | None = None, **extra: Any) -> None:
    print(table(rows))
    for note in notes or []:
        print(note)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"benchmark": name, "machine": machine(), "rows": rows,
                                                      "notes": notes or [], **extra}, indent=2, default=str))
