"""Tools: forecast and compare inside scanpy workflows (``bc.tl``). One engine with the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from biocount import defaults
from biocount._deprecated import renamed
from biocount._logging import sync_verbosity
from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData

MARK = "biocount"  # uns[key]["params"]["biocount"] marks results this package wrote


def _is_ours(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("params"), dict) and MARK in entry["params"]


def _guard_key(adata: AnnData, key: str) -> None:
    if key in adata.uns and not _is_ours(adata.uns[key]):
        raise BiocountInputError(f"uns['{key}'] already holds a result of another kind (e.g. a scanpy tool's); "
                                 f"choose another key_added, e.g. key_added='{key}_biocount'")


def _modalities(data: AnnData | MuData, wanted: list[str] | None) -> tuple[dict[str, AnnData], list[str]]:
    import mudata as md

    from biocount.config import ModalityChoice

    if isinstance(data, md.MuData):
        names = list(wanted) if wanted is not None else list(data.mod)
        chosen = [ModalityChoice.parse(m).name for m in names]
        missing = [m for m in chosen if m not in data.mod]
        if missing:
            raise BiocountInputError(f"modality '{missing[0]}' is not in the MuData; available: {', '.join(data.mod)}")
        return {m: data.mod[m] for m in chosen}, names
    names = list(wanted) if wanted is not None else [defaults.ANNDATA_MODALITY]
    if len(names) != 1:
        raise BiocountInputError(f"an AnnData holds one modality; modalities={names} names {len(names)} "
                                 "(pass a MuData for several)")
    return {ModalityChoice.parse(names[0]).name: data}, names


@renamed(mods="modalities", sample_key="series_key")
def forecast(
    data: AnnData | MuData,
    *,
    method: str = defaults.METHOD,
    modalities: list[str] | None = None,
    target: str | None = None,
    horizon: int | None = None,
    lookback: int | None = None,
    key_added: str = "forecast",
    random_state: int = 0,
    copy: bool = False,
    time_key: str | None = None,
    series_key: str | None = None,
    split: str | None = None,
    test_size: int | None = None,
    val_size: int | None = None,
    levels: list[float] | None = None,
    members: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    n_jobs: int | None = None,
    link: dict[str, str] | None = None,
    period: float | None = None,
    time_scale: dict[str, float] | None = None,
) -> AnnData | MuData | None:
    """Backtest a forecaster and forecast beyond the data; results go into the object.

    Parameters
    ----------
    data
        One row per series x time for the target (e.g. from :func:`biocount.pp.timecourse`); a MuData may
        hold single-cell input modalities. Works in place unless ``copy=True``.
    method
        ``"lstm"``, ``"arima"``, ``"naive"``, any installed forecaster, or ``"ensemble:mean"``,
        ``"ensemble:inverse"``, ``"ensemble:stack"`` (of ``members``).
    modalities
        MuData: modalities to use (default: all). AnnData: the one modality it is (default ``["rna"]``).
        ``"name=encoder"`` picks the encoder, e.g. ``["counts=tabular"]``.
    target
        Modality to forecast, or ``"protein:P01,protein:P02"`` (default: protein if present, else the first).
    horizon, lookback
        Grid steps forecast, and of history the LSTM sees (default: as ``biocount run``; the lookback adapts
        to short series).
    key_added
        Results go to ``uns[key_added]``, ``var[f"{key_added}_mae"]`` (and ``_rmse``, ``_mse``),
        ``layers[f"{key_added}_fitted"]`` (one-step-ahead forecasts at validation and test points) and
        ``layers[f"{key_added}_observed"]`` (the target on the forecasts' scale). All in the data's units
        where the target's encoder declares them (tabular: as in the data; rna: counts per median training
        library; point forecasts are means, :mod:`biocount.evaluation.units`), else on the encoder's scale (e.g. the
        protein encoder's CLR); ``uns[key_added]["params"]["scale"]`` names which.
    random_state
        Seed: same seed, same data, same CPU -> same numbers.
    copy
        Return a modified copy instead of writing into ``data``.
    time_key, series_key
        ``obs`` columns for time and series (defaults: time/day/timepoint/hour, series_id/series/sample/donor/subject).
    split, test_size, val_size, levels, members, options, n_jobs
        As for ``biocount run`` (docs/cli.md), and ``None`` (the default) means its default: ``n_jobs`` as
        ``--jobs`` (all cores for per-series work); ``options`` per component, e.g. ``{"lstm": {"hidden": 64}}``.
    link, period, time_scale
        Study designs, as ``--link``, ``--period``, ``--time-scale`` (docs/cli.md, "Designs"): e.g.
        ``link={"mRNA": "all"}, period=24`` shares a pooled mRNA series with every protein replicate on the
        circadian clock. (Averaging replicates, ``--replicates mean``, would change the target's rows: do it
        before, or use ``bc.run``.)

    Returns
    -------
    None, or the modified copy when ``copy=True``. ``uns[key_added]`` holds ``params``, ``series``,
    ``features``, ``time`` (series x horizon), ``mean`` (series x horizon x features), ``lower``/``upper``
    (levels x series x horizon x features), ``metrics`` and per-origin ``losses`` used by :func:`compare`.
    """
    import mudata as md
    from anndata import AnnData

    from biocount.engine import run, validated

    if not isinstance(data, (AnnData, md.MuData)):
        raise BiocountInputError(f"bc.tl.forecast: data must be an AnnData or a MuData, not {type(data).__name__}; "
                                 "e.g. bc.pp.timecourse(...) makes one")
    log = sync_verbosity()
    md.set_options(pull_on_update=False)
    if copy:
        data = data.copy()
    study, names = _modalities(data, modalities)
    ensemble = method.split(":", 1)[1] if method.startswith("ensemble:") else None
    given = {  # None: as `biocount run` (RunConfig's default), so the two never drift apart
        "target": target, "horizon": horizon, "lookback": lookback, "split": split, "test_size": test_size,
        "val_size": val_size, "levels": levels, "seed": random_state, "jobs": n_jobs, "options": options,
        "time_key": time_key, "series_key": series_key, "link": link, "period": period, "time_scale": time_scale,
    }
    config = validated({k: v for k, v in given.items() if v is not None} | {
        "modalities": names, "models": list(members or defaults.MODELS) if ensemble else [method],
        "ensemble": [ensemble] if ensemble else [], "quiet": True,
    }, where="bc.tl.forecast")
    tname = config.target_choice.modality
    if tname not in study:
        raise BiocountInputError(f"target modality '{tname}' is not among modalities: {', '.join(study)}")
    tdata = study[tname]
    _guard_key(tdata, key_added)
    log.info(f"forecasting {tname} with {method}")
    result = run(config, data=study, log=log.debug)
    bt = result.backtest
    name = method if not ensemble else f"ensemble:{ensemble}"
    if name in bt.failed:
        raise BiocountInputError(bt.failed[name])
    _store(tdata, result, name, key_added, method)
    if isinstance(data, md.MuData):
        data.uns[key_added] = {"params": tdata.uns[key_added]["params"], "mod": tname}
    for note in result.info.get("notes", []):
        log.warning(note)
    return data if copy else None


def _rows(adata: AnnData, sample_col: str, time_col: str) -> pd.Series:
    keys = pd.MultiIndex.from_arrays([adata.obs[sample_col].astype(str).to_numpy(),
                                      pd.to_numeric(adata.obs[time_col]).to_numpy(dtype=float)])
    if keys.duplicated().any():
        raise BiocountInputError("the target modality has several rows per series and time; aggregate cells "
                                 "first with bc.pp.timecourse")
    return pd.Series(np.arange(adata.n_obs), index=keys)


def _store(adata: AnnData, result: Any, name: str, key: str, method: str) -> None:
    from biocount.io.readers import SERIES_KEYS, TIME_KEYS

    bt, cfg = result.backtest, result.config
    data = bt.data
    features = data.target_features.astype(str)
    future = bt.future()[name]
    levels = sorted(future["lower"])
    sample_col = cfg.series_key or next(k for k in SERIES_KEYS if k in adata.obs)
    time_col = cfg.time_key or next(k for k in TIME_KEYS if k in adata.obs)
    rows = _rows(adata, sample_col, time_col)
    overall = result.comparison.loc[name]
    per_feature = result.metrics[(result.metrics.forecaster == name) & (result.metrics.scope == "feature")]
    # sortable as text in time order within a series (the DM test's HAC lags assume that order)
    units = [f"{data.series[s]}|{t:09d}" for s, t in bt.test_origins]
    from biocount.evaluation.metrics import loss_by_unit

    losses = loss_by_unit(bt.y_test, bt.forecasts[name]["test"].mean, np.asarray(units))
    import hashlib

    scored = hashlib.sha256(np.asarray(units).astype(str).tobytes()).hexdigest()[:16]  # which origins were scored
    params = {
        MARK: result.info["biocount"], "method": method, "target": data.target, "horizon": int(cfg.horizon),
        "random_state": int(cfg.seed), "split": cfg.split,
        "levels": [float(x) for x in levels], "modalities": list(result.info["modalities"]),
        "time_key": time_col, "series_key": sample_col, "test_origins": scored,
        "scale": str(result.info["units"]["label"]),  # the data's units, or the encoder's scale without them
    }
    lookback = result.info["forecasters"].get(name, {}).get("lookback")
    if lookback is not None:
        params["lookback"] = int(lookback)
    entry = {
        "params": params,
        "series": data.series[future["origins"][:, 0]].astype(str),
        "features": features,
        "time": future["times"].astype(float),
        "mean": _units(bt, name, future["mean"]).astype(np.float32),
        "metrics": {k: float(v) for k, v in overall.items() if isinstance(v, (int, float, np.floating)) and np.isfinite(v)},
        "losses": {"units": np.asarray(losses.index, dtype=str), "loss": losses.to_numpy(dtype=float)},
    }
    imp = result.info.get("importance", {}).get(name)
    if imp:  # permutation importance of each input modality on the test origins (biocount.evaluation.importance)
        first = next(iter(imp.values()))  # repeats and origins scored (of how many) are the same for every modality
        entry["importance"] = {"modality": np.asarray(list(imp), dtype=str),
                               **{k: np.asarray([v[k] for v in imp.values()], dtype=float)
                                  for k in ("delta_mse", "low", "high")},
                               **{k: int(first[k]) for k in ("repeats", "origins", "of")}}
    ig = result.info.get("attributions", {}).get(name)
    if ig:  # integrated gradients per modality, lookback step and top feature (biocount.evaluation.importance)
        entry["attributions"] = _attribution_entry(ig)
    if result.scores is not None:
        entry |= _score_entry(result, name)
    if levels:
        entry["lower"] = np.stack([_units(bt, None, future["lower"][lv]) for lv in levels]).astype(np.float32)
        entry["upper"] = np.stack([_units(bt, None, future["upper"][lv]) for lv in levels]).astype(np.float32)
    adata.uns[key] = entry
    _store_var(adata, per_feature, key)
    _store_layers(adata, bt, name, key, rows, features)


def _store_var(adata: AnnData, per_feature: pd.DataFrame, key: str) -> None:
    """``var[key_mae]``, ``_rmse``, ``_mse`` per target feature: in the data's units where there are some (as
    forecasts.csv), else on the encoder's scale."""
    in_data = "data_rmse" in per_feature
    for metric in ("mae", "rmse", "mse"):
        if in_data:
            values = per_feature["data_rmse"] ** 2 if metric == "mse" else per_feature[f"data_{metric}"]
        else:
            values = per_feature[metric]
        col = pd.Series(np.nan, index=adata.var_names, dtype=float)
        col.loc[per_feature["feature"].to_numpy()] = values.to_numpy()
        adata.var[f"{key}_{metric}"] = col.to_numpy()


