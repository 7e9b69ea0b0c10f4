"""Shared by the benchmarks: machine description, timing, tables, JSON results."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
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
