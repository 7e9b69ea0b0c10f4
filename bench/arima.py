"""Rolling-origin ARIMA on N synthetic series (N = 50, 200): biocount's refit-free state extension vs
refitting at every origin, forecasts checked against per-origin re-filtering at the same parameters,
and n_jobs 1 vs 2. Order fixed at (1, 0, 0); 60 points, 15 test origins, horizon 3."""

from __future__ import annotations

import time
import warnings

import numpy as np

from bench.common import report

T, H, TRAIN_END = 60, 3, 44


def study(n: int):
    from biocount import ModalityData
    from biocount.forecast import ForecastTask
    from biocount.study.align import align

    rng = np.random.default_rng(n)
    y = np.zeros((n, T, 1))
    for t in range(1, T):
        y[:, t] = 5 + 0.6 * (y[:, t - 1] - 5) + rng.normal(0, 1, size=(n, 1))
    d = ModalityData(series=[f"s{i}" for i in range(n)], times=np.arange(T, dtype=float), features=["x"],
                     values=y, meta={"modality": "x"})
    data = align({"x": d}, target="x")
    task = ForecastTask(data=data, horizon=H, train_end=np.full(n, TRAIN_END))
    origins = np.array([(s, o) for s in range(n) for o in range(TRAIN_END, T - 1)])
    return task, origins


def refit_every_origin(task, origins) -> np.ndarray:
    from statsmodels.tsa.arima.model import ARIMA

    out = np.zeros((len(origins), H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (s, o) in enumerate(origins):
            out[i] = ARIMA(task.data.y[s, : o + 1, 0], order=(1, 0, 0), trend="c").fit().forecast(H)
    return out


def refilter_every_origin(task, origins, fits) -> np.ndarray:
    from statsmodels.tsa.arima.model import ARIMA

    out = np.zeros((len(origins), H))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, (s, o) in enumerate(origins):
            params = fits[(f"s{s}", "x")][TRAIN_END].params
            out[i] = ARIMA(task.data.y[s, : o + 1, 0], order=(1, 0, 0), trend="c").filter(params).forecast(H)
    return out


def main() -> None:
    from biocount_arima.forecaster import ArimaForecaster
    from biocount_arima.options import ArimaOptions

    rows, notes = [], []
    for n in (50, 200):
        task, origins = study(n)
        timings = {}
        for jobs in (1, 2):
            f = ArimaForecaster(ArimaOptions(order=[1, 0, 0], n_jobs=jobs, reselect_growth=None)).fit(task)
            t = time.perf_counter()
            fc = f.predict(task, origins)
            timings[jobs] = time.perf_counter() - t
        check = refilter_every_origin(task, origins, f.fits)
        diff = float(np.max(np.abs(fc.mean[:, :, 0] - check)))
        sub = origins if n == 50 else origins[: len(origins) // 4]  # refitting everything at N=200 takes minutes
        t = time.perf_counter()
        refit_every_origin(task, sub)
        refit = (time.perf_counter() - t) * len(origins) / len(sub)
        rows.append({"series": n, "origins": len(origins), "extend_s_jobs1": timings[1], "extend_s_jobs2": timings[2],
                     "refit_every_origin_s": refit, "speedup_vs_refit": refit / timings[1],
                     "speedup_2_jobs": timings[1] / timings[2], "max_abs_diff_vs_refilter": diff})
        if n == 200:
            notes.append("N=200 refit time extrapolated from a quarter of the origins")
    r50, r200 = rows
    notes += [f"target: >= 5x faster than refitting at every origin -> "
              f"{'met' if min(r['speedup_vs_refit'] for r in rows) >= 5 else 'missed'}",
              f"target: >= 1.7x speed-up on 2 cores at N=200 -> {'met' if r200['speedup_2_jobs'] >= 1.7 else 'missed'} "
              f"({r200['speedup_2_jobs']:.2f}x)",
              f"identical forecasts within 1e-6 -> {'met' if max(r['max_abs_diff_vs_refilter'] for r in rows) < 1e-6 else 'missed'}"]
    report("arima", rows, notes)
