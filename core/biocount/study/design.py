"""Study designs as labs run them: clocks, replicates and shared modalities (between read and encode).

Real multi-omic time courses are rarely paired sample by sample. Four declared transformations of the
read modalities, applied in this order and reported in run.json (never guessed):

1. ``time_scale`` ``{modality: factor}``: a modality's times are multiplied by the factor (hours ->
   days: ``1/24``).
2. ``replicates``: ``keep`` (each target series stays a series), ``mean`` (all target series are
   replicates of one unit: averaged into one series ``mean``), or a CSV mapping each target series to
   its unit (two columns: series, unit). Modalities measured on the same series are averaged alike.
3. ``link`` ``{modality: "all" | CSV}``: a modality measured on fewer units than the target (one pooled
   series, or one per group) is shared with the target series it covers: ``all`` gives its one series
   to every target series; a CSV (two columns: target series, source series) maps them.
4. ``period``: a linked modality comes from another experiment whose clock matches the target's only
   in phase (circadian time). It is placed on the target's time points by phase: at target time t, the
   rows the source measured at the latest phase at or before ``t mod period`` (circularly), from the
   last cycle it measured that phase. Only the source's data enter (never the target's), and each
   target time gets a phase at or before its own: the alignment still looks backwards. Without a link,
   ``period`` changes no data: it only declares the study's cycle to the forecasters that use one
   (climatology, ARIMA's seasonal terms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biocount.errors import BiocountInputError


@dataclass(frozen=True)
class Design:
    link: dict[str, str] = field(default_factory=dict)
    replicates: str = "keep"
    period: float | None = None
    time_scale: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"link": dict(self.link), "replicates": self.replicates, "period": self.period,
                "time_scale": dict(self.time_scale)}


def apply(data: dict[str, Any], *, target: str, design: Design) -> tuple[dict[str, Any], list[str]]:
    """The modalities after the design's transformations, and one report line per change."""
    out, report = dict(data), []
    for name in [*design.time_scale, *design.link]:
        if name not in out:
            raise BiocountInputError(f"--{'link' if name in design.link else 'time-scale'} {name}=...: no modality "
                                     f"'{name}' in this study; it has {', '.join(out)}")
    timed = [*design.time_scale, *(design.link if design.period is not None else [])]
    static = [n for n in dict.fromkeys(timed) if "time" not in out[n].obs]
    if static:
        raise BiocountInputError(f"--{'time-scale' if static[0] in design.time_scale else 'period'} "
                                 f"{static[0]}: modality '{static[0]}' is static (no time column), so it has no "
                                 "clock to scale or place by phase; leave it out of this option")
    for name, factor in design.time_scale.items():
        adata = out[name].copy()
        adata.obs["time"] = adata.obs["time"].astype(float) * factor
        out[name] = adata
        report.append(f"modality '{name}': times multiplied by {factor:g} (--time-scale)")
    if design.replicates != "keep":
        units = _units(out[target], design.replicates)
        for name in list(out):
            if name == target or (name not in design.link and _shares(out[name], units)):
                out[name] = _average(out[name], units, name)
        report.append(f"replicates averaged: {len(units)} target series into {len(set(units.values()))} unit(s) "
                      f"({', '.join(sorted(set(units.values()))[:5])}) (--replicates {design.replicates})")
    for name, how in design.link.items():
        if name == target:
            raise BiocountInputError(f"--link {name}={how}: '{name}' is the target; link an input modality")
        source = out[name]
        if design.period is not None:
            _check_period(design.period, out[target])
            source = _by_phase(source, np.unique(out[target].obs["time"].astype(float)), design.period)
            report.append(f"modality '{name}': placed on the target's times by phase (period {design.period:g}): "
                          "each target time gets the latest phase at or before its own (--period)")
        mapping = _mapping(name, how, target_series=_series(out[target]), source_series=_series(source))
        out[name] = _broadcast(source, mapping)
        shared = sorted(set(mapping.values()))
        report.append(f"modality '{name}': {len(shared)} series shared with {len(mapping)} target series "
                      f"(--link {name}={how})")
    return out, report


def _check_period(period: float, target: Any) -> None:
    """A period shorter than the target's smallest time step puts every time on one phase: refused."""
    steps = np.diff(np.unique(target.obs["time"].astype(float).to_numpy()))
    if steps.size and period < steps.min():
        raise BiocountInputError(f"--period {period:g} is shorter than the smallest step between the target's times "
                                 f"({steps.min():g}), so every time falls on one phase; give the cycle's length in the "
                                 "data's time units (e.g. --period 24 for hours in a day)")


def _series(adata: Any) -> list[str]:
    return sorted(adata.obs["series"].astype(str).unique())


