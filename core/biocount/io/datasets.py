"""Example studies: the embedded demo and two simulators (:func:`chemostat`, :func:`gut`).

The demo is a small mechanistic simulation of the central dogma.

``demo(seed=0)`` returns a MuData with three modalities over 12 donors and 30 unevenly spaced
time points: ``genomic`` (static copy numbers and eQTL dosages per donor), ``rna`` (single cells
with raw UMI counts and a cell type) and ``protein`` (bulk mass-spectrometry-like log2
intensities with values missing below a detection limit). The equations and parameters are in
docs/datasets.md; the constants below are the ones it quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from biocount.io.simulators import chemostat, gut

__all__ = ["demo", "chemostat", "gut"]

if TYPE_CHECKING:
    from mudata import MuData

N_SERIES = 12
N_GENES = 40
N_DRIVERS = 3
N_PROTEINS = 10
CELL_TYPES = ("stem", "progenitor", "effector", "memory")
DT = 0.1  # integration step of the ODEs, in days
BURN_IN = 10.0  # days simulated before the first sample so the system starts near its steady state
MRNA_DECAY = 0.35  # per day
PROTEIN_DECAY = (0.8, 1.5)  # range of per-protein degradation rates, per day
PROTEIN_DELAY = (3.0, 6.0)  # range of translation delays, in days (mRNA leads protein)
NB_DISPERSION = 8.0  # theta of the negative binomial UMI noise (variance = mu + mu^2 / theta)
DETECTION_LIMIT_QUANTILE = 0.12  # intensities below this quantile are mostly missing (MNAR)


def sample_times(rng: np.random.Generator, n: int = 30) -> np.ndarray:
    """Uneven sampling: daily, with some 2- and 3-day gaps (weekends, missed visits)."""
    steps = rng.choice([1.0, 1.0, 1.0, 2.0, 3.0], size=n - 1)
    return np.concatenate([[0.0], np.cumsum(steps)])


def _drivers(rng: np.random.Generator, grid: np.ndarray) -> np.ndarray:
    """Latent regulatory programmes z_k(t) per series: slow oscillations plus a smooth random walk."""
    period = rng.uniform(8.0, 16.0, size=(N_SERIES, N_DRIVERS, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(N_SERIES, N_DRIVERS, 1))
    wave = np.sin(2 * np.pi * grid / period + phase)
    noise = rng.normal(0.0, np.sqrt(DT) * 0.35, size=(N_SERIES, N_DRIVERS, grid.size))
    walk = np.zeros_like(noise)
    for i in range(1, grid.size):  # Ornstein-Uhlenbeck, mean-reverting at rate 0.2 per day
        walk[..., i] = walk[..., i - 1] * (1 - 0.2 * DT) + noise[..., i]
    return 1.0 * wave + walk  # (S, K, grid)


def demo(seed: int = 0) -> MuData:
    """Simulate the demo study.

    Parameters
    ----------
    seed
        Seed of the random generator: the same seed gives the same study, bit for bit.

    Returns
    -------
    MuData with modalities ``genomic`` (12 donors x 14 static features), ``rna`` (about 25,000
    cells x 40 genes, raw integer counts in sparse ``X``, ``obs`` columns ``donor``, ``day``,
    ``cell_type``) and ``protein`` (donor x day samples x 10 proteins, log2 intensities with NaN
    where undetected). ``uns["demo"]`` records the ground truth: which gene each protein is
    translated from, the delays and decay rates.
    """
    import anndata as ad
    import mudata as md
    import pandas as pd

    md.set_options(pull_on_update=False)
    rng = np.random.default_rng(seed)
    donors = np.array([f"D{i + 1:02d}" for i in range(N_SERIES)])
    genes = np.array([f"G{i + 1:02d}" for i in range(N_GENES)])
    times = sample_times(rng)
    grid = np.arange(-BURN_IN, times[-1] + DT / 2, DT)

    # genomic: copy number of 8 genes (1-4 copies) and eQTL dosages (0/1/2) of 6 genes
    cn_genes, eqtl_genes = genes[:8], genes[8:14]
    copy_number = rng.choice([1, 2, 2, 2, 3, 4], size=(N_SERIES, cn_genes.size)).astype(float)
    dosage = rng.binomial(2, 0.4, size=(N_SERIES, eqtl_genes.size)).astype(float)
    gene_scale = np.ones((N_SERIES, N_GENES))
    gene_scale[:, :8] = copy_number / 2.0  # transcription proportional to copy number
    gene_scale[:, 8:14] = 1.0 + 0.5 * (dosage - 1.0)  # each alt allele changes transcription by 50 %

    # transcription: alpha_gs(t) = base_g * scale_gs * exp(W_g . z_s(t)); dm/dt = alpha - delta m
    base = rng.lognormal(mean=1.5, sigma=0.8, size=N_GENES)
    loadings = rng.normal(0.0, 1.0, size=(N_GENES, N_DRIVERS))
    z = _drivers(rng, grid)
    alpha = base[None, :, None] * gene_scale[:, :, None] * np.exp(np.einsum("gk,skt->sgt", loadings, z))
    m = np.empty_like(alpha)
    m[..., 0] = alpha[..., 0] / MRNA_DECAY
    for i in range(1, grid.size):
        m[..., i] = m[..., i - 1] + DT * (alpha[..., i - 1] - MRNA_DECAY * m[..., i - 1])

    source, delay, decay, p = _translation(rng, m, grid.size)

    at = np.searchsorted(grid, times - DT / 2)  # grid index of each sampling time
    m_t, p_t = m[..., at], p[..., at]  # (S, G, T), (S, P, T)

    rna = _cells(rng, m_t, times, donors, genes)
    protein = _protein(rng, p_t, times, donors, genes[source])

    static = np.concatenate([copy_number, dosage], axis=1).astype(np.float32)
    names = [f"cn_{g}" for g in cn_genes] + [f"eqtl_{g}" for g in eqtl_genes]
    genomic = ad.AnnData(X=static, obs=pd.DataFrame({"donor": donors}, index=donors),
                         var=pd.DataFrame({"kind": ["copy_number"] * 8 + ["genotype_dosage"] * 6}, index=names))

    mdata = md.MuData({"genomic": genomic, "rna": rna, "protein": protein})
    mdata.uns["demo"] = {
        "seed": seed,
        "protein_gene": genes[source].tolist(),
        "protein_delay_days": delay.tolist(),
        "protein_decay_per_day": decay.tolist(),
        "times": times.tolist(),
    }
    return mdata


def _cells(rng: np.random.Generator, m_t: np.ndarray, times: np.ndarray, donors: np.ndarray,
           genes: np.ndarray):
    """Single cells with raw UMI counts around each donor's mRNA levels (m_t: series x genes x times)."""
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    # rna: single cells. Composition drifts over time (softmax of a per-type trend plus donor effects);
    # each type multiplies the donor's expression profile; UMIs are negative binomial around it.
    type_profile = rng.lognormal(0.0, 0.25, size=(len(CELL_TYPES), N_GENES))
    trend = np.array([-0.06, -0.02, 0.05, 0.03])
    donor_effect = rng.normal(0.0, 0.3, size=(N_SERIES, len(CELL_TYPES)))
    rows, cell_donor, cell_day, cell_types = [], [], [], []
    for s in range(N_SERIES):
        for t_i, t in enumerate(times):
            n_cells = int(rng.integers(50, 90))
            logits = trend * t + donor_effect[s] + np.array([1.0, 0.6, 0.0, -0.5])
            prob = np.exp(logits - logits.max())
            cell_type = rng.choice(len(CELL_TYPES), size=n_cells, p=prob / prob.sum())
            expr = m_t[s, :, t_i][None, :] * type_profile[cell_type]
            library = rng.lognormal(np.log(1500.0), 0.35, size=n_cells)
            mu = library[:, None] * expr / expr.sum(axis=1, keepdims=True)
            rows.append(rng.negative_binomial(NB_DISPERSION, NB_DISPERSION / (NB_DISPERSION + mu)).astype(np.float32))
            cell_donor.append(np.full(n_cells, s))
            cell_day.append(np.full(n_cells, t))
            cell_types.append(cell_type)
    cell_donor, cell_day = np.concatenate(cell_donor), np.concatenate(cell_day)
    rna_obs = pd.DataFrame({
        "donor": pd.Categorical.from_codes(cell_donor, categories=donors),
        "day": cell_day,
        "cell_type": pd.Categorical.from_codes(np.concatenate(cell_types), categories=CELL_TYPES),
    })
    rna_obs.index = [f"{donors[d]}_d{t:g}_c{i}" for i, (d, t) in enumerate(zip(cell_donor, cell_day, strict=True))]
    return ad.AnnData(X=sp.csr_matrix(np.concatenate(rows)), obs=rna_obs, var=pd.DataFrame(index=genes))


