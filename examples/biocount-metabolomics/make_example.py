"""Write biocount_metabolomics/data/metabolite.h5ad: LC-MS intensities on the demo study's donors and
days, run in three batches with pooled QC injections, an instrument drift and batch offsets.

    python make_example.py
"""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from biocount.datasets import demo

rng = np.random.default_rng(7)
study = demo(seed=0)
times = np.asarray(study.uns["demo"]["times"])
donors = sorted(study["protein"].obs["donor"].unique())
features = [f"M{i + 1}" for i in range(8)]
level = rng.lognormal(10, 1, size=len(features))
rows = []
for donor in donors:
    phase = rng.uniform(0, 6)
    for t in times:
        truth = level * np.exp(0.5 * np.sin(t / 7 + phase + np.arange(len(features))))
        rows.append({"series_id": donor, "day": t, "sample_type": "sample", "truth": truth})
samples = pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)  # randomised run order
samples["batch"] = np.repeat(["B1", "B2", "B3"], int(np.ceil(len(samples) / 3)))[: len(samples)]
records, order = [], 0
for b, part in samples.groupby("batch", sort=True):
    offset = rng.normal(0, 0.4, size=len(features))  # batch effect, log2
    for i, (_, r) in enumerate(part.iterrows()):
        if i % 10 == 0:  # a pooled QC injection every 10 samples
            records.append({"series_id": f"QC_{order:03d}", "day": float(r["day"]), "sample_type": "QC", "batch": b,
                            "injection_order": order, "log2": np.log2(level) + offset})
            order += 1
        records.append({"series_id": r["series_id"], "day": r["day"], "sample_type": "sample", "batch": b,
                        "injection_order": order, "log2": np.log2(r["truth"]) + offset})
        order += 1
table = pd.DataFrame(records)
drift = -0.004 * table["injection_order"].to_numpy()  # signal decays along the run
X = 2 ** (np.stack(table["log2"].to_numpy()) + drift[:, None] + rng.normal(0, 0.08, size=(len(table), len(features))))
obs = table[["series_id", "day", "sample_type", "batch", "injection_order"]].copy()
obs.index = [f"inj{i:04d}" for i in range(len(obs))]
out = Path(__file__).parent / "biocount_metabolomics" / "data" / "metabolite.h5ad"
ad.AnnData(X=X.astype(np.float32), obs=obs, var=pd.DataFrame(index=features)).write_h5ad(out)
print(f"wrote {out}: {len(obs)} injections ({(obs.sample_type == 'QC').sum()} QC) x {len(features)} features")
