"""The CPU thread policy: the demo LSTM fit with 1 thread and with all cores, unloaded and under a
concurrent load of 2 busy processes (as on a shared 2-core machine). Ratios against the unloaded
1-thread fit in the same process."""

from __future__ import annotations

import multiprocessing as mp
import os

from bench.common import report


def _busy(stop) -> None:
    while not stop.is_set():
        pass


def _fit_seconds(threads: int | None) -> float:
    import biocount as bc

    run = bc.run(models=["lstm"], quiet=True, threads=threads, options={"lstm": {"epochs": 40, "patience": None}})
    return run.info["forecasters"]["lstm"]["timings_s"]["fit_s"]


def main() -> None:
    cores = len(os.sched_getaffinity(0))
    _fit_seconds(1)  # warm-up: imports, demo study
    rows = []
    for load in (0, 2):
        stop = mp.Event()
        hogs = [mp.Process(target=_busy, args=(stop,), daemon=True) for _ in range(load)]
        for h in hogs:
            h.start()
        try:
            for threads in [*sorted({1, cores}), None]:
                rows.append({"load_processes": load, "threads": threads or "automatic",
                             "fit_seconds": _fit_seconds(threads)})
        finally:
            stop.set()
            for h in hogs:
                h.join()
    base = rows[0]["fit_seconds"]
    for r in rows:
        r["ratio_vs_unloaded_1_thread"] = r["fit_seconds"] / base
    report("threads", rows, [f"{cores} cores available; run = demo study, lstm only, 40 epochs, no early stopping"])
