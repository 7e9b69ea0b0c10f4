"""torchrun: the shared LSTM trained with torch DistributedDataParallel, one process per rank.

``torchrun --nproc-per-node N -m biocount run ...`` starts N copies of the run. Every rank reads,
encodes and aligns the study (deterministic: the same on every rank) and fits the forecasters that
declare ``Capabilities.distributed`` together; rank 0 alone fits the others, backtests, explains and
writes. In a step every rank draws the same global batch from the same seeded permutation and takes
every N-th window of it (a ``DistributedSampler`` over one batch); its loss is weighted by its share
of the batch's scored values, so DDP's averaged gradient is the gradient of the global batch's loss: with the same seed and
global batch, the weights after an epoch equal the single-process run's up to float rounding
(tests/test_distributed.py). gloo on CPU, NCCL when the forecaster trains on CUDA.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

# Ranks wait for each other at the first collective while rank 0 alone fits the other forecasters
# (ARIMA on many series can take hours); torch's 30-minute default would abort such a run.
TIMEOUT = timedelta(hours=12)


def launched() -> bool:
    """Started by torchrun (or any launcher that sets torch's env:// variables)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def follower() -> bool:
    """A torchrun rank other than 0 (known from the environment, before any process group exists)."""
    return launched() and os.environ["RANK"] != "0"


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """A process group exists (never imports torch: without torch loaded there can be none)."""
    if "torch" not in sys.modules:
        return False
    dist = _dist()
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return _dist().get_rank() if active() else 0


def world() -> int:
    return _dist().get_world_size() if active() else 1


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[int]:
    """Join torchrun's process group for the block (a no-op outside torchrun); yields this rank.

    The backend follows the device the LSTM will train on: NCCL for CUDA, gloo for the CPU.
    """
    if not launched() or active():
        yield rank()
        return
    import torch

    dist = _dist()
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:  # one GPU per rank, before the group exists (NCCL binds the current device)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo", timeout=TIMEOUT)
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def agree(text: str) -> None:
    """Every rank must run the same study with the same options: ``text`` (the run's options) is compared
    across ranks, and a rank started differently stops every rank with one line (instead of a hang, an
    unclear collective error, or a rank 0 that writes a folder without the distributed forecasters)."""
    if not active():
        return
    import hashlib

    dist = _dist()
    mine = hashlib.sha256(text.encode()).hexdigest()
    every: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(every, mine)
    other = [r for r, digest in enumerate(every) if digest != every[0]]
    if other:
        from biocount.errors import BiocountInputError

        raise BiocountInputError(f"torchrun: rank(s) {', '.join(map(str, other))} were started with other options "
                                 "or data than rank 0; start every rank with the same biocount run command")


def wrap(model: Any) -> Any:
    """``model`` in DistributedDataParallel when a process group is active (it broadcasts rank 0's
    weights and averages gradients in backward), else ``model`` itself."""
    if not active():
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    # gradients live in the all-reduce buckets (no copy per step); the model has no buffers to broadcast
    return DistributedDataParallel(model, device_ids=ids, gradient_as_bucket_view=True, broadcast_buffers=False)


def share(idx: Any, scored: Any) -> tuple[Any, Any]:
    """This rank's part of a global batch of windows ``idx`` (every ``world``-th one) and the weight of
    its loss: its share of the batch's scored values (``scored``: per window) x world. The losses are
    means over scored values, so DDP's averaged gradient is then exactly the global batch's. A rank
    left without windows (a short last batch) takes one with weight 0: every rank joins the backward."""
    n = world()
    if n == 1:
        return idx, 1.0
    mine = idx[rank()::n]
    if mine.numel() == 0:
        return idx[:1], 0.0
    return mine, scored[mine].sum() * n / scored[idx].sum().clamp(min=1.0)  # a tensor: no host sync per step


def all_sum(value: Any) -> Any:
    """``value`` (a tensor) summed over the ranks; itself outside a process group."""
    if active():
        _dist().all_reduce(value)
    return value