def _read_pairs(path: str, what: str, option: str, known: set[str] | None = None) -> dict[str, str]:
    """A two-column CSV (with a header) as {first: second}; one-line errors. A header whose first cell is
    one of the ``known`` series is a mapping, not a header: refused, never silently dropped."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise BiocountInputError(f"{option}: {path} is neither 'all' nor a file; give 'all' or a CSV of {what}")
    try:
        # header=None: the first line as written (as a header, pandas would rename repeated names)
        rows = pd.read_csv(file, dtype=str, keep_default_na=False, header=None)
    except Exception as exc:
        raise BiocountInputError(f"{option}: {path} is not a readable CSV ({exc})") from None
    if rows.shape[1] != 2:
        raise BiocountInputError(f"{option}: {path} has {rows.shape[1]} columns; it needs exactly two ({what})")
    header, frame = [str(c).strip() for c in rows.iloc[0]], rows.iloc[1:]
    if known is not None and header[0] in known:
        raise BiocountInputError(f"{option}: {path} has no header: its first line '{','.join(header)}' is a "
                                 f"mapping; add a header line first, e.g. '{what.replace(', ', ',')}'")
    first, second = (frame.iloc[:, i].str.strip() for i in (0, 1))
    twice = first[first.duplicated()]
    if len(twice):
        raise BiocountInputError(f"{option}: {path} maps series '{twice.iloc[0]}' twice; give each one line")
    return dict(zip(first, second, strict=True))


def _mapping(name: str, how: str, *, target_series: list[str], source_series: list[str]) -> dict[str, str]:
    """Target series -> source series of a linked modality."""
    option = f"--link {name}={how}"
    if how == "all":
        if len(source_series) != 1:
            raise BiocountInputError(f"{option}: modality '{name}' has {len(source_series)} series; 'all' shares "
                                     f"one series with every target series: map them with --link {name}=FILE "
                                     "(columns: target series, source series)")
        return dict.fromkeys(target_series, source_series[0])
    pairs = _read_pairs(how, "target series, source series", option, known=set(target_series) | set(source_series))
    unknown = sorted(set(pairs) - set(target_series))
    if unknown:
        raise BiocountInputError(f"{option}: target series '{unknown[0]}' is not in the target; it has "
                                 f"{', '.join(target_series[:5])}{' ...' if len(target_series) > 5 else ''}")
    missing = sorted(set(pairs.values()) - set(source_series))
    if missing:
        raise BiocountInputError(f"{option}: series '{missing[0]}' is not in modality '{name}'; it has "
                                 f"{', '.join(source_series[:5])}{' ...' if len(source_series) > 5 else ''}")
    return pairs


def _broadcast(source: Any, mapping: dict[str, str]) -> Any:
    """The source's rows copied once per target series they serve, renamed to that series."""
    import anndata as ad

    series = source.obs["series"].astype(str).to_numpy()
    parts = []
    for tgt, src in mapping.items():
        rows = source[series == src].copy()
        rows.obs["series"] = tgt
        rows.obs_names = [f"{tgt}|{n}" for n in rows.obs_names]
        parts.append(rows)
    return ad.concat(parts, merge="same", uns_merge="same") if parts else source[:0].copy()


def _by_phase(source: Any, target_times: np.ndarray, period: float) -> Any:
    """The source's rows re-timed onto the target's times by phase (see the module docstring)."""
    import anndata as ad

    times = source.obs["time"].astype(float).to_numpy()
    phase = np.mod(times, period)
    phases = np.unique(np.round(phase, 9))
    parts = []
    for t in target_times:
        want = np.round(np.mod(t, period), 9)
        before = phases[phases <= want + 1e-9]
        p = before[-1] if before.size else phases[-1]  # circular: the previous cycle's last phase
        at = np.isclose(phase, p)
        last = times[at].max()  # the last cycle the source measured this phase
        rows = source[at & (times == last)].copy()
        rows.obs["time"] = float(t)
        rows.obs_names = [f"{n}@t{t:g}" for n in rows.obs_names]
        parts.append(rows)
    return ad.concat(parts, merge="same", uns_merge="same")


def _units(target: Any, how: str) -> dict[str, str]:
    series = _series(target)
    if how == "mean":
        return dict.fromkeys(series, "mean")
    pairs = _read_pairs(how, "series, unit", f"--replicates {how}", known=set(series))
    unknown = sorted(set(pairs) - set(series))
    if unknown:
        raise BiocountInputError(f"--replicates {how}: series '{unknown[0]}' is not in the target; it has "
                                 f"{', '.join(series[:5])}{' ...' if len(series) > 5 else ''}")
    clash = next(((s, u) for s, u in pairs.items() if u != s and u in series), None)
    if clash:
        raise BiocountInputError(f"--replicates {how}: unit '{clash[1]}' of series '{clash[0]}' is also a series of "
                                 f"the target, so {clash[0]} would be averaged into it; name units apart from "
                                 f"series (e.g. '{clash[1]}_unit')")
    return {s: pairs.get(s, s) for s in series}  # series the file leaves out stay their own unit


def _shares(adata: Any, units: dict[str, str]) -> bool:
    return bool(set(_series(adata)) & set(units))


def _average(adata: Any, units: dict[str, str], name: str) -> Any:
    """Rows of the series of one unit averaged per time point (NaN-aware; bulk data only)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    obs = adata.obs[["series", "time"]].astype({"series": str, "time": float})
    if obs.duplicated().any():
        raise BiocountInputError(f"--replicates: modality '{name}' has several rows per series and time point "
                                 "(single cells?); average replicates after pseudobulk, or keep them (--replicates keep)")
    X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X, dtype=float)
    frame = pd.DataFrame(X, columns=adata.var_names)
    frame["series"] = obs["series"].map(lambda s: units.get(s, s)).to_numpy()
    frame["time"] = obs["time"].to_numpy()
    mean = frame.groupby(["series", "time"], sort=True).mean()  # pandas' mean skips NaN
    new_obs = mean.index.to_frame(index=False)
    new_obs.index = [f"{s}@{t:g}" for s, t in zip(new_obs["series"], new_obs["time"], strict=True)]
    return ad.AnnData(X=mean.to_numpy(dtype=np.float32), obs=new_obs, var=adata.var.copy(), uns=dict(adata.uns))
