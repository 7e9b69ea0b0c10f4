"""A backtest's predictive distributions, scored as forecasting hubs score them (see :mod:`biocount.evaluation.scores`).

Every forecaster, ensembles and input-subset views included, gets the same kind of predictive
distribution, so its scores compare on identical origins and points: the **conformal** one, quantiles
at :data:`biocount.evaluation.scores.QUANTILES` calibrated per horizon on validation residuals (as the conformal
intervals are; :func:`biocount.evaluation.intervals.conformal_quantiles`). A forecaster that forecasts a
distribution of its own is scored a second time on it as ``<name>:native``: closed-form CRPS and the
log score for a normal one (``Forecast.sd``), the quantile scores for native quantiles at every hub
level; one with a count likelihood (``Forecast.counts``: Poisson, negative binomial) also as
``<name>:counts``, on the raw counts (``scale`` = counts in the table: not comparable with the other rows). The tidy table (:func:`score_table`, ``scores.csv``) has a row per forecaster, distribution and
horizon (``all`` = every horizon); skill against each baseline is 1 - CRPS / baseline CRPS with a
bootstrap 95 % interval over (series, origin) units, and a DM test on the units' CRPS.

All other scores are on the scale the forecasts are made and scored on (the target's encoded values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from biocount.evaluation import scores as S
from biocount.evaluation.intervals import conformal_quantiles, pct
from biocount.evaluation.metrics import dm_test, naive_scale, unit_loss

BOOTSTRAP = 1000  # resamples of (series, origin) units for skill intervals
SEED = 0  # the bootstrap's and the randomised PIT's generator: same numbers every run


ROWS = 16_384  # test origins scored at once: the quantiles of a chunk, not of a whole large study, are in memory


def distributions(bt) -> dict[str, dict[str, Any]]:
    """name -> {"q": rows -> (n, H, F, K) test quantiles of those origins (built when asked: a large study's
    quantile arrays for every forecaster would not fit in memory together), "kind", and "w" (H, K) conformal
    widths or "sd" for a normal}; cached on the backtest."""
    return _distributions(bt)[0]


def distribution_notes(bt) -> list[str]:
    """What the predictive quantiles had to cap (a short validation period), as notes."""
    return _distributions(bt)[1]


def _distributions(bt) -> tuple[dict[str, dict[str, Any]], list[str]]:
    if getattr(bt, "_distributions", None) is not None:
        return bt._distributions
    val_scale, test_scale = bt._scales()
    levels = np.asarray(S.QUANTILES)
    out, capped = {}, set()
    for name, fc in bt.forecasts.items():
        w, short = conformal_quantiles(fc["val"].mean, bt.y_val, val_scale, levels)
        capped |= set(short)
        test = fc["test"]
        out[name] = {"kind": "conformal", "w": w,
                     "q": lambda r, m=test.mean, w=w: m[r][..., None] + w[None, :, None, :] * test_scale[r][..., None]}
        if test.sd is not None:
            from scipy.stats import norm

            out[f"{name}:native"] = {"kind": "normal", "sd": test.sd,
                                     "q": lambda r, m=test.mean, sd=test.sd: m[r][..., None] + norm.ppf(levels) * sd[r][..., None]}
        elif all(round(float(t), 6) in test.quantiles for t in levels):
            out[f"{name}:native"] = {"kind": "quantiles",
                                     "q": lambda r, qs=test.quantiles: np.stack([qs[round(float(t), 6)][r] for t in levels],
                                                                                axis=-1)}
        if test.counts is not None and bt.data.y_counts is not None:  # a count likelihood: scored on the counts
            out[f"{name}:counts"] = _count_entry(test.counts, levels)
    notes = []
    if capped:
        n = int(np.sum(np.isfinite(bt.y_val[:, min(capped) - 1])))
        notes.append(f"conformal predictive quantiles: too few validation residuals at "
                        f"h = {', '.join(map(str, sorted(capped)))} (e.g. {n}) for the outer levels' guarantee; "
                        "those quantiles are the largest residual (raise --val-size for calibrated tails)")
    bt._distributions = (out, notes)
    return bt._distributions


def _count_entry(counts, levels: np.ndarray) -> dict[str, Any]:
    from scipy import stats

    mu = np.maximum(counts.mu, 1e-12)
    size = None if counts.size is None else np.broadcast_to(counts.size, mu.shape)

    def dist(r):  # scipy's distribution of the origins ``r``
        return stats.poisson(mu[r]) if size is None else stats.nbinom(size[r], size[r] / (size[r] + mu[r]))

    return {"kind": "poisson" if size is None else "negbinom", "mu": mu, "size": size, "dist": dist,
            "q": lambda r: np.moveaxis(np.stack([dist(r).ppf(t) for t in levels]), 0, -1)}


def _count_scores(y: np.ndarray, dist: dict[str, Any], rng: np.random.Generator, r: slice) -> dict[str, np.ndarray]:
    """Closed-form CRPS, log score and the randomised PIT of a count distribution at observed counts ``y`` of the
    origins ``r``."""
    q, mu = dist["q"](r), dist["mu"][r]
    yy = np.where(np.isnan(y) | ~np.all(np.isfinite(q), axis=-1), np.nan, y)
    if dist["kind"] == "poisson":
        crps, logs = S.crps_poisson(yy, mu), S.logs_poisson(yy, mu)
    else:
        crps, logs = S.crps_negbinom(yy, dist["size"][r], mu), S.logs_negbinom(yy, dist["size"][r], mu)
    return _with_quantile_scores({"crps": crps, "logs": logs, "pit": S.pit_counts(yy, dist["dist"](r).cdf, rng)},
                                 yy, q, mu)


def _with_quantile_scores(out: dict[str, np.ndarray], yy: np.ndarray, q: np.ndarray,
                          mean: np.ndarray) -> dict[str, np.ndarray]:
    """Add what every distribution gets from its quantiles: WIS and its parts, coverage; and the squared error."""
    out["se"] = np.where(np.isnan(yy), np.nan, (mean - np.nan_to_num(yy)) ** 2)
    out |= S.wis(yy, np.nan_to_num(q))
    for level in S.COVERAGE:
        out[f"coverage_{pct(level)}"] = S.covered(yy, np.nan_to_num(q), level)
    return out


def observed_counts(bt) -> np.ndarray:
    """The raw counts at the test targets (N, H, F), as ``bt.y_test`` holds the encoded values."""
    from dataclasses import replace

    from biocount.evaluation.backtest import targets

    return targets(replace(bt.data, y=bt.data.y_counts), bt.test_origins, bt.horizon)


def _point_scores(y: np.ndarray, dist: dict[str, Any], mean: np.ndarray, rng: np.random.Generator,
                  r: slice) -> dict[str, np.ndarray]:
    """Pointwise scores (n, H, F) of one distribution at the origins ``r`` (``y`` and ``mean`` are theirs); NaN
    where y or the forecast is missing."""
    q = dist["q"](r)
    ok = ~np.isnan(y) & np.all(np.isfinite(q), axis=-1)
    yy = np.where(ok, y, np.nan)
    if dist["kind"] == "normal":
        sd = np.where(ok & (dist["sd"][r] > 0), dist["sd"][r], np.nan)
        yy = np.where(np.isnan(sd), np.nan, yy)
        crps = S.crps_normal(yy, mean, np.nan_to_num(sd, nan=1.0))
        logs = S.logs_normal(yy, mean, np.nan_to_num(sd, nan=1.0))
        from scipy.stats import norm

        pit = np.where(np.isnan(yy), np.nan, norm.cdf((np.nan_to_num(yy) - mean) / np.nan_to_num(sd, nan=1.0)))
    else:
        crps, logs = S.crps_quantiles(yy, np.nan_to_num(q)), np.full(y.shape, np.nan)
        pit = S.pit_quantiles(yy, np.nan_to_num(q), rng)
    return _with_quantile_scores({"crps": crps, "logs": logs, "pit": pit}, yy, q, mean)


def pointwise(bt) -> dict[str, dict[str, np.ndarray]]:
    """name -> score -> (N, H, F) on test points; cached."""
    if getattr(bt, "_pointwise", None) is None:
        rng = np.random.default_rng(SEED)  # chunks in order draw what one pass over every origin would
        bt._pointwise = {}
        for name, dist in distributions(bt).items():
            counts = name.endswith(":counts")
            y = observed_counts(bt) if counts else bt.y_test
            mean = bt.forecasts[name.removesuffix(":native")]["test"].mean if not counts else None
            parts = [_count_scores(y[r], dist, rng, r) if counts else _point_scores(y[r], dist, mean[r], rng, r)
                     for r in (slice(a, a + ROWS) for a in range(0, max(y.shape[0], 1), ROWS))]
            bt._pointwise[name] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return bt._pointwise


def _units(bt) -> np.ndarray:
    return bt.test_origins[:, 0] * bt.data.times.size + bt.test_origins[:, 1]


def _skill(a: np.ndarray, b: np.ndarray, units: np.ndarray) -> tuple[float, float, float]:
    """1 - sum(a) / sum(b) over points both score, with a bootstrap 95 % interval over units (its own
    generator per call: the same interval whichever other scopes the table holds)."""
    rng = np.random.default_rng(SEED)
    ok = np.isfinite(a) & np.isfinite(b)
    sa = pd.Series(np.where(ok, a, 0).reshape(a.shape[0], -1).sum(1)).groupby(units).sum().to_numpy()
    sb = pd.Series(np.where(ok, b, 0).reshape(b.shape[0], -1).sum(1)).groupby(units).sum().to_numpy()
    if sb.sum() <= 0:
        return np.nan, np.nan, np.nan
    batch = max(1, min(BOOTSTRAP, 4_000_000 // sa.size))  # resamples at once: bounded memory on large studies
    boot = np.empty(BOOTSTRAP)
    for start in range(0, BOOTSTRAP, batch):
        idx = rng.integers(0, sa.size, size=(min(batch, BOOTSTRAP - start), sa.size))
        boot[start: start + idx.shape[0]] = 1 - sa[idx].sum(1) / np.maximum(sb[idx].sum(1), 1e-300)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(1 - sa.sum() / sb.sum()), float(lo), float(hi)


def score_table(bt, by_feature: bool = False) -> pd.DataFrame:
    """The tidy scores table (scores.csv): forecaster x distribution x horizon (x feature with ``by_feature``)."""
    points = pointwise(bt)
    units = _units(bt)
    baselines = [b for b in bt.baselines if b in bt.forecasts]
    scopes: list[tuple[Any, Any, tuple]] = [("all", "all", (slice(None),))]
    scopes += [(h + 1, "all", (slice(None), slice(h, h + 1))) for h in range(bt.horizon)]
    if by_feature:
        for f, feature in enumerate(bt.data.target_features):
            scopes += [("all", str(feature), (slice(None), slice(None), slice(f, f + 1)))]
            scopes += [(h + 1, str(feature), (slice(None), slice(h, h + 1), slice(f, f + 1))) for h in range(bt.horizon)]
    rows = []
    for name, sc in points.items():
        kind = distributions(bt)[name]["kind"]
        base = name.removesuffix(":native").removesuffix(":counts")
        for h, feature, sl in scopes:
            crps = sc["crps"][sl]
            row = {"forecaster": base, "distribution": kind, "scale": "counts" if name.endswith(":counts") else "encoded",
                   "horizon": h, "feature": feature, "n": int(np.sum(np.isfinite(crps))), "mse": _mean(sc["se"][sl])}
            row |= {k: _mean(sc[k][sl]) for k in ("crps", "logs", "wis", "dispersion", "overprediction",
                                                   "underprediction")}
            row |= {f"coverage_{pct(lv)}": _mean(sc[f"coverage_{pct(lv)}"][sl]) for lv in S.COVERAGE}
            if kind == "conformal":
                for b in baselines:
                    if b == name:
                        continue
                    other = points[b]["crps"][sl]
                    row[f"crps_skill_{b}"], row[f"crps_skill_{b}_lo"], row[f"crps_skill_{b}_hi"] = \
                        _skill(crps, other, units)
                    stat, p, _ = dm_test(unit_loss(crps, units), unit_loss(other, units), bt.horizon if h == "all" else h)
                    row[f"dm_crps_{b}_stat"], row[f"dm_crps_{b}_p"] = stat, p
            rows.append(row)
    return pd.DataFrame(rows)


def _mean(v: np.ndarray) -> float:
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else np.nan


def summary(bt, bins: int = 10) -> dict[str, Any]:
    """For run.json and the report: PIT histograms and coverage by horizon per distribution."""
    out: dict[str, Any] = {"quantile_levels": list(S.QUANTILES), "coverage_levels": list(S.COVERAGE),
                           "scale": "the target's encoded values (as every metric)", "pit": {}, "coverage": {},
                           "conformal_widths": {k: d["w"].tolist() for k, d in distributions(bt).items() if "w" in d}}
    for name, sc in pointwise(bt).items():
        out["pit"][name] = S.pit_histogram(sc["pit"], bins).tolist()
        out["coverage"][name] = {pct(lv): [_mean(sc[f"coverage_{pct(lv)}"][:, h]) for h in range(bt.horizon)]
                                 for lv in S.COVERAGE}
    out["toughest"] = toughest(bt)
    scale = naive_scale(bt.data.y, bt.split.train_end)  # with the widths, rebuilds any quantile (biocount export)
    out["naive_scale"] = {str(s): row.tolist() for s, row in zip(bt.data.series, scale, strict=True)}
    return out


def toughest(bt) -> dict[str, Any] | None:
    """The baseline with the lowest conformal CRPS over every horizon, and its CRPS."""
    pts = pointwise(bt)
    have = [(b, _mean(pts[b]["crps"])) for b in bt.baselines if b in pts]
    have = [x for x in have if np.isfinite(x[1])]
    if not have:
        return None
    name, value = min(have, key=lambda x: x[1])
    return {"name": name, "crps": value}
