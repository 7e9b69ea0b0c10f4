"""biocount's LSTM training step against bare torch doing the same arithmetic, on identical tensors.

The default network (``python -m bench training``): biocount's own loop (``training.train_network``, one
epoch: shuffling, gathering, the forecaster's loss, AdamW, clipping, the profiler ranges) against a loop
written here from plain ``torch.nn`` modules with the same sizes and operations: a Linear + LayerNorm + GELU
adapter per input block, modality dropout, ``nn.LSTM``, dropout, the shared horizon head (one-hot horizon,
log days ahead), the lag head, the residual, the masked MSE in the feature's units, fused AdamW with weight
decay and gradient clipping. Both train on the demo study's windows (protein target, rna + protein inputs,
the default lookback and regular-time history) replicated to 4,096+, batch 64, one torch thread; epochs
interleaved in rounds so both see the same machine load. The ratio is what biocount's code costs beyond the
arithmetic of its architecture (goal of issue 27: <= 1.3x).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

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


class Bare(nn.Module):
    """The default MultiModalLSTM's arithmetic, from plain torch modules (no biocount code)."""

    def __init__(self, blocks: dict[str, int], target: str, n_static: int, n_targets: int, horizon: int,
                 lookback: int, hidden: int = 32, dim: int = 32, dropout: float = 0.3, modality_dropout: float = 0.1):
        super().__init__()
        self.names, self.target, self.p_mod = list(blocks), target, modality_dropout
        self.adapters = nn.ModuleDict({m: nn.Sequential(nn.Linear(n, dim), nn.LayerNorm(dim), nn.GELU())
                                       for m, n in blocks.items()})
        fused = dim * len(blocks)
        self.init = nn.Linear(n_static, 2 * hidden) if n_static else None
        self.lstm = nn.LSTM(fused, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden + horizon + 1, n_targets)
        self.lag = nn.Linear(lookback * fused, horizon * n_targets)
        self.horizon, self.n_targets, self.hidden = horizon, n_targets, hidden

    def forward(self, b: dict) -> torch.Tensor:
        parts = []
        for m in self.names:
            z = self.adapters[m](b["inputs"][m])
            if self.training and m != self.target:
                z = z * (torch.rand(z.size(0), 1, 1) >= self.p_mod).float()
            parts.append(z)
        fused = torch.cat(parts, -1)
        B, H = fused.size(0), self.horizon
        state = None
        if self.init is not None:
            hc = torch.tanh(self.init(b["static"])).view(B, 2, 1, self.hidden)
            state = (hc[:, 0].transpose(0, 1).contiguous(), hc[:, 1].transpose(0, 1).contiguous())
        out, _ = self.lstm(fused, state)
        last = self.drop(out[:, -1])
        features = torch.cat([last.unsqueeze(1).expand(B, H, -1), torch.eye(H).expand(B, H, H),
                              torch.log1p(b["ahead"].clamp(min=0)).unsqueeze(-1)], -1)
        y = self.head(features) + self.lag(fused.reshape(B, -1)).view(B, H, self.n_targets)
        return y + b["last"][:, None, :]  # the residual: a change from the last observed value


def main() -> None:
    from biocount.forecasters.lstm import training
    from biocount.forecasters.lstm.forecaster import LSTMForecaster
    from biocount.forecasters.lstm.options import LSTMOptions
    from biocount.forecasters.lstm.windows import train_origins

    torch.manual_seed(0)
    task = demo_windows()
    with training.torch_threads(1):
        f = LSTMForecaster(LSTMOptions(epochs=1, quiet=True, patience=None, members=1))
        f.fit(task)  # the scalers, the network and the batch policy
        o = f.options
        origins = train_origins(task.data, task.train_end, task.horizon, task.train_series)
        origins = np.concatenate([origins] * int(np.ceil(4096 / len(origins))))  # an epoch is not all overhead
        batch = f._windows(task.data, origins, target_until=task.train_end)
        n = batch["last"].shape[0]
        f.batch_size = 64
        config = f.model.config
        blocks = {m: batch["inputs"][m].shape[-1] for m in f.model.names}
        bare = Bare(blocks, config.target, config.n_static, config.n_targets, config.horizon, config.lag_steps,
                    hidden=o.hidden, dim=o.adapter_dim, dropout=o.dropout, modality_dropout=o.modality_dropout)
        bare_opt = torch.optim.AdamW(bare.parameters(), lr=f.lr, weight_decay=o.weight_decay, fused=True)
        spread, y, mask = batch["spread"], batch["y"], batch["mask"]

        def bare_epoch():
            bare.train()
            order = torch.randperm(n)
            for start in range(0, n, 64):
                idx = order[start:start + 64]
                b = {"inputs": {m: x[idx] for m, x in batch["inputs"].items()}, "last": batch["last"][idx],
                     "static": None if batch["static"] is None else batch["static"][idx], "ahead": batch["ahead"][idx]}
                m = mask[idx].float()
                err = (bare(b) - y[idx]) * spread[idx]
                loss = (err * err * m).sum() / m.sum().clamp(min=1.0)
                bare_opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(bare.parameters(), o.clip)
                bare_opt.step()

        def biocount_epoch():
            training.train_network(f, batch, None, 0, lambda *a: None)

        n_params = (sum(p.numel() for p in f.model.parameters()), sum(p.numel() for p in bare.parameters()))
        rounds, ratios = [], []
        for _ in range(5):
            timings = {}
            for name, fn in (("bare torch, same arithmetic", bare_epoch), ("biocount default", biocount_epoch)):
                fn()  # warm-up
                t = time.perf_counter()
                fn()
                timings[name] = time.perf_counter() - t
            ratios.append(timings["biocount default"] / timings["bare torch, same arithmetic"])
            rounds.append(timings)
    steps = -(-n // 64)
    rows = [{"loop": k, "windows": n, "steps": steps,
             "ms_per_step": 1e3 * float(np.median([r[k] for r in rounds])) / steps,
             "windows_per_s": n / float(np.median([r[k] for r in rounds]))} for k in rounds[0]]
    ratio = float(np.median(ratios))
    rows.append({"loop": "ratio biocount / bare (median of 5 rounds)", "ms_per_step": ratio})
    notes = [f"parameters: biocount {n_params[0]:,}, bare {n_params[1]:,} (the same network)",
             f"goal of issue 27: biocount's step <= 1.3x bare torch doing the same arithmetic -> "
             f"{'met' if ratio <= 1.3 else 'missed'} ({ratio:.2f}x; rounds {', '.join(f'{r:.2f}' for r in ratios)})"]
    report("training", rows, notes)
