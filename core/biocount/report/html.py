"""``report.html``: one self-contained page per run, built from the folder's own files.

Everything comes from ``metrics.csv``, ``forecasts.csv``, ``scores.csv``, ``observed.csv`` and ``run.json`` (so ``biocount report OUT``
rebuilds it from any finished folder). Charts are matplotlib SVG inlined in the page (text kept as text,
deterministic bytes); no script, no network request (a Content-Security-Policy forbids any), printable.
docs/report.md explains every section.
"""

from __future__ import annotations

import html
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from biocount.api.pl import OKABE_ITO

SECTIONS = ("verdict", "facts", "warnings", "comparison", "horizon", "features", "fans", "calibration", "scores", "importance",
            "training", "baselines", "notes", "run")
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1b1b;line-height:1.45}
nav{position:sticky;top:0;background:#f4f4f4;border-bottom:1px solid #ccc;padding:.4em 1em;font-size:.9em;z-index:1}
nav a{margin-right:1em;color:#0b5394;text-decoration:none}
main{max-width:1100px;margin:0 auto;padding:0 1em 3em}
section{margin-top:2em;break-before:auto}
table{border-collapse:collapse;font-size:.88em;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}
th:first-child,td:first-child{text-align:left}
.best{font-weight:bold;background:#e7f3e7}
.warn{background:#fff4e5;border-left:4px solid #e69f00;padding:.5em 1em;margin:.3em 0}
.verdict{background:#eef5fb;border:1px solid #0072b2;border-left:6px solid #0072b2;padding:.6em 1em;font-size:1.05em}
.verdict p{margin:.3em 0}
figure{margin:1em 0}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85em;color:#444}
code{font-size:.9em}
@media print{nav{display:none}section{break-inside:avoid}}
"""
COLOURS = OKABE_ITO  # one palette for bc.pl and the report


def build(folder: str | Path) -> Path:
    """Write ``folder/report.html`` from the folder's metrics.csv, forecasts.csv, observed.csv and run.json."""
    folder = Path(folder)
    (folder / "report.html").write_text(render(folder), encoding="utf-8")
    return folder / "report.html"


def render(folder: Path) -> str:
    """The page as a string (see :func:`build`). Names are drawn as typed, never as mathtext."""
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}):
        return _render(folder)


def _render(folder: Path) -> str:
    import pandas as pd

    info = json.loads((folder / "run.json").read_text())
    metrics = pd.read_csv(folder / "metrics.csv")
    forecasts = pd.read_csv(folder / "forecasts.csv", dtype={"series": str, "feature": str})
    history = (pd.read_csv(folder / "observed.csv", dtype={"series": str, "feature": str})
               if (folder / "observed.csv").is_file() else None)  # folders from before 0.x lack it
    scores = pd.read_csv(folder / "scores.csv", dtype={"horizon": str}) if (folder / "scores.csv").is_file() else None
    parts = {
        "verdict": ("Verdict", _verdict(info)),
        "facts": ("Run", _facts(info)),
        "warnings": ("Read this first", _warnings(info, metrics)),
        "comparison": ("Comparison", _comparison(metrics, info)),
        "horizon": ("Error by horizon", _by_horizon(metrics, info)),
        "features": ("Best and worst features", _features(metrics, info)),
        "fans": ("Forecasts", _fans(forecasts, metrics, info, history)),
        "calibration": ("Interval calibration", _calibration(metrics, info)),
        "scores": ("Probabilistic scores", _scores(scores, info)),
        "importance": ("Which modality drove the forecasts", _importance(metrics, info)),
        "training": ("Training", _training(info)),
        "baselines": ("Baselines", _baselines(info)),
        "notes": ("Every note", _notes(info)),
        "run": ("Protocol, plugins and options", _run(info)),
    }
    nav = "".join(f'<a href="#{k}">{html.escape(title)}</a>' for k, (title, _) in parts.items())
    body = "".join(f'<section id="{k}"><h2>{html.escape(title)}</h2>{content}</section>'
                   for k, (title, content) in parts.items())
    target = info["target"]["modality"]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; "
            "img-src data:\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>biocount report: {html.escape(target)}</title><style>{CSS}</style></head><body>"
            f"<nav>{nav}</nav><main><h1>biocount: forecasting {html.escape(target)}</h1>{body}</main></body></html>")


# -- pieces ---------------------------------------------------------------------------------------------
def _table(rows: list[dict[str, Any]], best: dict[str, Any] | None = None) -> str:
    if not rows:
        return "<p>None.</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            text = f"{v:.4g}" if isinstance(v, float) else str(v)
            cls = ' class="best"' if best and c in best and v == best[c] else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _svg(fig: Any, caption: str) -> str:
    """A matplotlib figure as inline, accessible, deterministic SVG."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "biocount"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):].replace("<svg", f'<svg role="img" aria-label="{html.escape(caption)}"', 1)
    start, end = svg.find("<metadata>"), svg.find("</metadata>")
    if start >= 0 and end > start:  # matplotlib's RDF block: links to its own website, nothing the page needs
        svg = svg[:start] + svg[end + len("</metadata>"):]
    return f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _pyplot():
    """pyplot on a headless backend (unless the caller chose one)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 7.0, height: float = 3.2):
    return _pyplot().subplots(figsize=(width, height))


def _models(metrics: Any) -> list[str]:
    names = metrics.loc[metrics["scope"] == "overall", "forecaster"].tolist()
    return [n for n in names if not n.endswith(":native")]


def _p_mark(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return f"{p:.2g}" + (" ***" if p < 0.001 else " **" if p < 0.01 else " *" if p < 0.05 else "")


# -- sections -------------------------------------------------------------------------------------------
def _verdict(info: dict[str, Any]) -> str:
    """The run's three-line conclusion (biocount.report.verdict), as the console ends with it."""
    lines = info.get("verdict") or []
    if not lines:
        return "<p>No verdict (a folder written before biocount gave one): rerun biocount run.</p>"
    rows = []
    for line in lines:
        head, _, rest = line.partition(": ")
        rows.append(f"<p><strong>{html.escape(head)}:</strong> {html.escape(rest)}</p>")
    return f'<div class="verdict">{"".join(rows)}</div>'


def _facts(info: dict[str, Any]) -> str:
    test = info.get("scored", {}).get("test", {})
    rows = [{"": "target", "value": f"{info['target']['modality']}: {len(info['target']['features'])} feature(s)"},
            {"": "headline forecaster", "value": info.get("headline", "")},
            {"": "scored (test)", "value": f"{test.get('series', '?')} series, {test.get('origins', '?')} origins, "
                                           f"{test.get('points', '?')} points"},
            {"": "split", "value": info.get("config", {}).get("split", "")},
            {"": "horizon", "value": info.get("config", {}).get("horizon", "")},
            {"": "biocount", "value": info.get("biocount", "")}]
    return _table(rows)


def _warnings(info: dict[str, Any], metrics: Any = None) -> str:
    keys = ("no better than persistence", "persistence on", "failed", "not scored", "no headline", "mean nothing")
    lines = [n for n in info.get("notes", []) if any(k in n for k in keys)]
    lines += list(info.get("failed", {}).values())
    lines += _coverage_shortfall(info, metrics)
    if not lines:
        return "<p>No fallback, failure, unscored series or persistence-like model.</p>"
    return "".join(f'<div class="warn">{html.escape(x)}</div>' for x in lines)


def _coverage_shortfall(info: dict[str, Any], metrics: Any) -> list[str]:
    """A line when the headline's intervals cover clearly less than they claim on the test points."""
    head = info.get("headline")
    if metrics is None or head is None:
        return []
    rows = metrics[(metrics["forecaster"] == head) & (metrics["scope"] == "overall")]
    out = []
    for level in info.get("conformal_levels", []):
        col = f"coverage_{level * 100:g}"
        if col in rows and rows[col].notna().any() and float(rows[col].iloc[0]) < level - 0.1:
            out.append(f"the {level:.0%} intervals of {head} cover only {float(rows[col].iloc[0]):.0%} of the test "
                       "points: give them more validation origins (--val-size) before trusting them")
    return out


def _comparison(metrics: Any, info: dict[str, Any]) -> str:
    overall = metrics[(metrics["scope"] == "overall") & ~metrics["forecaster"].str.endswith(":native")]
    baselines = info.get("baselines", [])
    rows = []
    for _, r in overall.iterrows():
        row = {"forecaster": r["forecaster"], "MSE": float(r["mse"]), "MAE": float(r["mae"]),
               "MASE": float(r.get("mase", np.nan)), "R²": float(r.get("r2", np.nan))}
        if "data_rmse" in r:  # the same forecasts in the data's units (biocount.evaluation.units)
            row |= {"RMSE (data)": float(r["data_rmse"]), "MAE (data)": float(r["data_mae"]),
                    "MAPE %": float(r["data_mape"])}
        for b in baselines:
            p = float(r.get(f"dm_{b}_p", np.nan))
            stat = float(r.get(f"dm_{b}_stat", np.nan))
            row[f"DM vs {b}"] = "" if not np.isfinite(p) else f"{'better' if stat < 0 else 'worse'}, p {_p_mark(p)}"
        rows.append(row)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column nobody scored (all NaN): nothing is best
        best = {k: np.nanmin([r[k] for r in rows]) for k in ("MSE", "MAE", "MASE", "RMSE (data)", "MAE (data)",
                                                             "MAPE %") if k in rows[0]}
        best["R²"] = np.nanmax([r["R²"] for r in rows])
    horizon = metrics[metrics["scope"] == "horizon"].dropna(subset=["mse"])  # a horizon nobody scored: skipped
    winners = [f"h={h}: {g.loc[g['mse'].idxmin(), 'forecaster']}" for h, g in horizon.groupby("horizon")]
    units = info.get("units", {})
    scale = (f"MSE, MAE, MASE and R² on the encoder's scale (what the models fit); RMSE, MAE (data) and MAPE in "
             f"{units.get('label', 'the data units')}. " if units.get("forecasts") == "data" else "")
    return (_table(rows, best) + f"<p>{html.escape(scale)}Best per column in bold. DM: Diebold–Mariano on each "
            "(series, origin)'s summed "
            "squared error, Harvey-corrected; * p &lt; 0.05, ** &lt; 0.01, *** &lt; 0.001. Lowest MSE per horizon: "
            f"{html.escape('; '.join(winners))}.</p>")


def _by_horizon(metrics: Any, info: dict[str, Any]) -> str:
    horizon = metrics[(metrics["scope"] == "horizon") & metrics["forecaster"].isin(_models(metrics))]
    fig, ax = _figure()
    for i, (name, g) in enumerate(horizon.groupby("forecaster", sort=False)):
        g = g.sort_values("horizon")
        ax.plot(g["horizon"].astype(int), g["mse"], marker="o", color=COLOURS[i % len(COLOURS)], label=name)
    ax.set_xlabel("horizon (grid steps)")
    ax.set_ylabel("test MSE")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=8)
    rows = [{"forecaster": n, **{f"h={int(h)}": float(v) for h, v in zip(g["horizon"], g["mse"], strict=True)}}
            for n, g in horizon.groupby("forecaster", sort=False)]
    return _svg(fig, "Test MSE per horizon and forecaster") + _table(rows)


def _features(metrics: Any, info: dict[str, Any]) -> str:
    head = info.get("headline") or _models(metrics)[0]
    per = metrics[(metrics["scope"] == "feature") & (metrics["forecaster"] == head)].sort_values("mse")
    if per.empty:
        return "<p>No per-feature scores.</p>"
    keep = per if len(per) <= 10 else per.iloc[list(range(5)) + list(range(len(per) - 5, len(per)))]
    rows = [{"feature": r["feature"], "MSE": float(r["mse"]), "MAE": float(r["mae"]), "n": int(r["n"])}
            for _, r in keep.iterrows()]
    return f"<p>{html.escape(head)}: the five best and five worst target features by test MSE.</p>" + _table(rows)


def _fans(forecasts: Any, metrics: Any, info: dict[str, Any], history: Any = None, panels: int = 6) -> str:
    head = info.get("headline") or _models(metrics)[0]
    if head not in forecasts:
        return "<p>No forecasts.</p>"
    err = (forecasts[head] - forecasts["observed"]) ** 2
    keys = [forecasts["series"], forecasts["feature"]]
    seen = forecasts["observed"].notna().groupby(keys).sum()
    score = err.groupby(keys).mean()[seen >= seen.median()].dropna().sort_values()  # well-observed ones only
    if score.empty:
        return "<p>No scored forecasts.</p>"
    picks = list(dict.fromkeys([score.index[0], score.index[len(score) // 2], score.index[-1],
                                *score.index[:: max(1, len(score) // panels)]]))[:panels]
    level = min(info.get("conformal_levels", [0.8]), key=lambda lv: abs(lv - 0.8))
    pct = f"{level * 100:g}"
    lo, up = f"{head}_lower_{pct}", f"{head}_upper_{pct}"
    out = []
    for series, feature in picks:
        one = forecasts[(forecasts["series"] == series) & (forecasts["feature"] == feature)]
        fig, ax = _figure(7.0, 2.6)
        obs = one.drop_duplicates("time").sort_values("time")
        if history is not None:  # the whole observed series: training and validation history too
            obs = history[(history["series"] == series) & (history["feature"] == feature)].sort_values("time")
            ax.axvline(one["origin"].min(), color="#999", lw=0.8, ls=":", label="first test origin")
        ax.plot(obs["time"], obs["observed"], color="#555", marker=".", lw=1, label="observed")
        origins = sorted(one["origin"].unique())
        horizon = int(one["horizon"].max())  # origins a horizon apart at least: fans that do not overlap
        for k, origin in enumerate(origins[:: max(horizon, len(origins) // 4)]):
            f = one[one["origin"] == origin].sort_values("time")
            ax.plot(f["time"], f[head], color=COLOURS[0], lw=1.5, label=head if k == 0 else None)
            if lo in f and up in f:
                ax.fill_between(f["time"], f[lo], f[up], color=COLOURS[0], alpha=0.15, lw=0,
                                label=f"{pct} % interval" if k == 0 else None)
        ax.set_title(f"{series} · {feature}", fontsize=9)
        ax.set_xlabel(f"time ({info.get('config', {}).get('time_key') or 'the data’s time column'})", fontsize=8)
        ax.set_ylabel(f"{feature}\n({_unit_label(info)})", fontsize=8)
        ax.legend(frameon=False, fontsize=7)
        out.append(_svg(fig, f"{head} forecasts from several test origins for series {series}, feature {feature}, "
                             "with the observed values"))
    return ("<p>Series × features with the lowest, the median and the highest test error of the headline, and a "
            "spread of others; every forecast is in forecasts.csv.</p>" + "".join(out))


def _unit_label(info: dict[str, Any]) -> str:
    """What the forecasts' values are: the data's units, or the encoder's scale where it declares none."""
    return info.get("units", {}).get("label", "encoded value")


def _calibration(metrics: Any, info: dict[str, Any]) -> str:
    levels = info.get("conformal_levels", [])
    overall = metrics[(metrics["scope"] == "overall") & metrics["forecaster"].isin(_models(metrics))]
    rows = []
    for _, r in overall.iterrows():
        row = {"forecaster": r["forecaster"]}
        for lv in levels:
            col = f"coverage_{lv * 100:g}"
            if col in r and np.isfinite(r[col]):
                row[f"{lv:.0%} interval"] = f"{r[col]:.0%}"
        rows.append(row)
    horizon = metrics[(metrics["scope"] == "horizon") & metrics["forecaster"].isin(_models(metrics))]
    fig, ax = _figure(5.0, 3.0)
    for i, lv in enumerate(levels):
        col = f"coverage_{lv * 100:g}"
        if col in horizon:
            for j, (name, g) in enumerate(horizon.groupby("forecaster", sort=False)):
                ax.plot(g["horizon"].astype(int), g[col], marker="o", color=COLOURS[j % len(COLOURS)],
                        ls="-" if i == 0 else "--", label=f"{name} {lv:.0%}")
            ax.axhline(lv, color="#999", lw=0.8, ls=":")
    ax.set_xlabel("horizon")
    ax.set_ylabel("observed coverage")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=7)
    return ("<p>Split-conformal intervals from validation residuals: observed coverage on the test points against "
            "the nominal level (dotted).</p>" + _table(rows) + _svg(fig, "Observed coverage per horizon"))


def _scores(scores: Any, info: dict[str, Any]) -> str:
    """CRPS, log score, WIS and its parts, hub coverage, skill against the toughest baseline, PIT histograms."""
    if scores is None or not len(scores):
        return "<p>No scores.csv in this folder (written by an older biocount); rerun biocount run for them.</p>"
    summary = info.get("scores", {})
    tough = (summary.get("toughest") or {}).get("name")
    every = scores[(scores["horizon"] == "all") & (scores["feature"] == "all")]
    rows, warn = [], []
    for _, r in every.iterrows():
        label = r["forecaster"] + ("" if r["distribution"] == "conformal" else f" ({r['distribution']}"
                                   + (", on the counts)" if r.get("scale") == "counts" else ")"))
        row = {"forecaster": label, "CRPS": r["crps"],
               "log score": r["logs"] if np.isfinite(r.get("logs", np.nan)) else ""}  # only with a density
        row |= {"WIS": r["wis"], "dispersion": r["dispersion"], "over": r["overprediction"],
                "under": r["underprediction"]}
        for lv in ("50", "80", "90", "95"):
            row[f"cover {lv}%"] = f"{r[f'coverage_{lv}']:.0%}"
            if r[f"coverage_{lv}"] < int(lv) / 100 - 0.1:
                warn.append(f"{label}: the {lv}% interval covers {r[f'coverage_{lv}']:.0%} of the test points")
        if tough and f"crps_skill_{tough}" in r and np.isfinite(r[f"crps_skill_{tough}"]):
            row[f"CRPS skill vs {tough}"] = (f"{r[f'crps_skill_{tough}']:.3f} [{r[f'crps_skill_{tough}_lo']:.3f}, "
                                             f"{r[f'crps_skill_{tough}_hi']:.3f}]")
        rows.append(row)
    if not any(isinstance(r["log score"], float) for r in rows):  # no forecaster with a density: no column
        for r in rows:
            del r["log score"]
    encoded = every[every["scale"] != "counts"] if "scale" in every else every
    best = {"CRPS": encoded["crps"].min(), "WIS": encoded["wis"].min()}
    by_h = scores[(scores["horizon"] != "all") & (scores["feature"] == "all") & (scores["distribution"] == "conformal")]
    h_rows = [{"forecaster": name} | {f"h={r['horizon']}": r["crps"] for _, r in g.iterrows()}
              for name, g in by_h.groupby("forecaster", sort=False)]
    figs = _pit_figure(summary.get("pit", {})) + _coverage_figure(summary.get("coverage", {}), info.get("headline"))
    text = ("<p>Every forecaster's conformal predictive distribution (quantiles at the 23 FluSight levels, "
            "calibrated per horizon on validation residuals) scored on the same test points as hubs score: CRPS "
            "(from the quantiles; closed form for a normal), weighted interval score with its parts, coverage of "
            "the 50/80/90/95 % intervals"
            + (f", CRPS skill against the toughest baseline, {html.escape(tough)}, with a bootstrap 95 % interval"
               if tough else "")
            + ". A forecaster's own distribution is a second row. Values on the target's encoded scale, except "
            "rows marked 'on the counts' (a count likelihood scored on the raw counts: compare them only with "
            "each other). "
            "scores.csv has every horizon and DM tests.</p>")
    warnings_html = "".join(f'<p class="warn">{html.escape(w)}</p>' for w in warn)
    return text + warnings_html + _table(rows, best) + "<h3>CRPS by horizon</h3>" + _table(h_rows) + figs


def _pit_figure(pit: dict[str, list[int]]) -> str:
    """Small multiples: one PIT histogram per scored distribution, the uniform density dashed."""
    if not pit:
        return ""
    names = list(pit)
    cols = min(4, len(names))
    nrows = -(-len(names) // cols)
    fig, axes = _pyplot().subplots(nrows, cols, figsize=(2.4 * cols, 2.1 * nrows), squeeze=False, sharey=True)
    for ax, name in zip(axes.ravel(), names, strict=False):
        counts = np.asarray(pit[name], dtype=float)
        dens = counts / max(counts.sum(), 1) * counts.size
        ax.bar((np.arange(counts.size) + 0.5) / counts.size, dens, width=1 / counts.size, color=COLOURS[0],
               edgecolor="white")
        ax.axhline(1.0, color="#999", ls="--", lw=0.8)
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("density", fontsize=7)
    for ax in axes.ravel()[max(len(names) - cols, 0): len(names)]:  # the lowest panel of each column
        ax.set_xlabel("PIT value", fontsize=7)
    fig.tight_layout()
    return _svg(fig, "PIT histograms of the test points (flat at the dashed line = calibrated; U-shaped = too "
                     "narrow; hump-shaped = too wide)")


def _coverage_figure(coverage: dict[str, dict[str, list[float]]], head: str | None) -> str:
    """The headline's coverage of its 50/80/90/95 % central intervals by horizon, against the nominal levels."""
    if head not in coverage:
        return ""
    fig, ax = _figure(5.0, 3.0)
    for i, (lv, values) in enumerate(coverage[head].items()):
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", color=COLOURS[i % len(COLOURS)],
                label=f"{lv}% interval")
        ax.axhline(int(lv) / 100, color=COLOURS[i % len(COLOURS)], lw=0.8, ls=":")
    ax.set_xlabel("horizon (steps ahead)")
    ax.set_ylabel("share of test points covered")
    ax.set_ylim(0, 1.02)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig, f"Coverage of {head}'s central intervals by horizon (dotted: nominal)")


def _importance(metrics: Any, info: dict[str, Any]) -> str:
    out = []
    for name, by_mod in info.get("importance", {}).items():
        rows = [{"modality": m, "rise in test MSE": v["delta_mse"], "95 % low": v["low"], "95 % high": v["high"],
                 "repeats": v["repeats"]} for m, v in sorted(by_mod.items(), key=lambda kv: -kv[1]["delta_mse"])]
        fig, ax = _figure(6.0, 0.5 + 0.45 * len(rows))
        ys = np.arange(len(rows))
        ax.barh(ys, [r["rise in test MSE"] for r in rows], color=COLOURS[0],
                xerr=np.array([[r["rise in test MSE"] - r["95 % low"], r["95 % high"] - r["rise in test MSE"]]
                               for r in rows]).T.clip(min=0))
        ax.set_yticks(ys, [r["modality"] for r in rows])
        ax.axvline(0, color="#555", lw=0.8)
        ax.set_xlabel("rise in test MSE when the modality is shuffled between series")
        first = next(iter(by_mod.values()))
        sample = (f"<p>Scored on a seeded sample of {first['origins']:,} of the {first['of']:,} test origins (the same "
                  "for every shuffle): each shuffle forecasts every origin it scores.</p>"
                  if first["origins"] < first["of"] else "")
        out.append(f"<h3>{html.escape(name)}: permutation importance</h3>" + sample + _table(rows)
                   + _svg(fig, f"Permutation importance of each input modality for {name}"))
    ablations = metrics[(metrics["scope"] == "overall") & metrics["forecaster"].str.contains(r"\[", regex=True)]
    if not ablations.empty:
        rows = [{"model (inputs kept)": r["forecaster"], "MSE": float(r["mse"]),
                 "DM vs full": f"{'worse' if r['dm_full_stat'] > 0 else 'better'}, p {_p_mark(float(r['dm_full_p']))}"}
                for _, r in ablations.iterrows()]
        out.append("<h3>Ablation (--ablate-modalities): refitted without modalities</h3>" + _table(rows))
    out += [_attributions(name, summary) for name, summary in info.get("attributions", {}).items()]
    if not out:
        return "<p>No forecaster with input modalities besides the target's history.</p>"
    return ("<p>Permutation: the fitted model, inputs of one modality shuffled between series, the same test origins; "
            "an interval excluding zero means the model uses that modality here. It cannot tell a redundant "
            "modality from a useless one, nor prove a biological cause (docs/report.md). Integrated gradients: how "
            "much each input value, at each lookback step, moved the forecast away from the forecast made from "
            "mean inputs; it shows where the model looks, not where the biology acts.</p>" + "".join(out))


def _attributions(name: str, ig: dict[str, Any]) -> str:
    """Integrated gradients: share per modality and lookback step, and the top features per modality."""
    offsets = ig["offsets"]
    fig, ax = _figure(6.0, 2.6)
    for k, (mod, m) in enumerate(ig["modalities"].items()):
        ax.plot(offsets, m["by_step"], marker="o", color=COLOURS[k % len(COLOURS)], label=mod)
    ax.set_xlabel("lookback step (0 = the forecast origin)")
    ax.set_ylabel("share of |attribution|")
    ax.legend(frameon=False, fontsize=7)
    parts = [f"<h3>{html.escape(name)}: integrated gradients ({ig['windows']} test windows, {ig['steps']} steps)</h3>",
             _table([{"input": k, "share of |attribution|": v} for k, v in ig["shares"].items()]),
             _svg(fig, f"Share of attribution per lookback step and modality for {name}")]
    for mod, m in ig["modalities"].items():
        matrix = np.asarray(m["matrix"])
        if not matrix.size:
            continue
        fig, ax = _figure(6.0, 0.8 + 0.22 * matrix.shape[0])
        image = ax.imshow(matrix, aspect="auto", cmap="viridis")
        ax.set_yticks(range(len(m["features"])), m["features"], fontsize=7)
        ax.set_xticks(range(len(offsets)), offsets)
        ax.set_xlabel("lookback step")
        ax.figure.colorbar(image, ax=ax, label="share of |attribution|")
        parts.append(f"<h4>{html.escape(mod)}: top features by lookback step</h4>"
                     + _svg(fig, f"Attribution of the top {mod} features per lookback step for {name}"))
    rows = [{"target": t, "top inputs (modality:feature share)": ", ".join(f"{m}:{f} {v:.2f}" for m, f, v in top)}
            for t, top in ig["top_inputs"].items()]
    return "".join(parts) + "<h4>Top inputs per target</h4>" + _table(rows)


def _training(info: dict[str, Any]) -> str:
    out = []
    for name, rep in info.get("forecasters", {}).items():
        history = rep.get("history")
        if not history:
            continue
        fig, ax = _figure(6.0, 2.6)
        epochs = [h[0] for h in history]
        ax.plot(epochs, [h[1] for h in history], color=COLOURS[0], label="training loss")
        if any(h[2] is not None for h in history):
            ax.plot(epochs, [np.nan if h[2] is None else h[2] for h in history], color=COLOURS[1], label="validation MSE")
        ax.axvline(rep.get("best_epoch", 0), color="#999", ls=":", lw=0.8)
        ax.set_xlabel("epoch")
        ax.legend(frameon=False, fontsize=8)
        facts = {k: rep[k] for k in ("device", "lookback", "epochs_run", "best_epoch", "best_epochs", "members",
                                      "torch_threads") if k in rep}
        out.append(f"<h3>{html.escape(name)}</h3>" + _table([{"": k, "value": str(v)} for k, v in facts.items()])
                   + _svg(fig, f"{name}: training and validation loss per epoch (first member); dotted: best epoch"))
    return "".join(out) or "<p>No trained network in this run.</p>"


def _baselines(info: dict[str, Any]) -> str:
    rows = []
    for name, rep in info.get("forecasters", {}).items():
        fallback = rep.get("fallback")
        if fallback or "orders" in rep:
            rows.append({"forecaster": name, "fallbacks": _plain(fallback) if fallback else "none",
                         "orders": _plain(rep.get("orders")) or "none recorded"})
    text = ""
    for name, w in info.get("ensembles", {}).items():
        W = np.atleast_2d(np.asarray(w["weights"], dtype=float))  # (scopes, members)
        scope = {"pooled": "all", "horizon": "h={}", "feature": "feature {}"}[w["per"]]
        table = [{"member": m} | {scope.format(i + 1): f"{W[i, j]:.2f}" for i in range(W.shape[0])}
                 for j, m in enumerate(w["members"]) if W[:, j].max() > 0]
        text += (f"<p>{html.escape(name)}: weights per {html.escape(w['per'])}, fitted on validation points only "
                 "(members with no weight left out)</p>" + _table(table))
        for i, c in enumerate(w.get("choices", [])):
            if c.get("fallback"):
                text += f'<div class="warn">{html.escape(scope.format(i + 1))}: fell back to {html.escape(c["fallback"])}</div>'
    sets = info.get("modality_sets", [])
    if sets:
        text += "<p>Modality sets (validation points only):</p><ul>" + "".join(
            f"<li>{html.escape(r['text'])}</li>" for r in sets) + "</ul>"
    return _table(rows) + text


def _notes(info: dict[str, Any]) -> str:
    notes = info.get("notes", [])
    return "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else "<p>No notes.</p>"


def _run(info: dict[str, Any]) -> str:
    split = info.get("split", {})
    scored = [{"role": role, **v} for role, v in info.get("scored", {}).items()]
    data = [{"source": d.get("source"), "sha256": str(d.get("sha256", ""))[:16], "bytes": d.get("bytes", "")}
            for d in info.get("data", [])]
    plugins = [{"forecaster": n, "component": v.get("component"), "version": v.get("version")}
               for n, v in info.get("plugins", {}).get("forecasters", {}).items()]
    encoders = [{"modality": n, "encoder": e} for n, e in info.get("plugins", {}).get("encoders", {}).items()]
    timings = [{"stage": k, "seconds": v, "peak MB": info.get("peak_rss_mb", {}).get(k, "")}
               for k, v in info.get("timings_s", {}).items()]
    options = [{"option": k, "value": _plain(v)} for k, v in info.get("config", {}).items()
               if v not in (None, [], {}, "")]
    return ("<h3>Scored</h3>" + _table(scored)
            + "<h3>Split</h3>" + _table([{"": k, "value": _plain(v)} for k, v in split.items()])
            + "<h3>Data</h3>" + _table(data) + "<h3>Plugins</h3>" + _table(plugins) + _table(encoders)
            + "<h3>Time per stage</h3>" + _table(timings)
            + "<h3>Versions</h3>" + _table([{"": k, "version": v} for k, v in info.get("versions", {}).items()])
            + "<h3>Options</h3>" + _table(options))


def _plain(value: Any, limit: int = 300) -> str:
    """A run.json value as words for a table cell, not JSON: 'a: 1; b: x, y'."""
    if isinstance(value, dict):
        text = "; ".join(f"{k}: {_plain(v, limit)}" for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        text = ", ".join(_plain(v, limit) for v in value)
    elif value is None:
        text = ""
    else:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
