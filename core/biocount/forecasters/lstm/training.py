"""Training the LSTM: the seed-ensemble members, the loop, its thread policy and its progress lines.

One model over all series and windows: Adam with decoupled weight decay, gradient clipping, early
stopping on validation origins with the best weights restored, seeded shuffling. Windows are cut once
into tensors; a step only indexes them. Under torchrun every rank takes its share of each global
batch (:mod:`biocount.ddp`); with ``--dask`` large studies train their members on the workers.

The loop works on a *trainee*: the forecaster, which owns the network (``model``, ``dispersion``),
``device``, ``options``, ``batch_size``, ``lr``, ``loss(batch, net)``, ``state()`` and
``load_state(state)``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from biocount import ddp
from biocount.parallel import active_client, cores, map_series, submit_series

from .likelihood import mse
from .windows import Windows

SMALL_MODEL = 64 * 128  # hidden x batch size up to which one torch thread is the automatic choice
# Training windows from which --dask trains the seed-ensemble members on the workers: below it a member
# trains in about a second, less than a worker's first torch import (the demo: 2.4 s here, 3.8 s on Dask)
DASK_MEMBERS_MIN_WINDOWS = 16_384
# Training windows from which the members train side by side in loky worker processes (--jobs): a worker's
# first fit imports torch and torch._dynamo (about 3 s), paid back from a few thousand windows
# (docs/performance.md, "Members side by side"). The workers map the windows from files, not copies of them.
LOKY_MEMBERS_MIN_WINDOWS = 2_048
# Early stopping waits `patience` epochs, but never more than about this many optimiser steps (and at least
# MIN_PATIENCE epochs): a large study's epoch is up to 256 steps, and twenty epochs after the best one were
# most of its fit and bought little (200 series x 80 points x 8 features: 1.5-2.1x faster, test MSE within
# 0.2 %; every real table of the accuracy suite has at most 57 steps per epoch: docs/performance.md, §8)
PATIENCE_STEPS = 1_000
MIN_PATIENCE = 5
STEP_CLOCK: dict[str, list[float]] | None = None  # label -> [calls, seconds] while `bench profile` runs
LOG_EVERY = 20.0  # seconds between progress lines on a log

Member = tuple[dict[str, Any], list, int]  # best state, history [(epoch, train loss, val loss)], best epoch


def tensors(w: Windows, device: torch.device) -> dict[str, Any]:
    """The windows as a batch of tensors on ``device`` (cut once; a step only indexes them)."""
    def t(a):
        return None if a is None else torch.as_tensor(a, device=device)

    return {"inputs": {k: t(v) for k, v in w.inputs.items()}, "static": t(w.static), "last": t(w.last),
            "y": t(w.y), "mask": t(w.mask), "counts": t(w.counts), "log_sf": t(w.log_sf),
            "last_log_rate": t(w.last_log_rate), "ahead": t(w.ahead),
            "spread": None if w.spread is None else t(w.spread[:, None, :])}


def each(batch: dict[str, Any], fn) -> dict[str, Any]:
    """``fn`` applied to every entry of a batch of windows, inside its per-modality dicts too."""
    return {k: each(v, fn) if isinstance(v, dict) else fn(v) for k, v in batch.items()}


def take(batch: dict[str, Any], idx: torch.Tensor | slice) -> dict[str, Any]:
    """The windows ``idx`` of a batch."""
    return each(batch, lambda v: None if v is None else v[idx])


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's intra-op threads set to ``n`` for a block, then restored (None: untouched)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def threads_for(options: Any) -> int | None:
    """The threads option, or the automatic choice: 1 thread for small models, where a second thread
    gains nothing unloaded and costs 12x under a 2-process load (docs/performance.md, "Threads")."""
    if options.threads is not None:
        return options.threads
    return 1 if options.hidden * options.batch_size <= SMALL_MODEL else None


def batch_policy(options: Any, n: int) -> tuple[int, float]:
    """Batch size and learning rate for ``n`` training windows: at most ``steps_per_epoch`` steps, the
    learning rate scaled by the square root of the batch's growth (the usual rule for Adam)."""
    o = options
    batch = o.batch_size if o.steps_per_epoch is None else max(o.batch_size, -(-n // o.steps_per_epoch))
    return batch, o.lr * (batch / o.batch_size) ** 0.5


def patience_epochs(patience: int | None, windows: int, batch_size: int) -> int | None:
    """Epochs without a better validation loss before training stops: ``patience``, fewer where an epoch (of
    ``windows`` in batches of ``batch_size``) is many optimiser steps (:data:`PATIENCE_STEPS`), never fewer
    than :data:`MIN_PATIENCE`."""
    if patience is None:
        return None
    steps = -(-windows // batch_size)
    return min(patience, max(MIN_PATIENCE, -(-PATIENCE_STEPS // steps)))


def _optimizer(trainee: Any) -> torch.optim.Optimizer:
    o = trainee.options
    # one fused kernel per step instead of a loop over parameter tensors (same numbers, less overhead)
    fused = {"fused": True} if trainee.device.type in ("cpu", "cuda") else {}
    if o.weight_decay:
        return torch.optim.AdamW(trainee.parameters(), lr=trainee.lr, weight_decay=o.weight_decay, **fused)
    return torch.optim.Adam(trainee.parameters(), lr=trainee.lr, **fused)


def train_members(trainee: Any, train: dict[str, Any], val: dict[str, Any] | None, seed: int) -> tuple[list[Member], str]:
    """Every member of the seed ensemble, and where they trained: this process, a torchrun rank, Dask's
    workers (``--dask``) or loky worker processes (``--jobs``: the LSTM trains on one core, and the members
    are independent, so a 2-core machine trains two at once). Same numbers everywhere: each member is seeded
    by its index and trains on one thread."""
    o = trainee.options
    workers = _member_workers(trainee, train, val)
    if workers == "dask":  # the windows go once to every worker
        _say_where(o, train, "dask")
        return map_series(_fit_member, [(trainee, seed, k) for k in range(o.members)], shared=(train, val),
                          labels=[f"lstm member {k}" for k in range(o.members)]), "dask"
    if workers > 1 and (fitted := _side_by_side(trainee, train, val, seed, workers)) is not None:
        return fitted
    progress = _progress(o.epochs * o.members, quiet=o.quiet)
    fitted = [member(trainee, train, val, seed, k, lambda e, t, v, k=k: progress(k * o.epochs + e, t, v))
              for k in range(o.members)]
    progress(None, None, None)
    return fitted, f"rank {ddp.rank()} of {ddp.world()}" if ddp.active() else "this process"


def _side_by_side(trainee: Any, train: dict[str, Any], val: dict[str, Any] | None, seed: int,
                  workers: int) -> tuple[list[Member], str] | None:
    """The members on ``workers`` loky processes; with more members than workers this process trains member 0
    meanwhile instead of waiting (three members on two cores: one round of three single-threaded processes,
    not two rounds). None when the windows cannot be written for the workers (the caller trains them here)."""
    o = trainee.options
    here = o.members > workers
    where = ("this process and " if here else "") + f"{workers} worker processes"
    # the windows go to the workers as files they map: the page cache holds one copy for every process (10,000
    # series x 100 points: about 1 GB of windows, which pickled copies per worker would triple)
    with tempfile.TemporaryDirectory(prefix="biocount-windows-", ignore_cleanup_errors=True) as folder:
        try:
            shared = (_mapped(train, Path(folder) / "train"), _mapped(val, Path(folder) / "val"))
        except OSError as exc:  # a full temporary folder costs the side-by-side training, not the model
            if not o.quiet:
                print(f"biocount: lstm: cannot write the training windows for worker processes to {folder} "
                      f"({exc.strerror or exc}); the members train here, one after another (set TMPDIR to a "
                      "folder with room to train them side by side)", file=sys.stderr, flush=True)
            return None
        _say_where(o, train, where)
        results = submit_series(_fit_member, [(trainee, seed, k) for k in range(int(here), o.members)],
                                n_jobs=workers, shared=shared)
        first = []
        if here:  # on a copy: the jobs' trainee is pickled in the background meanwhile
            progress = _progress(o.epochs, quiet=o.quiet)  # member 0's epochs: the others keep about its pace
            first = [_fit_member(train, val, copy.deepcopy(trainee), seed, 0, progress)]
            progress(None, None, None)
        return first + results(), where


@dataclass(frozen=True)
class _File:
    """A tensor written to a file: pickled, only its name travels, and the process that loads it maps the file
    (copy-on-write) instead of holding a copy of its own."""

    path: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    def load(self) -> torch.Tensor:
        return torch.from_file(self.path, shared=False, size=math.prod(self.shape), dtype=self.dtype).view(self.shape)


def _mapped(batch: dict[str, Any] | None, stem: Path) -> dict[str, Any] | None:
    """``batch`` with every non-empty tensor written to a file named after ``stem`` and its key (undone by
    :func:`_loaded`)."""
    if batch is None:
        return None
    out: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out[key] = _mapped(value, stem.with_name(f"{stem.name}.{key}"))
        elif isinstance(value, torch.Tensor) and value.numel():
            path = str(stem.with_name(f"{stem.name}.{key}.bin"))
            # written, not mapped for writing: a full disk raises OSError here instead of a SIGBUS later
            value.detach().contiguous().numpy().tofile(path)
            out[key] = _File(path, tuple(value.shape), value.dtype)
        else:
            out[key] = value
    return out


def _loaded(batch: dict[str, Any] | None) -> dict[str, Any] | None:
    """A batch of windows with its files mapped back to tensors."""
    return None if batch is None else each(batch, lambda v: v.load() if isinstance(v, _File) else v)


def _say_where(o: Any, train: dict[str, Any], where: str) -> None:
    """No per-epoch progress comes from other processes: one line says where the wait goes."""
    if not o.quiet:
        print(f"biocount: training lstm: {o.members} members side by side in {where} "
              f"({train['last'].shape[0]:,} windows, at most {o.epochs} epochs each)", file=sys.stderr, flush=True)


def _member_workers(trainee: Any, train: dict[str, Any], val: dict[str, Any] | None) -> int | str:
    """Where the members train: "dask", or how many loky worker processes (1: here, one after another)."""
    o, n = trainee.options, train["last"].shape[0]
    if o.members < 2 or trainee.device.type != "cpu" or ddp.active():
        return 1
    if active_client() is not None:
        return "dask" if n >= DASK_MEMBERS_MIN_WINDOWS else 1
    if o.n_jobs == 1 or threads_for(o) != 1 or n < LOKY_MEMBERS_MIN_WINDOWS:
        return 1  # a model on more threads already uses the cores here (and one thread would change its numbers)
    return min(cores() if o.n_jobs == -1 else o.n_jobs, o.members)


def member(trainee: Any, train: dict[str, Any], val: dict[str, Any] | None, seed: int, k: int, progress) -> Member:
    """Member ``k`` of the seed ensemble (same windows, other initial weights and shuffles). Its weights and
    dropout draw from torch's RNG seeded with ``seed + k`` here, so a member trained on a Dask worker gets
    the numbers it gets in this process."""
    torch.manual_seed(seed + k)
    trainee.fresh_weights()
    history, best_epoch = train_network(trainee, train, val, seed + k, progress)
    return copy.deepcopy(trainee.state()), history, best_epoch


def _fit_member(train: dict[str, Any], val: dict[str, Any] | None, trainee: Any, seed: int, k: int,
                progress=lambda *args: None) -> Member:
    """One member trained beside others (on a loky or Dask worker, or member 0 in the run's process meanwhile):
    the same code and seed as one after another, on one thread (the processes share the machine)."""
    with torch_threads(1):
        return member(trainee, _loaded(train), _loaded(val), seed, k, progress)


def train_network(trainee: Any, train: dict[str, Any], val: dict[str, Any] | None, seed: int,
                  progress) -> tuple[list, int]:
    """Train ``trainee.model`` from its initial weights; early stopping restores the best epoch. Returns
    the history [(epoch, train loss, validation loss)] and the best epoch."""
    o, device = trainee.options, trainee.device
    trainee.model.to(device)
    net = ddp.wrap(trainee.model)
    scored = train["mask"].flatten(1).sum(1).float() if ddp.world() > 1 else None  # values per window
    if trainee.dispersion is not None:
        trainee.dispersion.to(device)
    n = train["last"].shape[0]
    optim = _optimizer(trainee)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, waited, best_epoch = float("inf"), None, 0, None
    patience = patience_epochs(o.patience, n, trainee.batch_size)
    history = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and o.bf16)
    for epoch in range(o.epochs):
        trainee.model.train()
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), device=device)  # summed on the device: no host sync per step
        for start in range(0, n, trainee.batch_size):
            # labelled for `python -m bench profile` (torch.profiler); a few microseconds per step when off
            with _step("gather"):
                idx = order[start:start + trainee.batch_size]
                mine, weight = ddp.share(idx, scored)
                batch = take(train, mine)
            with _step("forward"), autocast:
                loss = trainee.loss(batch, net) * weight
            with _step("backward"):
                optim.zero_grad(set_to_none=True)
                loss.backward()
            with _step("optimiser"):
                if o.clip is not None:
                    torch.nn.utils.clip_grad_norm_(trainee.parameters(), o.clip)
                optim.step()
                total += loss.detach() * (idx.numel() / ddp.world())
        train_loss = float(ddp.all_sum(total)) / n  # one sync per epoch
        with _step("validation"):
            val_loss = evaluate(trainee, val) if val is not None else None
        history.append((epoch, train_loss, val_loss))
        progress(epoch, train_loss, val_loss)
        if val_loss is not None and epoch + 1 >= o.min_epochs:
            if val_loss < best - 1e-7:
                best, waited, best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(trainee.state())
            else:
                waited += 1
                if waited >= patience:
                    break
    if best_state is not None:
        trainee.load_state(best_state)
    return history, len(history) - 1 if best_epoch is None else best_epoch


@torch.no_grad()
def evaluate(trainee: Any, batch: dict[str, Any]) -> float:
    """The early-stopping loss on validation windows (shared across torchrun ranks)."""
    trainee.model.eval()
    if ddp.world() > 1:  # each rank scores every world-th window; the sums are shared (one all-reduce)
        part = take(batch, torch.arange(ddp.rank(), batch["last"].shape[0], ddp.world(), device=trainee.device))
        scored = part["mask"].sum().to(torch.float32)
        total = ddp.all_sum(torch.stack([validation_loss(trainee, part) * scored, scored]))
        return float(total[0] / total[1].clamp(min=1.0))
    return float(validation_loss(trainee, batch))


def validation_loss(trainee: Any, batch: dict[str, Any]) -> torch.Tensor:
    """The early-stopping loss: the training loss, or for MSE the MSE on the scale the run scores."""
    if trainee.options.loss != "mse":
        return trainee.loss(batch)
    first, _ = trainee.outputs(batch)
    return mse(first * batch["unscale"], batch["y"] * batch["unscale"], batch["mask"])


@contextlib.contextmanager
def _step(label: str):
    """A part of a training step (gather, forward, backward, optimiser, validation): a torch.profiler range
    ``lstm.<label>`` for your own traces, and timed into :data:`STEP_CLOCK` when that is a dict (``python -m
    bench profile``: torch.profiler itself keeps every op of a whole run, gigabytes on a large study)."""
    with torch.profiler.record_function(f"lstm.{label}"):
        if STEP_CLOCK is None:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            entry = STEP_CLOCK.setdefault(label, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - start


def _progress(total: int, *, quiet: bool):
    """A rich progress bar with the time left on a terminal; a line every :data:`LOG_EVERY` seconds with the
    time left on a log (a pipe, CI); nothing when quiet. Early stopping ends members early, so the time
    left is an upper bound."""
    if quiet:
        return lambda *a: None
    if not sys.stderr.isatty():
        return _log_progress(total)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} epochs"),
                   TimeElapsedColumn(), TextColumn("left at most"), TimeRemainingColumn(), transient=True)
    task = bar.add_task("training lstm", total=total)
    bar.start()

    def update(epoch, loss, val):
        if epoch is None:
            bar.stop()
            return
        text = f"training lstm  loss {loss:.4f}" + (f"  val {val:.4f}" if val is not None else "")
        bar.update(task, completed=epoch + 1, description=text)

    return update


def _log_progress(total: int, clock=time.monotonic):
    """Progress lines for a log: epochs done of the most, seconds so far, and at most how many are left."""
    start = last = clock()

    def update(epoch, loss, val):
        nonlocal last
        now = clock()
        if epoch is None or now - last < LOG_EVERY:
            return
        last, done = now, epoch + 1
        left = (now - start) / done * max(total - done, 0)
        print(f"biocount: training lstm: {done}/{total} epochs in {now - start:.0f} s, at most {left:.0f} s left "
              f"(loss {loss:.4f})", file=sys.stderr, flush=True)

    return update
