"""Plots of stored forecasts (``bc.pl``): matplotlib, colour-blind-safe (Okabe–Ito) colours."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]


def _plain_text(fn):
    """Names are drawn as typed: a series called ``$x$`` is not mathtext (an unknown macro would make
    matplotlib fail at draw time)."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return fn(*args, **kwargs)

    return wrapper


def _show(fig: Any, axes: Any, show: bool | None, return_fig: bool) -> Any:
    import matplotlib.pyplot as plt

    if return_fig:
        return fig
    if show is None:
        import sys

        sc = sys.modules.get("scanpy")
        show = bool(getattr(sc.settings, "autoshow", True)) if sc is not None else False
    if show:
        plt.show()
        return None
    return axes


@_plain_text
def forecast(data: AnnData | MuData, *, features: list[str], key: str = "forecast", series: list[str] | None = None,
             mod: str | None = None, ax: Any = None, show: bool | None = None, return_fig: bool = False) -> Any:
    """History, one-step-ahead fitted values, forecast and interval per feature; one panel per feature.

    Parameters
    ----------
    data
        The object :func:`biocount.tl.forecast` wrote into.
    features
        Target features to draw, one panel each.
    key
        The forecast's ``key_added``.
    series
        Series to draw (default: up to the first three), one colour each.
    mod
        MuData: the target modality.
    ax
        Axes to draw into (one feature only).
    show
        Show the figure (default: scanpy's ``autoshow`` when scanpy is imported, else no).
    return_fig
        Return the Figure.

    Returns
    -------
    The Axes (a list for several features) when not shown, the Figure with ``return_fig=True``, else None.
    """
    import matplotlib.pyplot as plt

    from biocount.api.get import forecast_df

    df = forecast_df(data, key=key, mod=mod, features=features)
    chosen = series if series is not None else list(dict.fromkeys(df["series"]))[:3]
    unknown = sorted(set(chosen) - set(df["series"]))
    if unknown:
        raise BiocountInputError(f"series {', '.join(unknown)} not in forecast '{key}'")
    if ax is not None and len(features) != 1:
        raise BiocountInputError("ax= takes one feature; pass one feature or let biocount make the figure")
    if ax is None:
        fig, axes = plt.subplots(1, len(features), figsize=(4.2 * len(features), 3.2), squeeze=False)
        axes = list(axes[0])
    else:
        fig, axes = ax.figure, [ax]
    for a, feature in zip(axes, features, strict=True):
        part = df[df["feature"] == feature]
        for i, name in enumerate(chosen):
            colour = OKABE_ITO[i % len(OKABE_ITO)]
            rows = part[part["series"] == name]
            hist, fut = rows[rows["kind"] == "fitted"], rows[rows["kind"] == "forecast"]
            a.plot(hist["time"], hist["observed"], "o-", color=colour, ms=3, lw=1, label=f"{name} observed")
            fitted = hist[hist["mean"].notna()]
            a.plot(fitted["time"], fitted["mean"], "x", color=colour, ms=4, alpha=0.8,
                   label="one-step forecasts" if i == 0 else None)
            if len(fut):
                a.plot(fut["time"], fut["mean"], "--", color=colour, lw=1.5, label=f"{name} forecast")
                if fut["lower"].notna().any():
                    a.fill_between(fut["time"], fut["lower"], fut["upper"], color=colour, alpha=0.18, lw=0)
        a.set_title(str(feature))
        a.set_xlabel("time")
        a.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("value (encoder scale)")
    axes[-1].legend(frameon=False, fontsize=7, loc="best")
    fig.tight_layout()
    return _show(fig, axes if len(axes) > 1 else axes[0], show, return_fig)


@_plain_text
def compare(data: AnnData | MuData, *, keys: list[str], metric: str = "mse", mod: str | None = None, ax: Any = None,
            show: bool | None = None, return_fig: bool = False) -> Any:
    """Bars of one metric per stored forecast, marked * (p < 0.05) / ** (p < 0.01) by the DM test
    against the reference key (see :func:`biocount.tl.compare`).

    Parameters
    ----------
    data, keys, mod
        As for :func:`biocount.tl.compare`.
    metric
        A column of the comparison: mse, rmse, mae, r2, mase, smape, coverage_80, crps, ...
    ax, show, return_fig
        As for :func:`forecast`.
    """
    import matplotlib.pyplot as plt

    from biocount.api.tl import comparison_table

    table, _ = comparison_table(data, keys=keys, mod=mod)  # a plot reads; it never writes into data
    if metric not in table:
        raise BiocountInputError(f"metric '{metric}' is not in the comparison; available: "
                                 f"{', '.join(c for c in table.columns if c not in ('method',))}")
    fig, a = (plt.subplots(figsize=(1.2 + 0.9 * len(keys), 3.0)) if ax is None else (ax.figure, ax))
    values = table[metric].to_numpy(dtype=float)
    a.bar(range(len(keys)), values, color=[OKABE_ITO[i % len(OKABE_ITO)] for i in range(len(keys))])
    for i, k in enumerate(table.index):
        p = table.loc[k].get("dm_p", np.nan)
        mark = "**" if p < 0.01 else "*" if p < 0.05 else ""
        if mark:
            a.text(i, values[i], mark, ha="center", va="bottom")
    a.set_xticks(range(len(keys)), list(table.index), rotation=30, ha="right")
    a.set_ylabel(metric)
    a.set_title(f"vs {table.attrs['reference']}: * p<0.05, ** p<0.01 (DM)", fontsize=8)
    a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _show(fig, a, show, return_fig)


