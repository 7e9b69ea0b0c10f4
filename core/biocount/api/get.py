"""Extract tidy tables from results stored by ``bc.tl`` (``bc.get``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from biocount.api.tl import _is_ours, _target
from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData


def forecast_df(data: AnnData | MuData, *, key: str = "forecast", mod: str | None = None,
                features: list[str] | None = None) -> pd.DataFrame:
    """A tidy table of a stored forecast: history with one-step-ahead fitted values, then the forecast.

    Parameters
    ----------
    data
        The object :func:`biocount.tl.forecast` wrote into.
    key
        Its ``key_added``.
    mod
        MuData: the target modality (default: the one recorded under ``mdata.uns[key]``).
    features
        Restrict to these target features.

    Returns
    -------
    DataFrame with columns ``series, time, feature, mean, lower, upper, observed, kind`` where ``kind`` is
    ``"fitted"`` (one-step-ahead forecasts inside the data, observed known) or ``"forecast"`` (beyond the
    data); ``lower``/``upper`` are the widest stored interval (NaN for fitted rows).
    """
    adata = _target(data, key, mod)
    if key not in adata.uns or not _is_ours(adata.uns[key]):
        found = [k for k in adata.uns if _is_ours(adata.uns[k])]
        raise BiocountInputError(f"no biocount forecast under uns['{key}']; available: {', '.join(found) or 'none'} "
                                 f"(bc.tl.forecast(..., key_added='{key}') makes one)")
    entry = adata.uns[key]
    all_features = np.asarray(entry["features"]).astype(str)
    chosen = all_features if features is None else np.asarray(features, dtype=str)
    unknown = sorted(set(chosen) - set(all_features))
    if unknown:
        raise BiocountInputError(f"feature(s) {', '.join(unknown)} were not forecast under '{key}'; "
                                 f"forecast features: {', '.join(all_features[:10])}")
    fi = [int(np.flatnonzero(all_features == f)[0]) for f in chosen]
    series = np.asarray(entry["series"]).astype(str)
    times = np.asarray(entry["time"], dtype=float)  # (S, H)
    mean = np.asarray(entry["mean"])[..., fi]
    S, H, F = mean.shape
    lower = np.asarray(entry["lower"])[-1][..., fi] if "lower" in entry else np.full(mean.shape, np.nan)
    upper = np.asarray(entry["upper"])[-1][..., fi] if "upper" in entry else np.full(mean.shape, np.nan)
    future = pd.DataFrame({
        "series": np.repeat(series, H * F), "time": np.repeat(times.reshape(-1), F),
        "feature": np.tile(chosen, S * H), "mean": mean.reshape(-1), "lower": lower.reshape(-1),
        "upper": upper.reshape(-1), "observed": np.nan, "kind": "forecast",
    })
    params = entry["params"]
    obs = adata.obs
    cols = [int(np.flatnonzero(adata.var_names == f)[0]) for f in chosen]
    fitted = np.asarray(adata.layers[f"{key}_fitted"])[:, cols]
    X = np.asarray(adata.layers[f"{key}_observed"])  # on the forecasts' scale, not raw X
    history = pd.DataFrame({
        "series": np.repeat(obs[str(params.get("series_key", params.get("sample_key")))].astype(str).to_numpy(), F),
        "time": np.repeat(pd.to_numeric(obs[str(params["time_key"])]).to_numpy(dtype=float), F),
        "feature": np.tile(chosen, adata.n_obs), "mean": fitted.reshape(-1), "lower": np.nan, "upper": np.nan,
        "observed": X[:, cols].reshape(-1), "kind": "fitted",
    })
    out = pd.DataFrame({c: np.concatenate([history[c].to_numpy(), future[c].to_numpy()]) for c in history.columns})
    return out.sort_values(["series", "feature", "time"], kind="stable").reset_index(drop=True)
