"""The 365-series two-modality protein study of issue 27, synthesised: ``biocount run`` with the default models.

    python -m bench study365                       # 365 series x 16 points, 8 proteins, 8 linked mRNAs
    python -m bench study365 --features 1,8,32     # the same study with 1, 8 and 32 features per modality
    python -m bench study365 --config fast.yaml    # any further option goes to `biocount run`

A new user's run of a 365-series protein study (two modalities, ``--link``, horizon 2, short series) took
47.6 minutes. The study is not shipped, so this builds one of the same size: ``protein`` (the target, an
AR(1) around a series level driven by ``mRNA`` two steps earlier; bench.scaling's generator) and ``mRNA``
measured under its own sample ids, linked to the protein series by a two-column CSV (``--link mRNA=FILE``).
Each run is its own process, default models (lstm, arima, naive, climatology), ``--horizon 2``. Reported:
wall seconds, seconds per stage and per forecaster, how many ARIMA series x features were persistence, and
seconds per series x feature. Results go to bench/results/study365.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.common import report, run_biocount, table

SERIES = 365
GOAL_S = 300.0  # issue 27: this study in at most 5 minutes on 2 cores


def write_study(folder: Path, series: int, points: int, features: int) -> tuple[Path, Path]:
    """The long CSV (protein on ``s*``, mRNA on ``m*``) and the link file mapping one to the other."""
    from bench.scaling import study_frame

    frame = study_frame(series, points, features=features)
    frame["modality"] = frame["modality"].map({"y": "protein", "x": "mRNA"})
    is_mrna = frame["modality"] == "mRNA"
    frame.loc[is_mrna, "series_id"] = "m" + frame.loc[is_mrna, "series_id"].astype(str).str[1:]  # its own ids
    path, link = folder / f"study_{features}.csv", folder / "link.csv"
    frame.to_csv(path, index=False)
    ids = [f"s{i}" for i in range(series)]
    pd.DataFrame({"series": ids, "mRNA": ["m" + s[1:] for s in ids]}).to_csv(link, index=False)
    return path, link


def one(folder: Path, series: int, points: int, features: int, extra: list[str] | None = None) -> dict:
    path, link = write_study(folder, series, points, features)
    out = folder / f"out_{features}"
    wall, info = run_biocount(["--data", str(path), "--modalities", "protein=tabular,mRNA=tabular", "--target",
                               "protein", "--link", f"mRNA={link}", "--horizon", "2", *(extra or [])], out)
    arima = info["forecasters"].get("arima", {})
    fallback = arima.get("fallback", {})
    cells = series * features
    row = {"series": series, "points": points, "features": features, "wall_s": round(wall, 1),
           "goal_met": wall <= GOAL_S}
    row |= {f"{k}_s": v for k, v in info["timings_s"].items() if k in ("read", "fit+backtest", "report", "explain")}
    row |= {f"{n}_s": round(sum(v.get("timings_s", {}).values()), 1) for n, v in info["forecasters"].items()}
    row |= {"arima_persistence": f"{fallback.get('series', 0)} of {fallback.get('of', 0)}",
            "arima_s_per_series_feature": round(sum(arima.get("timings_s", {}).values()) / cells, 4),
            "peak_rss_mb": max(info["peak_rss_mb"].values())}
    return row


def _counts(text: str) -> list[int]:
    """``--features 1,8,32``: positive whole numbers, or a one-line parser error."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers of at least 1, comma-separated (1,8,32)")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench study365", description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=SERIES)
    parser.add_argument("--points", type=int, default=16, help="time points per series (short: 16)")
    parser.add_argument("--features", default=[8], type=_counts, help="comma list: features per modality, one run each")
    args, extra = parser.parse_known_args(argv or [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in args.features:
            rows.append(one(Path(tmp), args.series, args.points, f, extra))
            print(table(rows[-1:]), flush=True)
    report("study365", rows, [f"goal (issue 27): at most {GOAL_S:.0f} s per run on 2 cores"])


if __name__ == "__main__":
    main(sys.argv[1:])
