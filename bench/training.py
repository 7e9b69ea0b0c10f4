"""biocount's LSTM training step vs a bare torch.nn.LSTM + Linear loop on identical tensors and sizes.

Both train on the demo study's windows (protein target, rna + protein inputs, lookback 8, horizon 3),
batch 64, hidden 32, Adam. Bare torch concatenates every input channel and regresses all targets; biocount
runs its own training code (`LSTMForecaster._loss`: adapters, shared head, residual, masked loss).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from bench.common import report


def demo_windows():
    from biocount.forecast import ForecastTask, present_origins
    from biocount.host.plugins import load_host
    from biocount.io.datasets import demo
    from biocount.io.readers import as_modalities
    from biocount.study.align import align
    from biocount.study.encode import TrainSelection, encode

    data = as_modalities(demo(0), where="demo")
    encoded, _ = encode(data, ["rna", "protein"], load_host(), train=TrainSelection(until=20.0))
    aligned = align(encoded, target="protein")
    S = aligned.series.size
    task = ForecastTask(data=aligned, horizon=3, train_end=np.full(S, 25),
                        val_origins=present_origins(aligned, np.full(S, 25), np.full(S, 26)))
    return task


def main() -> None:
    rows, notes = [], []
    task = demo_windows()
    for adapters in (False, True):
        r, ratio = measure(task, adapters)
        label = "biocount, adapters off (same architecture as bare)" if not adapters else "biocount, default (adapters on)"
        rows += [dict(x, loop=x["loop"].replace("biocount", label)) for x in r]
        if not adapters:
            notes.append(f"target: biocount within 1.15x of bare torch (same architecture) -> "
                         f"{'met' if ratio <= 1.15 else 'missed'} ({ratio:.2f}x)")
        else:
            notes.append(f"with the per-modality adapters (Linear + LayerNorm + GELU per modality, wider LSTM input): "
                         f"{ratio:.2f}x bare torch; that is the architecture's cost, not training overhead")
    report("training", rows, notes)


def measure(task, adapters: bool):
    from biocount.forecasters.lstm.forecaster import LSTMForecaster
    from biocount.forecasters.lstm.options import LSTMOptions
    from biocount.forecasters.lstm.training import _optimizer, take, tensors
    from biocount.forecasters.lstm.windows import make_windows, train_origins

    torch.manual_seed(0)
    f = LSTMForecaster(LSTMOptions(epochs=1, quiet=True, patience=None, adapters=adapters, dropout=0.0,
                                   modality_dropout=0.0, weight_decay=0.0))
    f.fit(task)  # builds the model and scalers
    origins = train_origins(task.data, task.train_end, task.horizon, task.train_series)
    w = make_windows(task.data, origins, lookback=8, horizon=3, scaler=f.scaler, inputs_scaler=f.inputs_scaler,
                     target_until=task.train_end)
    reps = int(np.ceil(4096 / len(w)))  # enough windows that an epoch is not all overhead
    batch = tensors(w, torch.device("cpu"))
    batch = {k: ({n: x.repeat(reps, *[1] * (x.dim() - 1)) for n, x in v.items()} if isinstance(v, dict) else
                 (None if v is None else v.repeat(reps, *[1] * (v.dim() - 1)))) for k, v in batch.items()}
    n = batch["y"].shape[0]
    opt = _optimizer(f)

    def biocount_epoch():
        f.model.train()
        order = torch.randperm(n)
        for start in range(0, n, 64):
            loss = f.loss(take(batch, order[start:start + 64]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    x = torch.cat([batch["inputs"][k] for k in sorted(batch["inputs"])], dim=-1)
    y, mask = batch["y"], batch["mask"]

    class Bare(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(x.shape[-1], 32, batch_first=True)
            self.head = torch.nn.Linear(32, y.shape[1] * y.shape[2])

        def forward(self, inp):
            out, _ = self.lstm(inp)
            return self.head(out[:, -1]).view(-1, y.shape[1], y.shape[2])

    bare = Bare()
    bare_opt = torch.optim.Adam(bare.parameters(), lr=1e-3, **f._optimizer_kwargs())

    def bare_epoch():
        order = torch.randperm(n)
        for start in range(0, n, 64):
            idx = order[start:start + 64]
            m = mask[idx].float()
            loss = (((bare(x[idx]) - y[idx]) ** 2) * m).sum() / m.sum().clamp(min=1)
            bare_opt.zero_grad(set_to_none=True)
            loss.backward()
            bare_opt.step()

    rows, ratios = [], []
    for _ in range(3):  # interleaved rounds: both see the same machine load
        timings = {}
        for name, fn in (("bare torch", bare_epoch), ("biocount", biocount_epoch)):
            fn()
            t = time.perf_counter()
            fn()
            timings[name] = time.perf_counter() - t
        ratios.append(timings["biocount"] / timings["bare torch"])
        rows = [{"loop": k, "windows": n, "seconds_per_epoch": v, "windows_per_s": n / v} for k, v in timings.items()]
    ratio = float(np.median(ratios))
    rows.append({"loop": "ratio biocount / bare (median of 3)", "seconds_per_epoch": ratio})
    return rows, ratio