def _units(bt: Any, name: str | None, values: np.ndarray) -> np.ndarray:
    """Encoded forecasts in the data's units (:mod:`biocount.evaluation.units`): ``name``'s point forecasts as means, or
    (``name=None``) bounds; unchanged where the target's encoder declares no units."""
    from biocount.evaluation.units import to_data

    if bt.data.units is None:
        return values
    return bt.in_units(name, values) if name is not None else to_data(values, bt.data.units)


def _score_entry(result: Any, name: str) -> dict[str, Any]:
    """Hub-grade scores of the forecaster's conformal predictive distribution by horizon, and its PIT
    histogram (biocount.evaluation.scoring), as ``uns[key]["scores"]`` and ``uns[key]["pit"]``."""
    scores = result.scores
    mine = scores[(scores["forecaster"] == name) & (scores["distribution"] == "conformal")
                  & (scores["feature"] == "all") & (scores["horizon"].astype(str) != "all")]
    cols = ["crps", "wis", "dispersion", "overprediction", "underprediction",
            *[c for c in mine if c.startswith("coverage_")]]
    return {"scores": {"horizon": mine["horizon"].astype(int).to_numpy()} | {c: mine[c].to_numpy(float) for c in cols},
            "pit": np.asarray(result.info["scores"]["pit"][name], dtype=int)}


