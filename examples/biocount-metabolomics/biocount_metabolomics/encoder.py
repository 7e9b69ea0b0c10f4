"""LC-MS metabolomics: intensities -> log2 -> QC drift correction -> batch median correction.

1. log2 of the intensities; zero or negative intensities are missing (NaN), never imputed.
2. Drift: within each batch, pooled QC injections should be identical; a linear trend of their log2
   intensity in injection order, per feature, is the instrument's drift. It is fitted on training QC
   injections only and subtracted from every injection of that batch.
3. Batch: each batch is centred on the median of its training study samples (per feature) and
   re-based on the overall training median; a batch with no training samples is left as it is.
QC injections are dropped from the output.
"""

from __future__ import annotations

import warnings

import numpy as np

from biocount import BiocountInputError, ModalityData
from biocount.contract import cube
from biocount.encoding import check_finite, matrix, train_mask

from .options import LcmsOptions


class LcmsEncoder:
    def __init__(self, options: LcmsOptions) -> None:
        self.options = options

    def _parts(self, adata):
        if "time" not in adata.obs:
            raise BiocountInputError("lcms: the modality has no time column")
        X = matrix(adata, None, "lcms")
        X = X.toarray() if hasattr(X, "toarray") else X
        check_finite(X, "lcms", adata.var_names)
        with np.errstate(divide="ignore", invalid="ignore"):
            logged = np.where(X > 0, np.log2(np.where(X > 0, X, 1.0)), np.nan)
        o, obs = self.options, adata.obs
        qc = (obs[o.sample_type_key].astype(str) == o.qc_label).to_numpy() if o.sample_type_key in obs else \
            np.zeros(adata.n_obs, dtype=bool)
        batch = obs[o.batch_key].astype(str).to_numpy() if o.batch_key in obs else np.full(adata.n_obs, "all")
        order = obs[o.order_key].to_numpy(dtype=float) if o.order_key in obs else None
        return logged, qc, batch, order

    def fit(self, adata, *, train=None) -> LcmsEncoder:
        logged, qc, batch, order = self._parts(adata)
        keep = train_mask(adata, train)
        self.drift_ = {}
        if self.options.drift and order is not None:
            for b in np.unique(batch):
                rows = qc & keep & (batch == b)
                if rows.sum() >= 3:
                    self.drift_[b] = np.array([_slope(order[rows], logged[rows, f]) for f in range(logged.shape[1])])
        corrected = self._undrift(logged, batch, order)
        study = ~qc & keep
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.overall_ = np.nanmedian(corrected[study], axis=0)
            self.batch_median_ = {b: np.nanmedian(corrected[study & (batch == b)], axis=0)
                                  for b in np.unique(batch) if (study & (batch == b)).any()}
        self.features_ = adata.var_names.to_numpy()
        return self

    def _undrift(self, logged, batch, order):
        out = logged.copy()
        for b, slope in getattr(self, "drift_", {}).items():
            rows = batch == b
            centre = np.median(order[rows])
            out[rows] -= (order[rows] - centre)[:, None] * slope[None, :]
        return out

    def transform(self, adata) -> ModalityData:
        if not hasattr(self, "features_"):
            raise BiocountInputError("lcms: transform() called before fit()")
        logged, qc, batch, order = self._parts(adata)
        values = self._undrift(logged, batch, order)
        if self.options.batch_correction:
            for b, median in self.batch_median_.items():
                rows = batch == b
                values[rows] = values[rows] - median + self.overall_
        study = ~qc
        series, grid, cv = cube(adata.obs["series"].to_numpy()[study], adata.obs["time"].to_numpy()[study],
                                values[study])
        return ModalityData(series=series, times=grid, features=self.features_, values=cv,
                            meta={"modality": "metabolite", "normalisation": "log2, QC drift, batch median",
                                  "drift_batches": sorted(self.drift_)})


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0:
        return 0.0
    return float(np.polyfit(x[ok], y[ok], 1)[0])
