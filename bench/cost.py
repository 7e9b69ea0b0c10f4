"""What the default LSTM costs: `biocount run` per accuracy-suite study (no ablations, one seed) with the
previous default (one network, per-series scaling), the current one (three networks, per-window scaling;
members side by side in the run's worker processes where the study is large enough) and the current one
with its members one after another in the run's process (``n_jobs: 1``), in the same process. Reports wall
time and the LSTM's fit + predict time, and their ratios to the previous default."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.accuracy import DATA, TASKS
from bench.common import report

PREVIOUS = {"members": 1, "scaling": "series"}
CONFIGS = (("previous", PREVIOUS), ("default", {}), ("serial", {"n_jobs": 1}))


def main() -> None:
    from biocount import datasets
    from biocount.engine import run, validated
    from biocount.host.plugins import load_host

    host = load_host()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for task in TASKS:
            if task.source.startswith("sim:"):
                frame = getattr(datasets, task.source[4:])(seed=0)
                path = Path(tmp) / f"{task.source[4:]}.csv"
                frame.to_csv(path, index=False)
                data, extra = [str(path)], {"test_series": frame.attrs["test_series"]}
            else:
                paths = [] if task.source == "demo" else [DATA / p for p in task.source.split("+")]
                if not all(p.exists() for p in paths):
                    continue
                data, extra = [str(p) for p in paths], {}
            row = {"study": task.name}
            for label, lstm in CONFIGS:
                config = validated({"data": data, "modalities": task.modalities, "horizon": task.horizon,
                                    "quiet": True, "jobs": 2, "options": {"lstm": lstm} if lstm else {},
                                    **task.options, **extra})
                clock = time.perf_counter()
                result = run(config, host=host)
                row[f"{label} s"] = round(time.perf_counter() - clock, 2)
                row[f"{label} lstm s"] = round(sum(result.info["forecasters"]["lstm"]["timings_s"].values()), 2)
                if label == "default":
                    row["members on"] = result.info["forecasters"]["lstm"]["members_on"]
            row["run ratio"] = round(row["default s"] / row["previous s"], 2)
            row["lstm ratio"] = round(row["default lstm s"] / row["previous lstm s"], 2)
            row["serial lstm ratio"] = round(row["serial lstm s"] / row["previous lstm s"], 2)
            rows.append(row)
    total = {k: round(sum(r[k] for r in rows), 1) for k in rows[0] if k.endswith(" s")}
    rows.append({"study": "all", **total, "run ratio": round(total["default s"] / total["previous s"], 2),
                 "lstm ratio": round(total["default lstm s"] / total["previous lstm s"], 2),
                 "serial lstm ratio": round(total["serial lstm s"] / total["previous lstm s"], 2)})
    report("cost", rows)


if __name__ == "__main__":
    main()