def _store_layers(adata: AnnData, bt: Any, name: str, key: str, rows: pd.Series, features: np.ndarray) -> None:
    """``layers[key_observed]``: the target on the forecasts' scale; ``layers[key_fitted]``: one-step-ahead
    forecasts at validation and test times."""
    data = bt.data
    fitted = np.full(adata.shape, np.nan, dtype=np.float32)
    observed = np.full(adata.shape, np.nan, dtype=np.float32)
    column = {f: i for i, f in enumerate(adata.var_names)}
    cols = np.array([column[f] for f in features])
    s_idx, t_idx = np.nonzero(data.present)
    where = rows.reindex(pd.MultiIndex.from_arrays([data.series[s_idx].astype(str), data.times[t_idx]])).to_numpy()
    have = ~np.isnan(where)
    from biocount.evaluation.backtest import grid_in_units

    y = data.y if data.units is None else grid_in_units(data)
    observed[np.ix_(where[have].astype(int), cols)] = y[s_idx[have], t_idx[have]]
    adata.layers[f"{key}_observed"] = observed  # the target on the forecasts' scale (the data's units if any)
    for part, orig in (("val", bt.val_origins), ("test", bt.test_origins)):
        nxt = orig[:, 1] + 1
        ok = nxt < data.times.size
        keys = pd.MultiIndex.from_arrays([data.series[orig[ok, 0]].astype(str), data.times[nxt[ok]]])
        where = rows.reindex(keys).to_numpy()
        have = ~np.isnan(where)
        values = _units(bt, name, bt.forecasts[name][part].mean[ok])[have, 0, :]
        fitted[np.ix_(where[have].astype(int), cols)] = values
    adata.layers[f"{key}_fitted"] = fitted


