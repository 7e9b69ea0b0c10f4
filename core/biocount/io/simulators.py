"""Two realistic simulators of multi-series count studies, for the accuracy suite and tutorials.

Both return a tidy long table (``series_id, time, feature, value, modality``: the shared-data
convention that ``biocount run --data FILE.csv --modalities NAME=tabular`` reads) and record their
ground truth in ``frame.attrs``: which modality drives the target (``signal``), which carries
nothing (``null``), and which series were simulated under a shifted regime (``test_series``: hold
them out to test transfer to conditions not seen in training).

- :func:`chemostat`: algae -> rotifers in chemostats (Fussmann et al. 2000, Science 290:1358;
  Blasius et al. 2020, Nature 577:226), with an egg stage, nutrient media that differ between
  training and test chemostats, counting noise and occasional crashes.
- :func:`gut`: a gut community (generalised Lotka-Volterra) under antibiotic courses, observed as
  absolute abundances from 16S relative abundance x qPCR total load (Stein et al. 2013, PLoS Comput
  Biol 9:e1003388; Bucci et al. 2016, Genome Biol 17:121).

Parameters are in docs/datasets.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DT = 0.02  # Euler step, days
BURN_IN = 60.0  # days simulated before the first sample (the cycles settle on their attractor)


def _long(blocks: list[tuple[str, str, np.ndarray]], series: np.ndarray, days: np.ndarray) -> pd.DataFrame:
    """Tidy rows from (modality, feature, values (S, T)) blocks."""
    import pandas as pd

    parts = []
    for modality, feature, values in blocks:
        parts.append(pd.DataFrame({
            "series_id": np.repeat(series, days.size), "time": np.tile(days, series.size), "feature": feature,
            "value": values.reshape(-1), "modality": modality,
        }))
    return pd.concat(parts, ignore_index=True)


def _room_temperature(rng: np.random.Generator, n: int, days: int) -> np.ndarray:
    """A null covariate: room temperature (deg C) as a mean-reverting walk that affects nothing."""
    t = np.full((n, days), 20.0)
    for i in range(1, days):
        t[:, i] = 20.0 + 0.8 * (t[:, i - 1] - 20.0) + rng.normal(0.0, 0.4, size=n)
    return np.round(t, 1)


def chemostat(seed: int = 0, *, n_series: int = 12, days: int = 100, shifted: int = 4) -> pd.DataFrame:
    """Predator-prey chemostats: Chlorella algae fed on nitrogen, Brachionus rotifers grazing them.

    Model (per chemostat, dilution rate d, medium nitrogen N_in; Fussmann et al. 2000)::

        dN/dt = d (N_in - N) - F_C(N) C              F_C(N) = b_C N / (K_C + N)
        dC/dt = F_C(N) C - F_B(C) B / eps - d C      F_B(C) = b_B C / (K_B + C)
        dE/dt = F_B(C) B - (1 / tau + d) E           eggs hatch after tau days on average
        dB/dt = E / tau - (d + m) B

    with multiplicative environmental noise each day, and rare crashes (contamination, a clogged
    outflow: 2 % of rotifers survive, probability 0.005 per chemostat-day). Samples are daily
    counts in a fixed subsample volume (Poisson): algae cells, adult female rotifers and eggs.

    Parameters
    ----------
    seed
        Random seed: the same seed gives the same table, bit for bit.
    n_series
        Chemostats.
    days
        Daily samples per chemostat.
    shifted
        Chemostats fed a richer medium (N_in 160 instead of 80 umol N/l): listed in
        ``attrs["test_series"]``; hold them out to test transfer under a nutrient shift.

    Returns
    -------
    Long table with modalities ``rotifer`` (features ``females``, ``eggs``: the natural target),
    ``algae`` (``chlorella``: drives the rotifers, leading them by a few days) and ``temperature``
    (``room_c``: affects nothing). ``attrs``: ``signal``, ``null``, ``test_series``, ``seed``.
    """
    rng = np.random.default_rng(seed)
    if not 0 <= shifted < n_series:
        raise ValueError(f"shifted={shifted}: must be at least 0 and below n_series={n_series}")
    series = np.array([f"chemostat{i + 1:02d}" for i in range(n_series)])
    n_in = np.where(np.arange(n_series) >= n_series - shifted, 160.0, 80.0)
    d = rng.uniform(0.45, 0.75, size=n_series)  # dilution per day: the cycling region of Fussmann et al.
    b_c, k_c, b_b, k_b, eps, m, tau = 3.3, 4.3, 2.25, 15.0, 0.25, 0.055, 1.0
    N, C = n_in * rng.uniform(0.3, 0.6, n_series), rng.uniform(5, 20, n_series)
    E, B = rng.uniform(0.5, 2, n_series), rng.uniform(1, 5, n_series)
    steps = int(round(1.0 / DT))
    out = np.zeros((3, n_series, days))
    for day in range(int(BURN_IN) + days):
        for _ in range(steps):
            f_c, f_b = b_c * N / (k_c + N), b_b * C / (k_b + C)
            N, C, E, B = (N + DT * (d * (n_in - N) - f_c * C),
                          C + DT * (f_c * C - f_b * B / eps - d * C),
                          E + DT * (f_b * B - (1 / tau + d) * E),
                          B + DT * (E / tau - (d + m) * B))
            N, C, E, B = (np.maximum(v, 1e-6) for v in (N, C, E, B))
        C = C * rng.lognormal(0.0, 0.05, n_series)
        B = B * rng.lognormal(0.0, 0.05, n_series)
        crash = rng.random(n_series) < 0.005
        B, E = np.where(crash, 0.02 * B, B), np.where(crash, 0.02 * E, E)
        if day >= BURN_IN:
            out[:, :, day - int(BURN_IN)] = C, B, E
    algae = rng.poisson(out[0] * 20.0)  # cells counted per haemocytometer field set
    females, eggs = rng.poisson(out[1] * 30.0), rng.poisson(out[2] * 30.0)  # per counted subsample
    t = np.arange(days, dtype=float)
    frame = _long([("rotifer", "females", females), ("rotifer", "eggs", eggs), ("algae", "chlorella", algae),
                   ("temperature", "room_c", _room_temperature(rng, n_series, days))], series, t)
    frame.attrs = {"signal": ["algae"], "null": ["temperature"], "target": "rotifer",
                   "test_series": series[n_series - shifted:].tolist(), "seed": seed}
    return frame


def gut(seed: int = 0, *, n_series: int = 12, days: int = 70, taxa: int = 8, shifted: int = 4) -> pd.DataFrame:
    """Gut communities (mice) under antibiotic courses, as absolute abundances (16S x qPCR).

    Generalised Lotka-Volterra with a perturbation (Stein et al. 2013)::

        dx_i/dt = x_i (r_i + sum_j A_ij x_j + s_i u(t)) + 1e-4      (immigration keeps taxa alive)

    ``u(t)`` is 1 during an antibiotic course: one 5-day course at a random day for most mice, two
    7-day courses for the ``shifted`` ones (a schedule not seen in training). Most taxa are
    sensitive (s_i < 0); two resistant taxa bloom in the freed niche. Each day a stool sample is
    sequenced (multinomial 16S reads, depth ~20,000) and its total bacterial load measured by qPCR
    (lognormal error, sd 0.2 on the log scale); absolute abundance = relative abundance x load.

    Parameters
    ----------
    seed
        Random seed: the same seed gives the same table, bit for bit.
    n_series
        Mice.
    days
        Daily samples per mouse.
    taxa
        Taxa simulated.
    shifted
        Mice on the two-course schedule: ``attrs["test_series"]``.

    Returns
    -------
    Long table with modalities ``abundance`` (one feature per taxon: estimated 16S copies per gram
    in units of 10^6, integers; the natural target), ``antibiotic`` (``dose``: 1 on course days,
    recorded the morning the course starts, before it acts: drives the target) and ``host``
    (``weight_g``: affects nothing). ``attrs``: ``signal``, ``null``, ``test_series``, ``seed``.
    """
    rng = np.random.default_rng(seed)
    if not 0 <= shifted < n_series:
        raise ValueError(f"shifted={shifted}: must be at least 0 and below n_series={n_series}")
    series = np.array([f"mouse{i + 1:02d}" for i in range(n_series)])
    r = rng.uniform(0.4, 1.2, taxa)
    capacity = np.exp(rng.uniform(np.log(0.5), np.log(20.0), taxa))  # 10^10 copies per gram
    A = rng.normal(0.0, 0.25, (taxa, taxa)) * (rng.random((taxa, taxa)) < 0.35) / capacity[None, :]
    np.fill_diagonal(A, -r / capacity)
    sens = -rng.uniform(1.0, 3.0, taxa)
    sens[rng.choice(taxa, 2, replace=False)] = rng.uniform(0.1, 0.4, 2)  # resistant bloomers
    u = np.zeros((n_series, days))
    for s in range(n_series):
        if s >= n_series - shifted:
            for start in rng.choice(np.arange(10, days - 10, 14), 2, replace=False):
                u[s, start:start + 7] = 1
        else:
            start = int(rng.integers(10, days - 15))
            u[s, start:start + 5] = 1
    x = capacity * rng.uniform(0.2, 0.8, (n_series, taxa))
    steps = int(round(1.0 / DT))
    load = np.zeros((n_series, taxa, days))
    for day in range(int(BURN_IN) + days):
        k = day - int(BURN_IN)
        if k >= 0:
            load[:, :, k] = x  # the morning sample, before the day's dose acts
        dose = u[:, k][:, None] if k >= 0 else 0.0
        for _ in range(steps):
            x = np.maximum(x + DT * (x * (r + x @ A.T + sens * dose) + 1e-4), 1e-6)
        x = x * rng.lognormal(0.0, 0.05, x.shape)
    total = load.sum(axis=1)  # (S, T), 10^10 copies per gram
    depth = np.round(rng.lognormal(np.log(20000), 0.3, (n_series, days))).astype(int)
    rel = np.zeros_like(load)
    for s in range(n_series):
        for k in range(days):
            p = load[s, :, k] / total[s, k]
            rel[s, :, k] = rng.multinomial(depth[s, k], p / p.sum()) / depth[s, k]
    qpcr = total * rng.lognormal(0.0, 0.2, total.shape)
    absolute = np.round(rel * qpcr[:, None, :] * 1e4)  # in 10^6 copies per gram
    weight = np.round(25.0 + np.cumsum(rng.normal(0.02, 0.15, (n_series, days)), axis=1), 2)
    t = np.arange(days, dtype=float)
    blocks = [("abundance", f"taxon{i + 1:02d}", absolute[:, i, :]) for i in range(taxa)]
    frame = _long([*blocks, ("antibiotic", "dose", u), ("host", "weight_g", weight)], series, t)
    frame.attrs = {"signal": ["antibiotic"], "null": ["host"], "target": "abundance",
                   "test_series": series[n_series - shifted:].tolist(), "seed": seed}
    return frame
