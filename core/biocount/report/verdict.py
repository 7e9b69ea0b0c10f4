"""The plain conclusion of a run, in three lines: which forecast to trust, whether each modality helps, what next.

1. **best**: the headline (chosen on validation points only) against the toughest baseline (the baseline
   with the lowest test MSE), with the Diebold–Mariano p-value of the test errors;
2. **modalities**: each input modality, by the LSTM-like forecaster with and without it (its modality-subset
   view, :class:`biocount.evaluation.backtest.View`) on the test origins, with the DM p-value;
3. **next**: one suggestion from the two lines above and the intervals' coverage.

The console ends with these lines and report.html opens with them (run.json ``verdict``). "Helps" and
"better" need p < 0.05; everything else is said as "no clear difference".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from biocount.evaluation.intervals import pct

ALPHA = 0.05


def verdict(bt: Any, comparison: Any, headline: str, baselines: list[str], level: float) -> list[str]:
    """The three lines (see the module docstring)."""
    best, worst_case = _best(comparison, headline, baselines)
    modalities, unhelpful = _modalities(bt, comparison)
    return [best + _beaten_by_a_part(bt, comparison, headline, baselines), modalities,
            _next(comparison, headline, baselines, worst_case, unhelpful, level)]


def _beaten_by_a_part(bt: Any, comparison: Any, headline: str, baselines: list[str]) -> str:
    """Said, not acted on: a member of the headline (not a baseline) significantly better on the test points.
    The headline was chosen on validation points; switching to the member now would be choosing on test."""
    members = bt.weights.get(headline, {}).get("members", [])
    head = bt.forecasts[headline]["test"].mean
    better = []
    for m in members:
        if m in baselines or m not in bt.forecasts:
            continue
        stat, p = bt._dm(head, bt.forecasts[m]["test"].mean)
        if np.isfinite(p) and p < ALPHA and stat > 0:
            better.append((float(comparison.loc[m, "mse"]), m, p))
    if not better:
        return ""
    mse, m, p = min(better)
    return (f"; but {m} alone did better on the test points (MSE {mse:.3g}, DM p = {p:.2g}): validation chose "
            "the combination, and it did not carry over here")


def _toughest(comparison: Any, baselines: list[str]) -> str | None:
    scored = [b for b in baselines if b in comparison.index and np.isfinite(comparison.loc[b, "mse"])]
    return min(scored, key=lambda b: comparison.loc[b, "mse"]) if scored else None


def _best(comparison: Any, headline: str, baselines: list[str]) -> tuple[str, str | None]:
    """The first line, and the toughest baseline where the headline does not clearly beat it."""
    head = comparison.loc[headline]
    tough = _toughest(comparison, [b for b in baselines if b != headline])
    if tough is None:
        return f"best: {headline} (test MSE {head['mse']:.3g}); no baseline to compare it with", None
    other = comparison.loc[tough, "mse"]
    p = float(head.get(f"dm_{tough}_p", np.nan))
    if not np.isfinite(p) and np.isclose(head["mse"], other, rtol=1e-12, atol=0):  # all its weight on the baseline
        return (f"best: {headline} is {tough}'s forecast here (test MSE {other:.3g}): nothing of the run beat it on "
                "validation"), tough
    change = (head["mse"] - other) / other if other > 0 else np.nan
    how = f"{abs(change):.1%} {'lower' if change < 0 else 'higher'}" if np.isfinite(change) else "equal"
    if np.isfinite(p) and p < ALPHA:
        word = "beats" if change < 0 else "is worse than"
    else:
        word = "is not clearly better than"
    line = (f"best: {headline} {word} {tough}, the toughest baseline: test MSE {head['mse']:.3g} vs {other:.3g}, "
            f"{how} (DM p = {p:.2g})")
    return line, (None if word == "beats" else tough)


def _modalities(bt: Any, comparison: Any) -> tuple[str, list[str]]:
    """The second line, and the modalities that do not clearly help."""
    parts, unhelpful = [], []
    for label, v in bt.views.items():
        if len(v.drops) != 1:
            continue
        (m,) = v.drops
        stat, p = bt._dm(bt.forecasts[v.model]["test"].mean, bt.forecasts[label]["test"].mean)
        with_mse, without_mse = float(comparison.loc[v.model, "mse"]), float(comparison.loc[label, "mse"])
        if np.isfinite(p) and p < ALPHA:
            word = "helps" if stat < 0 else "hurts"
        else:
            word = "does not clearly help"
        if word != "helps":
            unhelpful.append(m)
        parts.append(f"{m} {word} the {v.model} (test MSE {with_mse:.3g} with, {without_mse:.3g} without; "
                     f"DM p = {p:.2g})")
    if not parts:
        return "modalities: none to judge (the forecasters read the target's own history only)", []
    return "modalities: " + "; ".join(parts), unhelpful


def _next(comparison: Any, headline: str, baselines: list[str], tough: str | None, unhelpful: list[str],
          level: float) -> str:
    if tough is not None:
        return (f"next: the forecasters do not clearly beat {tough} here; more series or longer histories may help, "
                f"and until then {tough} is as good a forecast")
    if unhelpful:
        return (f"next: try the run without {', '.join(unhelpful)} (--modalities), which does not clearly help; "
                "or add a modality that carries signal")
    cover = float(comparison.loc[headline].get(f"coverage_{pct(level)}", np.nan))
    if np.isfinite(cover) and cover < level - 0.1:
        return (f"next: the {level:.0%} intervals cover {cover:.0%} of test points; give them more validation "
                "origins (--val-size) before trusting them")
    return (f"next: use {headline}: bc.tl.forecast stores its forecasts past the last time point; report.html shows "
            "the series it forecasts worst")