def _attribution_entry(ig: dict[str, Any]) -> dict[str, Any]:
    """run.json's attribution summary as arrays (h5ad-writable)."""
    return {
        "offsets": np.asarray(ig["offsets"], dtype=int),
        "shares": {"input": np.asarray(list(ig["shares"]), dtype=str),
                   "share": np.asarray(list(ig["shares"].values()), dtype=float)},
        "by_step": {m: np.asarray(v["by_step"], dtype=float) for m, v in ig["modalities"].items()},
        "by_feature": {m: {"feature": np.asarray(v["features"], dtype=str),
                           "share": np.asarray(v["by_feature"], dtype=float),
                           "matrix": np.asarray(v["matrix"], dtype=float).reshape(len(v["features"]), -1)}
                       for m, v in ig["modalities"].items()}}


def importance(data: AnnData | MuData, *, key: str = "forecast", mod: str | None = None,
               by: Literal["modality", "feature", "step"] = "modality", key_added: str | None = None) -> pd.DataFrame:
    """What drove a forecast stored by :func:`forecast`: per modality, per input feature or per lookback step.

    :func:`forecast` measures two things on the test origins (docs/report.md says what each can and cannot
    show): permutation importance (each modality's series shuffled between series, the rise in test MSE
    over 10 shuffles) and integrated-gradient attributions of the LSTM (how much each input value, at each
    lookback step, moved the forecast). This returns them as a table and with ``key_added`` also stores
    that table in ``uns[key_added]`` (of the target modality for a MuData).

    Parameters
    ----------
    data
        The object :func:`forecast` wrote into.
    key
        Its ``key_added``.
    mod
        MuData: the target modality (default: the one recorded under ``mdata.uns[key]``).
    by
        ``"modality"``: permutation importance (``delta_mse``, ``low``, ``high``, ``repeats``) and each
        modality's share of the summed |attribution| (``attribution``), most important first.
        ``"feature"``: the top input features of every modality by share of |attribution|, with the
        lookback step where each peaks (``peak_step``, 0 = the origin). ``"step"``: share of |attribution|
        per lookback step (rows) and modality (columns).
    key_added
        Where to store the table (default: nowhere).

    Returns
    -------
    DataFrame; empty when the forecast used no input besides the target (or, for ``feature`` and ``step``,
    when its forecaster cannot be differentiated).
    """
    adata = _target(data, key, mod)
    if key not in adata.uns or not _is_ours(adata.uns[key]):
        raise BiocountInputError(f"no biocount forecast under uns['{key}']; run bc.tl.forecast(..., key_added='{key}')")
    if by not in ("modality", "feature", "step"):
        raise BiocountInputError(f"by={by!r}: use 'modality', 'feature' or 'step'")
    entry = adata.uns[key]
    table = _importance_table(entry.get("importance"), entry.get("attributions"), by)
    if key_added is not None:
        adata.uns[key_added] = {"params": {MARK: entry["params"][MARK], "source": key, "by": by},
                                "table": table.reset_index().to_dict(orient="list")}
    return table


