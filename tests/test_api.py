"""The Python API inside a real scanpy workflow: bc.pp / tl / get / pl, and h5mu/h5ad round trips."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

import biocount as bc
from biocount import BiocountInputError

matplotlib.use("Agg")
FAST = {"lstm": {"epochs": 25, "patience": 8, "quiet": True, "members": 1}, "arima": {"reselect_growth": None}}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """sc.pp.normalize_total -> log1p -> highly_variable_genes -> bc.pp.timecourse -> bc.tl.forecast x2."""
    mdata = bc.datasets.demo(seed=0)
    rna = mdata["rna"]
    rna.layers["counts"] = rna.X.copy()
    sc.pp.normalize_total(rna)
    sc.pp.log1p(rna)
    sc.pp.highly_variable_genes(rna, n_top_genes=20)
    tc = bc.pp.timecourse(mdata, time_key="day", series_key="donor", groupby="cell_type", layer="counts")
    bc.tl.forecast(tc, method="lstm", modalities=["rna", "protein", "genomic"], target="protein", key_added="fc_lstm",
                   options=FAST, lookback=4)
    bc.tl.forecast(tc, method="arima", modalities=["rna", "protein"], target="protein", key_added="fc_arima", n_jobs=2)
    return tc, tmp_path_factory.mktemp("api")


def test_timecourse_matches_the_cells(pipeline):
    tc, _ = pipeline
    demo = bc.datasets.demo(seed=0)
    cells = demo["rna"]
    first = cells[(cells.obs["donor"] == "D01").to_numpy() & (cells.obs["day"] == 0).to_numpy()]
    row = np.flatnonzero((tc["rna"].obs["donor"] == "D01").to_numpy() & (tc["rna"].obs["day"] == 0).to_numpy())[0]
    np.testing.assert_allclose(tc["rna"].layers["counts"][row], np.asarray(first.X.sum(axis=0)).ravel())
    assert tc["rna"].obs["n_cells"].iloc[row] == first.n_obs
    assert tc["celltypes"].X[row].sum() == first.n_obs and list(tc["celltypes"].var_names)[0] == "stem"
    assert tc["protein"].shape == (360, 10) and "genomic" in tc.mod


def test_results_are_stored_where_scverse_users_look(pipeline):
    tc, _ = pipeline
    prot = tc["protein"]
    entry = prot.uns["fc_lstm"]
    assert entry["mean"].shape == (12, 3, 10) and entry["lower"].shape == (2, 12, 3, 10)
    assert (entry["lower"] <= entry["mean"]).all() and (entry["mean"] <= entry["upper"]).all()
    assert entry["params"]["method"] == "lstm" and entry["params"]["random_state"] == 0
    assert all(not isinstance(v, tuple) for v in entry["params"].values())
    assert np.isfinite(prot.var["fc_lstm_mae"]).all() and "fc_arima_rmse" in prot.var
    fitted = prot.layers["fc_lstm_fitted"]
    assert fitted.shape == prot.shape and np.isfinite(fitted).any() and np.isnan(fitted[:5]).all()
    assert tc.uns["fc_lstm"]["mod"] == "protein"


def test_compare_get_and_plots(pipeline):
    tc, tmp = pipeline
    table = bc.tl.compare(tc, keys=["fc_lstm", "fc_arima"])
    assert table.attrs["reference"] == "fc_arima" and np.isfinite(table.loc["fc_lstm", "dm_p"])
    assert table.loc["fc_lstm", "mse"] == pytest.approx(tc["protein"].uns["fc_lstm"]["metrics"]["mse"])
    assert "forecast_comparison" in tc["protein"].uns
    df = bc.get.forecast_df(tc, key="fc_lstm", features=["P01"])
    assert list(df.columns) == ["series", "time", "feature", "mean", "lower", "upper", "observed", "kind"]
    future = df[df.kind == "forecast"]
    assert len(future) == 12 * 3 and future["observed"].isna().all() and (future["lower"] < future["upper"]).all()
    axes = bc.pl.forecast(tc, features=["P01", "P02"], key="fc_lstm", show=False)
    axes[0].figure.savefig(tmp / "forecast.png")
    fig = bc.pl.compare(tc, keys=["fc_lstm", "fc_arima"], metric="mse", return_fig=True)
    fig.savefig(tmp / "compare.png")
    for name in ("forecast.png", "compare.png"):
        assert (tmp / name).stat().st_size > 5000
    # hub-grade scores stored with the forecast, and their plots
    entry = tc["protein"].uns["fc_lstm"]
    assert entry["scores"]["horizon"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(entry["scores"]["wis"], entry["scores"]["dispersion"] + entry["scores"]["overprediction"]
                               + entry["scores"]["underprediction"])
    assert int(entry["pit"].sum()) == int(entry["metrics"]["n"])  # every scored test point has a PIT value
    fig = bc.pl.pit(tc, key="fc_lstm", return_fig=True)
    assert len(fig.axes[0].patches) == 10
    fig = bc.pl.coverage(tc, key="fc_lstm", return_fig=True)
    assert len(fig.axes[0].lines) == 8  # 4 levels, observed and nominal
    with pytest.raises(BiocountInputError, match="no scored biocount forecast"):
        bc.pl.pit(tc["protein"], key="nothing")


def test_h5mu_round_trip_keeps_every_result(pipeline):
    tc, tmp = pipeline
    path = tmp / "tc.h5mu"
    tc.write(path)
    back = md.read_h5mu(path)
    for key in ("fc_lstm", "fc_arima"):
        a, b = tc["protein"].uns[key], back["protein"].uns[key]
        for field in ("mean", "lower", "upper", "time"):
            np.testing.assert_array_equal(a[field], b[field])
        assert list(a["series"]) == list(b["series"]) and b["params"]["method"] == a["params"]["method"]
        np.testing.assert_array_equal(tc["protein"].layers[f"{key}_fitted"], back["protein"].layers[f"{key}_fitted"])
        np.testing.assert_array_equal(tc["protein"].var[f"{key}_mae"], back["protein"].var[f"{key}_mae"])
    pd.testing.assert_frame_equal(bc.get.forecast_df(tc, key="fc_lstm"), bc.get.forecast_df(back, key="fc_lstm"))
    table = bc.tl.compare(back, keys=["fc_lstm", "fc_arima"])  # works on what was read back
    assert np.isfinite(table.loc["fc_lstm", "dm_stat"])


def test_anndata_in_place_copy_and_h5ad_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    S, T = 6, 24
    t = np.arange(T, dtype=float)
    X = 20 + 5 * np.sin(t[None, :, None] / 3 + rng.uniform(0, 6, (S, 1, 1))) + rng.normal(0, 1, (S, T, 2))
    obs = pd.DataFrame({"mouse": np.repeat([f"m{i}" for i in range(S)], T), "hour": np.tile(t, S)})
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(X=X.reshape(-1, 2).astype(np.float32), obs=obs, var=pd.DataFrame(index=["a", "b"]))
    keys = {"time_key": "hour", "series_key": "mouse"}
    out = bc.tl.forecast(adata, method="naive", modalities=["weights=tabular"], horizon=2, copy=True, **keys)
    assert "forecast" in out.uns and "forecast" not in adata.uns  # copy leaves the input alone
    assert bc.tl.forecast(adata, method="arima", modalities=["weights=tabular"], horizon=2, **keys) is None
    assert adata.uns["forecast"]["mean"].shape == (6, 2, 2)
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = ad.read_h5ad(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(back.uns["forecast"]["mean"], adata.uns["forecast"]["mean"])
    pd.testing.assert_frame_equal(bc.get.forecast_df(back), bc.get.forecast_df(adata))


def test_bad_keys_name_the_key_and_list_the_options(pipeline):
    tc, _ = pipeline
    prot = tc["protein"].copy()
    with pytest.raises(BiocountInputError, match="time_key 'age' is not an obs column of adata; available: donor, day"):
        bc.pp.timecourse(prot, time_key="age", series_key="donor")
    with pytest.raises(BiocountInputError, match="modality 'atac' is not in the MuData; available: rna, celltypes"):
        bc.tl.forecast(tc, method="naive", modalities=["rna", "atac"])
    scanpy_like = prot.copy()
    scanpy_like.uns["pca"] = {"variance": np.ones(3)}
    with pytest.raises(BiocountInputError, match=r"uns\['pca'\] already holds a result of another kind"):
        bc.tl.forecast(scanpy_like, method="naive", modalities=["protein"], key_added="pca")
    with pytest.raises(BiocountInputError, match=r"no biocount forecast under uns\['nope'\]; available: fc_lstm"):
        bc.get.forecast_df(tc["protein"], key="nope")
    no_time = prot.copy()
    no_time.obs = no_time.obs[["donor"]]
    with pytest.raises(BiocountInputError, match="no time column"):
        bc.tl.forecast(no_time, method="naive", modalities=["protein"])


def test_import_biocount_and_arima_forecasts_never_import_torch():
    code = (
        "import sys, numpy as np, pandas as pd, anndata as ad, biocount as bc\n"
        "assert 'torch' not in sys.modules\n"
        "rng = np.random.default_rng(0)\n"
        "obs = pd.DataFrame({'series': np.repeat(['a', 'b'], 30), 'time': np.tile(np.arange(30.), 2)})\n"
        "obs.index = obs.index.astype(str)\n"
        "x = ad.AnnData(X=rng.normal(size=(60, 2)).cumsum(0).astype('float32'), obs=obs)\n"
        "bc.tl.forecast(x, method='arima', modalities=['x=tabular'], horizon=2)\n"
        "assert 'forecast' in x.uns\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_old_keyword_names_still_work_with_a_warning():
    """mods / sample_key are the old names of modalities / series_key (one release of grace)."""
    mdata = bc.datasets.demo(seed=0)
    with pytest.warns(FutureWarning) as record:
        old = bc.pp.timecourse(mdata, time_key="day", sample_key="donor", mods=["protein"])
    assert sorted(str(w.message).split(" is ")[0] for w in record) == ["timecourse(mods=...)",
                                                                       "timecourse(sample_key=...)"]
    new = bc.pp.timecourse(mdata, time_key="day", series_key="donor", modalities=["protein"])
    np.testing.assert_array_equal(old["protein"].X, new["protein"].X)
    with pytest.raises(TypeError, match="both mods= and modalities="):
        bc.tl.forecast(new, mods=["protein"], modalities=["protein"])


def test_importance_is_stored_returned_and_plotted(pipeline):
    tc, _ = pipeline
    table = bc.tl.importance(tc, key="fc_lstm", key_added="fc_lstm_importance")
    assert list(table.columns) == ["delta_mse", "low", "high", "repeats", "attribution"]
    shuffled = table[table["delta_mse"].notna()]  # the target's own history is attributed, never shuffled
    assert {"rna", "genomic"} <= set(shuffled.index) and set(table.index) - set(shuffled.index) == {"protein"}
    assert (shuffled["low"] <= shuffled["delta_mse"]).all() and (shuffled["delta_mse"] <= shuffled["high"]).all()
    assert shuffled["delta_mse"].is_monotonic_decreasing and (shuffled["repeats"] == 10).all()
    assert table["attribution"].sum() == pytest.approx(1.0) and (table["attribution"] > 0).all()
    assert tc["protein"].uns["fc_lstm_importance"]["table"]["modality"] == list(table.index)
    assert bc.tl.importance(tc, key="fc_arima").empty  # ARIMA uses no input modality
    fig = bc.pl.importance(tc, key="fc_lstm", return_fig=True)
    assert len(fig.axes[0].patches) == len(shuffled)
    with pytest.raises(BiocountInputError, match="nothing to rank"):
        bc.pl.importance(tc, key="fc_arima")
    steps = bc.tl.importance(tc, key="fc_lstm", by="step")
    assert list(steps.index) == list(range(-steps.shape[0] + 1, 1)) and {"rna", "protein"} <= set(steps.columns)
    rna = table.loc["rna", "attribution"]  # per step, per feature and per modality: one whole, cut three ways
    assert steps["rna"].sum() == pytest.approx(rna, rel=1e-6)
    features = bc.tl.importance(tc, key="fc_lstm", by="feature")
    assert features["attribution"].is_monotonic_decreasing and features.loc["rna", "attribution"].sum() <= rna + 1e-9
    assert len(bc.pl.importance(tc, key="fc_lstm", by="step", return_fig=True).axes[0].lines) == steps.shape[1]
    assert len(bc.pl.importance(tc, key="fc_lstm", by="feature", top=5, return_fig=True).axes[0].patches) == 5
