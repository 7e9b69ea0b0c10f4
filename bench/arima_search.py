"""ARIMA's order search with and without the Hannan–Rissanen pre-selection (``preselect``: rank the candidate
orders by least squares, fit only the finalists by maximum likelihood), on the shared tables of
``bench baseline``: test MSE ratio (goal: within 2 %) and ARIMA's core-seconds (one process, ``--jobs 1``)."""

from __future__ import annotations

from bench.baseline import tables
from bench.common import report


def main() -> None:
    import biocount as bc
    from biocount.evaluation.metrics import point_metrics

    rows = []
    for name, _, opts in tables(["arima"]):
        opts |= {"jobs": 1, "ensemble": "none"}
        name = name.replace(" (10 states)", " (all states)")  # the whole table here: no gold standard to wait for
        runs = {}
        for label, pre in (("full", None), ("preselect", 3)):
            result = bc.run(**opts, options={"arima": {"preselect": pre}})
            bt = result.backtest
            runs[label] = (point_metrics(bt.y_test, bt.forecasts["arima"]["test"].mean)["mse"],
                           sum(result.info["forecasters"]["arima"]["timings_s"].values()))
        (m_full, s_full), (m_pre, s_pre) = runs["full"], runs["preselect"]
        rows.append({"table": name, "series_x_features": int(bt.data.y.shape[0] * bt.data.y.shape[2]),
                     "mse_full": m_full, "mse_preselect": m_pre, "ratio": m_pre / m_full,
                     "full_s": s_full, "preselect_s": s_pre, "speedup": s_full / max(s_pre, 1e-9)})
    worst = max(abs(r["ratio"] - 1) for r in rows)
    notes = [f"goal: MSE within 2 % of the full search -> {'met' if worst <= 0.02 else 'missed'} (largest "
             f"difference {worst:.1%}); speed-up {min(r['speedup'] for r in rows):.1f}x to "
             f"{max(r['speedup'] for r in rows):.1f}x in core-seconds"]
    report("arima_search", rows, notes)