def _importance_table(imp: Any, ig: Any, by: str) -> pd.DataFrame:
    if by == "step":
        if not ig:
            return pd.DataFrame(index=pd.Index([], name="step"))
        return pd.DataFrame({m: np.asarray(v, dtype=float) for m, v in ig["by_step"].items()},
                            index=pd.Index(np.asarray(ig["offsets"], dtype=int), name="step"))
    if by == "feature":
        rows = [] if not ig else [
            (m, str(f), float(share), int(np.asarray(ig["offsets"])[int(np.argmax(row))]))
            for m, v in ig["by_feature"].items()
            for f, share, row in zip(v["feature"], v["share"], np.asarray(v["matrix"], dtype=float), strict=True)]
        table = pd.DataFrame(rows, columns=["modality", "feature", "attribution", "peak_step"])
        return table.sort_values("attribution", ascending=False).set_index(["modality", "feature"])
    columns = ["delta_mse", "low", "high", "repeats"]
    if imp is None:
        table = pd.DataFrame(columns=columns, index=pd.Index([], name="modality"))
    else:
        table = pd.DataFrame({k: np.asarray(imp[k], dtype=float) for k in columns[:3]},
                             index=pd.Index(np.asarray(imp["modality"]).astype(str), name="modality"))
        table["repeats"] = int(imp["repeats"])
    if ig:
        shares = pd.Series(np.asarray(ig["shares"]["share"], dtype=float),
                           index=np.asarray(ig["shares"]["input"]).astype(str))
        table = table.reindex(table.index.union(shares.index)).rename_axis("modality")
        table["attribution"] = shares.reindex(table.index).to_numpy()
    return table.sort_values("delta_mse", ascending=False)


