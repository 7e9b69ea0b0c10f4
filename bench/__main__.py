"""``python -m bench NAME [NAME ...]``: run benchmarks; ``python -m bench all`` runs every CPU one."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "training": "LSTM training step: biocount's default vs bare torch doing the same arithmetic",
    "cells": "standard vs peephole cell, forward + backward",
    "seed": "the seed document's Keras model vs biocount's seed preset",
    "arima": "rolling-origin ARIMA: state extension vs refitting; n_jobs 1 vs 2",
    "baseline": "the ARIMA baseline vs auto-ARIMA re-selected at every origin, on shared real tables",
    "arima_search": "ARIMA order search with vs without Hannan–Rissanen pre-selection: MSE and core-seconds",
    "arima_estimator": "ARIMA's estimator (concentrated variance, warm starts) vs statsmodels' plain fit, whole suite",
    "arima_css": "ARIMA's approximation (conditional sums of squares, batched) vs its exact search: suite, 100 series",
    "e2e": "biocount run on the demo: time and memory per stage; CLI start-up",
    "threads": "the thread policy: LSTM fit with 1 thread vs all cores, unloaded and under a 2-process load",
    "scale": "pseudobulk of 1,000,000 cells x 2,000 genes, in memory and backed",
    "accuracy": "the accuracy suite: every shared table, the demo and the simulators; writes docs/accuracy.md",
    "cost": "biocount run per accuracy-suite study: the previous default LSTM vs the current one (time)",
    "scaling": "biocount run on synthetic studies of 100 to 10,000 series and 50 to 500 points: time, memory",
    "study365": "the 365-series two-modality protein study of issue 27, synthesised: default models, time per stage",
    "distributed": "Dask vs serial ARIMA, the Dask path's overhead, torchrun DDP step rate, 10M backed cells",
    "gpu": "cuDNN vs CPU (bench/gpu_check.py); skipped without CUDA",
    "profile": "one biocount run under cProfile + torch.profiler: stages, forecasters, LSTM step parts",
}
WITH_OPTIONS = ("accuracy", "scaling", "study365", "distributed", "profile", "arima_css")  # they parse their own (--quick, ...)


def _module(name: str):
    """The module that runs benchmark ``name`` (``gpu`` lives in gpu_check.py, runnable on its own)."""
    return importlib.import_module(f"bench.{'gpu_check' if name == 'gpu' else name}")


def main(argv: list[str]) -> int:
    names = argv or ["--help"]
    if names[0] in ("-h", "--help"):
        print(__doc__)
        for name, text in BENCHMARKS.items():
            print(f"  {name:9s} {text}")
        return 0
    if names[0] in WITH_OPTIONS:
        importlib.import_module(f"bench.{names[0]}").main(names[1:])
        return 0
    if names[0] in BENCHMARKS and names[1:2] in (["-h"], ["--help"]):  # the benchmark's own description
        print(f"python -m bench {names[0]}: {BENCHMARKS[names[0]]}\n\n{(_module(names[0]).__doc__ or '').strip()}")
        return 0
    if names == ["all"]:
        names = [n for n in BENCHMARKS if n not in ("gpu", *WITH_OPTIONS)]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"\n== {name}: {BENCHMARKS[name]}")
        _module(name).main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
