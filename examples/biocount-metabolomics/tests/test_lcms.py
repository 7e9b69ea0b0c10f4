"""The LC-MS encoder: biocount's contract tests, and drift and batch correction against the truth."""

from __future__ import annotations

from pathlib import Path

import biocount_metabolomics
import numpy as np
import pytest
from biocount_metabolomics.encoder import LcmsEncoder
from biocount_metabolomics.options import LcmsOptions

from biocount.readers import read
from biocount.testing import EncoderContract

EXAMPLE = Path(biocount_metabolomics.__file__).parent / "data" / "metabolite.h5ad"


class TestLcmsContract(EncoderContract):
    modality = "metabolite"

    @pytest.fixture
    def host(self, biocount_host):
        biocount_host.add_plugin(biocount_metabolomics, name="metabolomics", dist="biocount-metabolomics")
        return biocount_host


@pytest.fixture
def example():
    (adata,) = read(EXAMPLE, series_key="series_id", time_key="day").values()
    return adata


def qc_spread(encoder, adata):
    logged, qc, batch, order = encoder._parts(adata)
    values = encoder._undrift(logged, batch, order)
    return np.nanmean([np.nanstd(values[qc & (batch == b)], axis=0).mean() for b in np.unique(batch)])


def test_drift_correction_tightens_qc_injections(example):
    raw = LcmsEncoder(LcmsOptions(drift=False)).fit(example)
    fixed = LcmsEncoder(LcmsOptions()).fit(example)
    assert qc_spread(fixed, example) < 0.5 * qc_spread(raw, example)
    assert sorted(fixed.drift_) == ["B1", "B2", "B3"]


def test_batch_medians_are_aligned_and_qc_dropped(example):
    enc = LcmsEncoder(LcmsOptions()).fit(example)
    out = enc.transform(example)
    assert not any(s.startswith("QC") for s in out.series) and out.shape == (12, 30, 8)
    logged, qc, batch, order = enc._parts(example)
    values = enc._undrift(logged, batch, order)
    for b, median in enc.batch_median_.items():
        rows = (batch == b) & ~qc
        np.testing.assert_allclose(np.nanmedian(values[rows] - median + enc.overall_, axis=0), enc.overall_, atol=1e-9)


def test_only_training_qc_injections_fit_the_drift(example):
    late = example.obs["time"].to_numpy() > 30
    changed = example.copy()
    changed.X[late] = changed.X[late] * 5
    a = LcmsEncoder(LcmsOptions()).fit(example, train=~late)
    b = LcmsEncoder(LcmsOptions()).fit(changed, train=~late)
    for key in a.drift_:
        np.testing.assert_array_equal(a.drift_[key], b.drift_[key])