def _protein(rng: np.random.Generator, p_t: np.ndarray, times: np.ndarray, donors: np.ndarray,
             source_genes: np.ndarray):
    """Bulk log2 protein intensities, missing not at random below a detection limit."""
    import anndata as ad
    import pandas as pd

    # protein: log2 intensity with multiplicative noise; missing not at random below a detection limit
    intensity = np.log2(p_t) + rng.normal(0.0, 0.1, size=p_t.shape)  # (S, P, T)
    limit = np.quantile(intensity, DETECTION_LIMIT_QUANTILE)
    p_missing = 1.0 / (1.0 + np.exp((intensity - limit) / 0.15))  # logistic: almost surely missing well below
    intensity[rng.random(intensity.shape) < p_missing] = np.nan
    proteins = np.array([f"P{j + 1:02d}" for j in range(N_PROTEINS)])
    sample = pd.DataFrame({"donor": np.repeat(donors, times.size), "day": np.tile(times, N_SERIES)})
    sample.index = [f"{d}_d{t:g}" for d, t in zip(sample["donor"], sample["day"], strict=True)]
    prot_values = intensity.transpose(0, 2, 1).reshape(-1, N_PROTEINS).astype(np.float32)
    return ad.AnnData(X=prot_values, obs=sample, var=pd.DataFrame({"gene": source_genes}, index=proteins))


def _translation(rng: np.random.Generator, m: np.ndarray, steps: int):
    """Proteins from driver-responsive genes with a delay: dp/dt = k m_g(t - tau) - delta_p p."""
    source = rng.choice(np.arange(14, N_GENES), size=N_PROTEINS, replace=False)  # driver-responsive genes
    delay = rng.uniform(*PROTEIN_DELAY, size=N_PROTEINS)
    decay = rng.uniform(*PROTEIN_DECAY, size=N_PROTEINS)
    lag = np.round(delay / DT).astype(int)
    p = np.empty((N_SERIES, N_PROTEINS, steps))
    for j in range(N_PROTEINS):
        mj = m[:, source[j], :]
        delayed = np.concatenate([np.repeat(mj[:, :1], lag[j], axis=1), mj[:, :-lag[j]]], axis=1)
        p[:, j, 0] = 20.0 * delayed[:, 0] / decay[j]
        for i in range(1, steps):
            p[:, j, i] = p[:, j, i - 1] + DT * (20.0 * delayed[:, i - 1] - decay[j] * p[:, j, i - 1])
    return source, delay, decay, p
