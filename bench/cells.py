"""Standard (torch.nn.LSTM) vs peephole (TorchScript) cell: forward + backward at a few sizes."""

from __future__ import annotations

import torch

from bench.common import best_of, report

SIZES = [(64, 16, 32, 32), (256, 16, 64, 64), (256, 32, 64, 128), (1024, 16, 128, 128)]  # batch, steps, in, hidden


def main() -> None:
    from biocount.forecasters.lstm.network import PeepholeLSTM

    torch.manual_seed(0)
    rows, worst = [], 0.0
    for batch, steps, inp, hidden in SIZES:
        x = torch.randn(batch, steps, inp)
        timings = {}
        for name, cell in (("standard", torch.nn.LSTM(inp, hidden, batch_first=True)),
                           ("peephole", PeepholeLSTM(inp, hidden))):
            def step(cell=cell, x=x):
                out, _ = cell(x)
                out.sum().backward()

            timings[name] = best_of(step, repeat=7, warmup=3)  # TorchScript specialises over its first runs
        ratio = timings["peephole"] / timings["standard"]
        worst = max(worst, ratio)
        rows.append({"batch": batch, "steps": steps, "input": inp, "hidden": hidden,
                     "standard_ms": 1e3 * timings["standard"], "peephole_ms": 1e3 * timings["peephole"],
                     "ratio": ratio})
    report("cells", rows, [f"target: peephole within 2x of standard on CPU -> {'met' if worst <= 2 else 'missed'} "
                           f"(worst {worst:.2f}x)"], worst_ratio=worst)