def compare(data: AnnData | MuData, *, keys: list[str], mod: str | None = None, reference: str | None = None,
            key_added: str = "forecast_comparison") -> pd.DataFrame:
    """Compare forecasts stored by :func:`forecast` under ``keys`` (same target, horizon and split).

    Parameters
    ----------
    data
        The object the forecasts were stored in.
    keys
        ``key_added`` values of earlier :func:`forecast` calls.
    mod
        MuData: the target modality (default: the one the first key recorded).
    reference
        Key to test the others against with Diebold–Mariano (default: the first ARIMA key, else the first key).
    key_added
        The comparison is also stored in ``uns[key_added]``.

    Returns
    -------
    DataFrame indexed by key: the metrics, and ``dm_stat``/``dm_p`` against the reference.
    """
    table, adata = comparison_table(data, keys=keys, mod=mod, reference=reference)
    stored = table.reset_index()
    stored["reference"] = table.attrs["reference"]
    adata.uns[key_added] = stored
    return table


def comparison_table(data: AnnData | MuData, *, keys: list[str], mod: str | None = None,
                     reference: str | None = None) -> tuple[pd.DataFrame, AnnData]:
    """The comparison :func:`compare` stores, without storing it (for plots); also the target AnnData."""
    from biocount.evaluation.metrics import dm_test

    adata = _target(data, keys[0], mod)
    entries = {}
    for k in keys:
        if k not in adata.uns or not _is_ours(adata.uns[k]):
            found = [x for x in adata.uns if _is_ours(adata.uns[x])]
            raise BiocountInputError(f"no biocount forecast under uns['{k}']; available: {', '.join(found) or 'none'}")
        entries[k] = adata.uns[k]
    first = entries[keys[0]]["params"]
    for k, e in entries.items():
        p = e["params"]
        if (p["target"], int(p["horizon"]), p["split"], str(p["test_origins"])) != \
                (first["target"], int(first["horizon"]), first["split"], str(first["test_origins"])):
            raise BiocountInputError(f"'{k}' was not scored on the same origins as '{keys[0]}' (target, horizon or "
                                     "split differ); rerun bc.tl.forecast with the same settings")
    if reference is None:
        reference = next((k for k, e in entries.items() if e["params"]["method"] == defaults.REFERENCE), keys[0])
    ref = entries[reference]["losses"]
    ref_loss = pd.Series(np.asarray(ref["loss"], dtype=float), index=np.asarray(ref["units"]).astype(str))
    rows = []
    for k, e in entries.items():
        row = {"key": k, "method": e["params"]["method"], **{m: float(v) for m, v in dict(e["metrics"]).items()
                                                            if not m.startswith("dm_")}}
        if k != reference:
            mine = pd.Series(np.asarray(e["losses"]["loss"], dtype=float),
                             index=np.asarray(e["losses"]["units"]).astype(str))
            row["dm_stat"], row["dm_p"], _ = dm_test(mine, ref_loss, int(first["horizon"]))
        rows.append(row)
    table = pd.DataFrame(rows).set_index("key")
    table.attrs["reference"] = reference
    return table, adata


def _target(data: AnnData | MuData, key: str, mod: str | None) -> AnnData:
    import mudata as md

    if not isinstance(data, md.MuData):
        return data
    if mod is None:
        entry = data.uns.get(key)
        if isinstance(entry, dict) and "mod" in entry:
            mod = str(entry["mod"])
        else:
            raise BiocountInputError(f"no biocount forecast under mdata.uns['{key}']; pass mod= to name the modality")
    if mod not in data.mod:
        raise BiocountInputError(f"modality '{mod}' is not in the MuData; available: {', '.join(data.mod)}")
    return data.mod[mod]