@_plain_text
def importance(data: AnnData | MuData, *, key: str = "forecast", mod: str | None = None,
               by: str = "modality", top: int = 15, ax: Any = None, show: bool | None = None,
               return_fig: bool = False) -> Any:
    """Plot what drove a forecast (see :func:`biocount.tl.importance`).

    ``by="modality"``: horizontal bars of each input modality's permutation importance with its range over
    shuffles; ``"feature"``: the ``top`` input features by share of |attribution|; ``"step"``: share of
    |attribution| per lookback step, one line per modality.

    Parameters
    ----------
    data, key, mod, by
        As for :func:`biocount.tl.importance`.
    top
        Features shown with ``by="feature"``.
    ax, show, return_fig
        As for :func:`forecast`.
    """
    import matplotlib.pyplot as plt

    from biocount.api.tl import importance as table_of

    table = table_of(data, key=key, mod=mod, by=by)  # a plot reads; it never writes into data
    if by == "modality":
        table = table[table["delta_mse"].notna()].iloc[::-1]
    elif by == "feature":
        table = table.head(top).iloc[::-1]
    if table.empty:
        what = "no input modality besides its target" if by == "modality" else "no attributions (no LSTM inputs)"
        raise BiocountInputError(f"the forecast under '{key}' has {what}: nothing to rank")
    if by == "step":
        fig, a = plt.subplots(figsize=(5.0, 3.0)) if ax is None else (ax.figure, ax)
        for k, column in enumerate(table.columns):
            a.plot(table.index, table[column], marker="o", color=OKABE_ITO[k % len(OKABE_ITO)], label=column)
        a.set_xlabel("lookback step (0 = the forecast origin)")
        a.set_ylabel("share of |attribution|")
        a.legend(frameon=False, fontsize=8)
    else:
        fig, a = (plt.subplots(figsize=(5.0, 0.6 + 0.3 * len(table))) if ax is None else (ax.figure, ax))
        if by == "modality":
            values = table["delta_mse"].to_numpy(dtype=float)
            err = np.stack([values - table["low"].to_numpy(dtype=float), table["high"].to_numpy(dtype=float) - values])
            a.barh(range(len(table)), values, xerr=err.clip(min=0), color=OKABE_ITO[0])
            a.set_yticks(range(len(table)), list(table.index))
            a.axvline(0, color="#555", lw=0.8)
            a.set_xlabel("rise in test MSE when shuffled between series")
        else:
            a.barh(range(len(table)), table["attribution"].to_numpy(dtype=float), color=OKABE_ITO[2])
            a.set_yticks(range(len(table)), [f"{m}:{f}" for m, f in table.index], fontsize=8)
            a.set_xlabel("share of |attribution| (integrated gradients)")
    a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _show(fig, a, show, return_fig)


def _scored(data: AnnData | MuData, key: str, mod: str | None) -> dict[str, Any]:
    from biocount.api.tl import _target

    entry = _target(data, key, mod).uns.get(key)
    if not isinstance(entry, dict) or "pit" not in entry:
        raise BiocountInputError(f"no scored biocount forecast under uns['{key}']; run bc.tl.forecast(..., "
                                 f"key_added='{key}') first")
    return entry


@_plain_text
def pit(data: AnnData | MuData, *, key: str = "forecast", mod: str | None = None, ax: Any = None,
        show: bool | None = None, return_fig: bool = False) -> Any:
    """PIT histogram of the stored forecast's test points (flat = calibrated, U = too narrow, hump = too wide).

    Parameters
    ----------
    data, key, mod
        As for :func:`forecast`.
    ax, show, return_fig
        As for :func:`forecast`.
    """
    import matplotlib.pyplot as plt

    counts = np.asarray(_scored(data, key, mod)["pit"], dtype=float)
    fig, a = plt.subplots(figsize=(4.0, 2.8)) if ax is None else (ax.figure, ax)
    density = counts / max(counts.sum(), 1.0) * counts.size
    a.bar((np.arange(counts.size) + 0.5) / counts.size, density, width=1 / counts.size, color=OKABE_ITO[0],
          edgecolor="white")
    a.axhline(1.0, color="#999", ls="--", lw=0.8)
    a.set_xlabel("PIT value")
    a.set_ylabel("density")
    a.set_title(f"{key}: PIT of {int(counts.sum())} test points", fontsize=9)
    a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _show(fig, a, show, return_fig)


@_plain_text
def coverage(data: AnnData | MuData, *, key: str = "forecast", mod: str | None = None, ax: Any = None,
             show: bool | None = None, return_fig: bool = False) -> Any:
    """Observed coverage of the 50/80/90/95 % central intervals by horizon, against the nominal levels.

    Parameters
    ----------
    data, key, mod, ax, show, return_fig
        As for :func:`pit`.
    """
    import matplotlib.pyplot as plt

    scores = _scored(data, key, mod)["scores"]
    fig, a = plt.subplots(figsize=(4.5, 3.0)) if ax is None else (ax.figure, ax)
    levels = sorted((k for k in scores if k.startswith("coverage_")), key=lambda k: float(k.split("_")[1]))
    for i, k in enumerate(levels):
        nominal = float(k.split("_")[1]) / 100
        a.plot(scores["horizon"], scores[k], marker="o", color=OKABE_ITO[i % len(OKABE_ITO)], label=f"{nominal:.0%}")
        a.axhline(nominal, color=OKABE_ITO[i % len(OKABE_ITO)], ls=":", lw=0.8)
    a.set_xlabel("horizon (steps ahead)")
    a.set_ylabel("share of test points covered")
    a.set_ylim(0, 1.02)
    a.xaxis.get_major_locator().set_params(integer=True)
    a.legend(frameon=False, fontsize=8, title="interval", title_fontsize=8)
    a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return _show(fig, a, show, return_fig)
