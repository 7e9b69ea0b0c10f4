"""The embedded demo study: shape, determinism, and the biology it promises."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from click.testing import CliRunner

from biocount.cli import cli
from biocount.io.datasets import demo
from biocount.io.readers import as_modalities
from biocount.study.pseudobulk import aggregate


def test_layout(demo_study):
    m = demo_study
    assert set(m.mod) == {"genomic", "rna", "protein"}
    times = np.asarray(m.uns["demo"]["times"])
    assert times.size == 30 and len(set(np.diff(times))) > 1  # not all equally spaced
    rna = m["rna"]
    assert sp.issparse(rna.X) and np.all(rna.X.data == np.round(rna.X.data)) and rna.X.data.min() >= 0
    assert {"donor", "day", "cell_type"} <= set(rna.obs)
    assert m["protein"].shape == (12 * 30, 10)
    assert set(np.unique(m["genomic"][:, m["genomic"].var["kind"] == "genotype_dosage"].X)) <= {0, 1, 2}


def test_same_seed_same_study_other_seed_other_study(demo_study):
    again = demo(seed=0)
    assert (again["rna"].X != demo_study["rna"].X).nnz == 0
    np.testing.assert_array_equal(again["protein"].X, demo_study["protein"].X)
    other = demo(seed=1)
    assert other["rna"].shape != demo_study["rna"].shape or (other["rna"].X != demo_study["rna"].X).nnz


def test_cell_type_composition_changes_over_time(demo_study):
    obs = demo_study["rna"].obs
    early = obs[obs["day"] <= 5]["cell_type"].value_counts(normalize=True)
    late = obs[obs["day"] >= 40]["cell_type"].value_counts(normalize=True)
    assert late["effector"] > early["effector"] + 0.1 and late["stem"] < early["stem"] - 0.1


def test_protein_missing_not_at_random(demo_study):
    prot = demo_study["protein"].X
    assert 0.03 < np.isnan(prot).mean() < 0.3
    # a protein's missing values sit at its low end: its observed neighbours are low too
    j = int(np.argmax(np.isnan(prot).sum(axis=0)))
    assert np.nanmean(prot[:, j]) < np.nanmean(prot)


def test_mrna_leads_protein(demo_study):
    """Cross-correlation of each protein with its source gene peaks at a positive lag (days)."""
    rna = as_modalities(demo_study, where="demo")["rna"]
    bulk = aggregate(rna)
    expr = np.log1p(bulk.X / bulk.X.sum(axis=1, keepdims=True) * 1e4)
    prot, times = demo_study["protein"], np.asarray(demo_study.uns["demo"]["times"])
    days = np.arange(0, times[-1] + 1)
    genes = list(rna.var_names)
    peaks = []
    for j, gene in enumerate(demo_study.uns["demo"]["protein_gene"]):
        cc = np.zeros(9)
        for donor in np.unique(bulk.obs["series"]):
            r = expr[bulk.obs["series"].to_numpy() == donor, genes.index(gene)]
            p = prot.X[prot.obs["donor"].to_numpy() == donor, j]
            seen = ~np.isnan(p)
            ri, pi = np.interp(days, times, r), np.interp(days, times[seen], p[seen])
            ri, pi = (ri - ri.mean()) / ri.std(), (pi - pi.mean()) / pi.std()
            cc += [np.mean(ri[: days.size - lag] * pi[lag:]) for lag in range(9)]
        peaks.append(int(np.argmax(cc)))
    assert min(peaks) >= 1, peaks  # mRNA leads protein for every protein


def test_cli_writes_the_demo(tmp_path):
    out = tmp_path / "study.h5mu"
    runner = CliRunner()
    assert runner.invoke(cli, ["datasets", "make", "demo", "--out", str(out)]).exit_code == 0
    import mudata

    assert set(mudata.read_h5mu(out).mod) == {"genomic", "rna", "protein"}
    again = runner.invoke(cli, ["datasets", "make", "demo", "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert list(tmp_path.iterdir()) == [out]  # nothing half-written left behind
