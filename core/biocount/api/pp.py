"""Preprocessing: turn single cells into time courses (``bc.pp``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from biocount import defaults
from biocount._deprecated import renamed
from biocount.errors import BiocountInputError

if TYPE_CHECKING:
    from anndata import AnnData
    from mudata import MuData


def _check_key(adata: AnnData, key: str, what: str, where: str) -> None:
    if key not in adata.obs:
        raise BiocountInputError(f"{what} '{key}' is not an obs column of {where}; available: "
                                 f"{', '.join(map(str, adata.obs.columns)) or 'none'}")


def _one(adata: AnnData, *, time_key: str, series_key: str, groupby: str | None, layer: str | None,
         min_cells: int, where: str) -> tuple[AnnData, AnnData | None]:
    import anndata as ad

    from biocount.io.readers import numeric_time
    from biocount.study.pseudobulk import aggregate

    _check_key(adata, time_key, "time_key", where)
    _check_key(adata, series_key, "series_key", where)
    if groupby is not None:
        _check_key(adata, groupby, "groupby", where)
    if layer is not None and layer not in adata.layers:
        raise BiocountInputError(f"layer '{layer}' is not in {where}; available: {', '.join(adata.layers) or 'none'}")
    obs = pd.DataFrame({"series": adata.obs[series_key].astype(str).to_numpy(),
                        "time": numeric_time(adata.obs[time_key], time_key, where)}, index=adata.obs_names)
    if not obs.duplicated().any():  # already one row per series and time (bulk): pass it through
        out = adata.copy()
        out.obs[time_key] = obs["time"].to_numpy()
        out.obs[series_key] = pd.Categorical(obs["series"])
        out.obs["n_cells"] = 1
        return out, None
    view = ad.AnnData(X=adata.layers[layer] if layer is not None else adata.X, obs=obs, var=adata.var[[]])
    if groupby is not None:
        view.obs[groupby] = adata.obs[groupby].values  # keeps a categorical's own order
    bulk = aggregate(view, groupby=groupby)
    keep = bulk.obs["n_cells"].to_numpy() >= min_cells
    bulk = bulk[keep].copy()
    out = ad.AnnData(X=bulk.X.copy(), var=adata.var.copy(),
                     obs=pd.DataFrame({series_key: pd.Categorical(bulk.obs["series"]),
                                       time_key: bulk.obs["time"].to_numpy(dtype=float),
                                       "n_cells": bulk.obs["n_cells"].to_numpy()}, index=bulk.obs_names))
    out.layers["counts"] = bulk.X.copy()
    out.uns["timecourse"] = {"params": {"time_key": time_key, "series_key": series_key, "layer": layer or "X",
                                        "min_cells": int(min_cells), "groupby": groupby or ""}}
    cells = None
    if groupby is not None:
        tally = bulk.obsm[f"n_cells_by_{groupby}"]
        cells = ad.AnnData(X=tally.to_numpy(dtype=np.float32), obs=out.obs.copy(),
                           var=pd.DataFrame(index=[str(c) for c in tally.columns]))
        cells.layers["counts"] = cells.X.copy()
    return out, cells


@renamed(mods="modalities", sample_key="series_key")
def timecourse(data: AnnData | MuData, *, time_key: str, series_key: str, groupby: str | None = None,
               modalities: list[str] | None = None, layer: str | None = None, min_cells: int = 1) -> AnnData | MuData:
    """Pseudobulk: one row per series x time, like ``sc.get.aggregate`` with cell counts.

    Parameters
    ----------
    data
        Single cells (AnnData), or a MuData whose modalities share ``obs`` columns.
    time_key
        Numeric ``obs`` column with the time (e.g. ``"day"``).
    series_key
        ``obs`` column with the series id (donor, culture, mouse).
    groupby
        Optional ``obs`` column (e.g. ``"cell_type"``): cells per group become a count modality
        ``"celltypes"``, and an AnnData input returns a MuData.
    modalities
        MuData only: modalities to aggregate (default: those with ``time_key`` and ``series_key``).
    layer
        Layer holding raw counts (default ``X``); in a MuData, used by the modalities that have it.
        Modalities already holding one row per series and time (bulk) pass through unchanged.
    min_cells
        Drop series x time pairs with fewer cells.

    Returns
    -------
    A new AnnData (or MuData) with ``obs[series_key]``, ``obs[time_key]``, ``obs["n_cells"]``, summed
    counts in ``X`` and ``layers["counts"]``, and ``uns["timecourse"]["params"]``.

    Examples
    --------
    >>> tc = bc.pp.timecourse(adata, time_key="day", series_key="donor", groupby="cell_type")
    """
    import mudata as md

    md.set_options(pull_on_update=False)
    if min_cells < 1:
        raise BiocountInputError(f"min_cells must be at least 1, got {min_cells}")
    if isinstance(data, md.MuData):
        names = modalities if modalities is not None else [m for m, a in data.mod.items()
                                               if time_key in a.obs and series_key in a.obs]
        missing = [m for m in names if m not in data.mod]
        if missing:
            raise BiocountInputError(f"modality '{missing[0]}' is not in the MuData; available: {', '.join(data.mod)}")
        if not names:
            raise BiocountInputError(f"no modality has obs columns '{time_key}' and '{series_key}'")
        out = {}
        for m in names:
            bulk, cells = _one(data.mod[m], time_key=time_key, series_key=series_key,
                               groupby=groupby if groupby in data.mod[m].obs else None,
                               layer=layer if layer in data.mod[m].layers else None,  # counts where a modality has them
                               min_cells=min_cells, where=f"modality '{m}'")
            out[m] = bulk
            if cells is not None:
                out["celltypes"] = cells
        for m, a in data.mod.items():  # static modalities (e.g. genomic, one row per series) come along
            if m not in out and series_key in a.obs and time_key not in a.obs:
                out[m] = a.copy()
        return md.MuData(out)
    bulk, cells = _one(data, time_key=time_key, series_key=series_key, groupby=groupby, layer=layer,
                       min_cells=min_cells, where="adata")
    return bulk if cells is None else md.MuData({defaults.ANNDATA_MODALITY: bulk, "celltypes": cells})
