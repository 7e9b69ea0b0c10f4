"""``python -m bench profile [--synthetic S,T,F] [biocount run options]``: where one ``biocount run`` spends
its time.

Runs ``biocount run`` in this process (the demo by default; any ``biocount run`` options after the
benchmark's own, e.g. ``--data cases.csv --modalities cases=tabular``) under cProfile, with the LSTM's
training loop timing its parts, and prints:

1. time per stage (run.json ``timings_s``) and per forecaster (fit, predict);
2. the LSTM's training steps split into data gathering, forward, backward, optimiser and the per-epoch
   validation, in total and per step (the same parts are ``lstm.*`` ranges in a torch.profiler trace of
   your own: torch.profiler over a whole run keeps every op, 8 GB on a 60-series study, so not here);
3. the top of cProfile's cumulative and own-time listings.

``--synthetic S,T,F`` profiles bench.scaling's study of S series x T points x F features per modality
instead (target ``y``, input ``x``), so a large study can be explained from a smaller one by cost per series.
Results go to bench/results/profile.json.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, machine, table

STEPS = ("gather", "forward", "backward", "optimiser", "validation")


def _args(argv: list[str], folder: Path) -> tuple[list[str], str]:
    """The ``biocount run`` arguments and a name for the study."""
    if argv[:1] == ["--synthetic"]:
        from bench.scaling import study

        series, points, features = (int(v) for v in argv[1].split(","))
        path = folder / "synthetic.csv"
        study(path, series, points, features=features)
        return (["--data", str(path), "--modalities", "y=tabular,x=tabular", "--target", "y", *argv[2:]],
                f"synthetic {series} series x {points} points x {features} features")
    return (argv or ["--modalities", "rna,protein"]), " ".join(argv) or "demo (--modalities rna,protein)"


def _steps(clock: dict[str, list[float]]) -> list[dict]:
    """The LSTM's step parts (biocount.forecasters.lstm.training.STEP_CLOCK): calls, total seconds, ms per call."""
    rows = [{"part": part, "calls": int(clock[part][0]), "total_s": round(clock[part][1], 3),
             "ms_per_call": round(1e3 * clock[part][1] / max(clock[part][0], 1), 3)} for part in STEPS if part in clock]
    whole = sum(r["total_s"] for r in rows)
    for r in rows:
        r["share"] = f"{r['total_s'] / whole:.0%}" if whole else ""
    return rows


def _listing(profiler: cProfile.Profile, key: str, n: int = 15) -> list[str]:
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(n)
    lines = buf.getvalue().splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip().startswith("ncalls")), 0)
    return [ln.rstrip() for ln in lines[start:] if ln.strip()]


def main(argv: list[str] | None = None) -> None:
    from click.testing import CliRunner

    from biocount.cli import cli
    from biocount.forecasters.lstm import training  # the loop reads training.STEP_CLOCK

    argv = list(sys.argv[2:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):  # the benchmark's own help, not `biocount run --help` under the profiler
        print(__doc__)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        args, name = _args(argv, folder)
        out = folder / "out"
        profiler, training.STEP_CLOCK = cProfile.Profile(), {}
        start = time.perf_counter()
        profiler.enable()
        try:
            result = CliRunner().invoke(cli, ["run", *args, "--quiet", "--out", str(out)], catch_exceptions=False)
        finally:
            profiler.disable()
            clock, training.STEP_CLOCK = training.STEP_CLOCK, None
        wall = time.perf_counter() - start
        if result.exit_code != 0:
            raise SystemExit(f"biocount run failed:\n{result.output[-2000:]}")
        info = json.loads((out / "run.json").read_text())
    stages = [{"stage": k, "seconds": v} for k, v in info["timings_s"].items()]
    stages.append({"stage": "total (profiled, in process)", "seconds": round(wall, 3)})
    per_model = [{"forecaster": n, **f.get("timings_s", {})} for n, f in info["forecasters"].items()]
    steps = _steps(clock)
    series = info["scored"]["test"]["series"] + info["scored"]["validation"]["series"]
    print(f"study: {name}")
    print(table(stages))
    print(table(per_model))
    print(table(steps) if steps else "no LSTM training steps in this run")
    notes = [f"profiler on: cProfile slows the run (compare the stage times with an unprofiled "
             f"run); {series} series scored (validation + test)",
             "cProfile, cumulative:", *_listing(profiler, "cumulative"), "cProfile, own time:",
             *_listing(profiler, "tottime")]
    for line in notes:
        print(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "profile.json").write_text(json.dumps(
        {"benchmark": "profile", "study": name, "machine": machine(), "stages": stages, "forecasters": per_model,
         "lstm_steps": steps, "notes": notes}, indent=2, default=str))


if __name__ == "__main__":
    main()
