"""The ``lstm`` forecaster: trains :class:`biocount.model.MultiModalLSTM` on one global set of windows.

Training (one model over all series and windows): Adam with decoupled weight decay, gradient
clipping, early stopping on validation origins with the best weights restored, seeded shuffling.
Windows are cut once into tensors; a step only indexes them.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biocount import ddp
from biocount._version import __version__
from biocount.errors import BiocountInputError
from biocount.forecast import Counts, Forecast, ForecastTask
from biocount.losses import COUNT, Dispersion, gaussian_nll, mse, negbin_nll, poisson_nll
from biocount.model import MultiModalLSTM
from biocount.parallel import active_client, map_series
from biocount.window import TIME, InputScaler, SeriesScaler, Windows, make_windows

from .lstm_options import LSTMOptions

CHECKPOINT_FORMAT = 2  # 2: lag head and regular-time history (older checkpoints lack both)
SMALL_MODEL = 64 * 128  # hidden x batch size up to which one torch thread is the automatic choice
# Training windows from which --dask trains the seed-ensemble members on the workers: below it a member
# trains in about a second, less than a worker's first torch import (the demo: 2.4 s here, 3.8 s on Dask)
DASK_MEMBERS_MIN_WINDOWS = 16_384


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise BiocountInputError("--device cuda: no CUDA device is visible to torch on this machine; "
                                 "use --device cpu or --device auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _tensors(w: Windows, device: torch.device) -> dict[str, Any]:
    def t(a):
        return None if a is None else torch.as_tensor(a, device=device)

    return {"inputs": {k: t(v) for k, v in w.inputs.items()}, "static": t(w.static), "last": t(w.last),
            "y": t(w.y), "mask": t(w.mask), "counts": t(w.counts), "log_sf": t(w.log_sf),
            "last_log_rate": t(w.last_log_rate), "ahead": t(w.ahead),
            "spread": None if w.spread is None else t(w.spread[:, None, :])}


def _take(batch: dict[str, Any], idx: torch.Tensor) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {n: x[idx] for n, x in v.items()}
        else:
            out[k] = None if v is None else v[idx]
    return out


@contextlib.contextmanager
def _torch_threads(n: int | None):
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


def _target_scaler(scaling: str, data, train_end: np.ndarray) -> SeriesScaler:
    if scaling == "series":
        return SeriesScaler.fit(data, train_end)
    if scaling == "window":  # units from the pooled training values; each window removes its own level
        return SeriesScaler.pooled(data, train_end)
    return SeriesScaler(np.zeros_like(data.y[:, 0]), np.ones_like(data.y[:, 0]))


class LSTMForecaster:
    """The shared multi-input LSTM as a forecaster (see docs/model.md)."""

    def __init__(self, options: LSTMOptions | None = None) -> None:
        self.options = options or LSTMOptions()
        self.history: list[tuple[int, float, float | None]] = []
        self.notes: list[str] = []

    # -- set-up ------------------------------------------------------------------------------
    def _check(self, task: ForecastTask) -> None:
        data, o = task.data, self.options
        if o.loss in COUNT:
            if data.y_counts is None or data.size_factors is None:
                raise BiocountInputError(
                    f"loss '{o.loss}' needs count targets with size factors, but the target modality "
                    f"'{data.target}' has none; use --loss mse or gaussian, or a counts encoder (rna)")
            meta = data.inputs[data.target].meta
            if not meta.get("log1p_rate"):
                norm = meta.get("normalisation", "")
                raise BiocountInputError(
                    f"loss '{o.loss}' forecasts log1p(counts / size factor) but the target modality "
                    f"'{data.target}' is encoded as '{norm}'; use --loss mse or gaussian")

    def _build(self, data) -> None:
        self.signature = {"inputs": {n: m.features.tolist() for n, m in data.inputs.items()},
                          "target": data.target, "target_features": data.target_features.tolist(),
                          "static_names": [] if data.static_names is None else data.static_names.tolist()}
        self._fresh_weights()

    def _fresh_weights(self) -> None:
        """A new network, initialised from torch's current RNG (a residual model starts at persistence)."""
        self._new_model()
        if self.options.residual:
            self.model.zero_head()

    def _new_model(self) -> None:
        """The network (and NB dispersion) for ``self.signature`` and the options; used by fit and load."""
        o, sig = self.options, self.signature
        self.model = MultiModalLSTM(
            modalities={n: len(f) + 2 + self._level_channels(n) for n, f in sig["inputs"].items()} | {TIME: 1},
            n_static=len(sig["static_names"]), n_targets=len(sig["target_features"]), horizon=self.horizon,
            hidden=o.hidden, layers=o.layers, dropout=o.dropout, adapter_dim=o.adapter_dim, cell=o.cell,
            outputs_per_target=2 if o.loss == "gaussian" else 1, target=sig["target"],
            modality_dropout=o.modality_dropout, adapters=o.adapters, lag_steps=self.lookback if o.lag_head else 0,
        )
        self.dispersion = Dispersion(len(sig["target_features"])) if o.loss == "negbin" else None

    def _level_channels(self, name: str) -> int:
        """Per-window scaling feeds the target's window level and log spread as extra channels."""
        sig = self.signature
        return 2 * len(sig["target_features"]) if self.options.scaling == "window" and name == sig["target"] else 0

    def _parameters(self):
        params = list(self.model.parameters())
        return params + (list(self.dispersion.parameters()) if self.dispersion is not None else [])

    def _optimizer_kwargs(self) -> dict[str, Any]:
        # one fused kernel per step instead of a loop over parameter tensors (same numbers, less overhead)
        return {"fused": True} if self.device.type in ("cpu", "cuda") else {}

    def _batch_policy(self, n: int) -> tuple[int, float]:
        """Batch size and learning rate for ``n`` training windows: at most ``steps_per_epoch`` steps, the
        learning rate scaled by the square root of the batch's growth (the usual rule for Adam)."""
        o = self.options
        batch = o.batch_size if o.steps_per_epoch is None else max(o.batch_size, -(-n // o.steps_per_epoch))
        return batch, o.lr * (batch / o.batch_size) ** 0.5

    def _optimizer(self, lr: float) -> torch.optim.Optimizer:
        o = self.options
        if o.weight_decay:
            return torch.optim.AdamW(self._parameters(), lr=lr, weight_decay=o.weight_decay, **self._optimizer_kwargs())
        return torch.optim.Adam(self._parameters(), lr=lr, **self._optimizer_kwargs())

    # -- the loss, one place for every likelihood ------------------------------------------------
    def _outputs(self, batch: dict[str, Any], net: Any = None,
                 off: frozenset[str] = frozenset()) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = (net or self.model)(batch["inputs"], batch["static"], batch["ahead"], off).float()
        o = self.options
        if o.loss in COUNT:
            base = batch["last_log_rate"][:, None, :] if o.residual else 0.0
            return out[..., 0] + base, None  # log-rate per unit size factor
        base = batch["last"][:, None, :] if o.residual else 0.0
        return out[..., 0] + base, (out[..., 1] if o.loss == "gaussian" else None)

    def _loss(self, batch: dict[str, Any], net: Any = None) -> torch.Tensor:
        first, second = self._outputs(batch, net)
        o, mask = self.options, batch["mask"]
        if o.loss == "mse":
            if batch["spread"] is not None:  # per-window units back to the feature's units: every window
                return mse(first * batch["spread"], batch["y"] * batch["spread"], mask)  # weighs as scored
            return mse(first, batch["y"], mask)
        if o.loss == "gaussian":
            return gaussian_nll(first, second, batch["y"], mask)
        log_mu = batch["log_sf"][..., None] + first
        if o.loss == "poisson":
            return poisson_nll(log_mu, batch["counts"], mask)
        return negbin_nll(log_mu, self.dispersion.log_alpha, batch["counts"], mask)

    # -- fit / predict ------------------------------------------------------------------------
    def _threads(self) -> int | None:
        """The threads option, or the automatic choice: 1 thread for small models, where a second thread
        gains nothing unloaded and costs 12x under a 2-process load (docs/performance.md, "Threads")."""
        o = self.options
        if o.threads is not None:
            return o.threads
        return 1 if o.hidden * o.batch_size <= SMALL_MODEL else None

    def fit(self, task: ForecastTask) -> LSTMForecaster:
        with _torch_threads(self._threads()):
            return self._fit(task)

    def _fit(self, task: ForecastTask) -> LSTMForecaster:
        o, data = self.options, task.data
        self._check(task)
        self.notes = []
        self.horizon, self.lookback = task.horizon, self._lookback(task)
        self.step = _regular_step(data.times, task.train_end) if o.regular_history else None
        self.device = resolve_device(o.device)
        seed = task.seed if o.seed is None else o.seed
        torch.manual_seed(seed)
        self.scaler = _target_scaler(o.scaling, data, task.train_end)
        self.inputs_scaler = InputScaler.fit(data, task.train_end)
        train_origins = self._train_origins(task)
        if train_origins.shape[0] == 0:
            raise BiocountInputError(f"no training windows: with horizon {task.horizon} no origin before the end of "
                                     "the training part has an observed target; shorten --horizon or widen training")
        train = _tensors(make_windows(data, train_origins, lookback=self.lookback, horizon=task.horizon,
                                      scaler=self.scaler, inputs_scaler=self.inputs_scaler,
                                      target_until=task.train_end, window_norm=o.scaling == "window",
                                      every=self.step), self.device)
        self.train_windows = train_origins.shape[0]
        self.batch_size, self.lr = self._batch_policy(self.train_windows)
        val = None
        if task.val_origins.shape[0] and o.patience is not None:
            val = _tensors(make_windows(data, task.val_origins, lookback=self.lookback, horizon=task.horizon,
                                        scaler=self.scaler, inputs_scaler=self.inputs_scaler,
                                        target_until=task.val_end, window_norm=o.scaling == "window",
                                        every=self.step), self.device)
            # early stopping reads the validation MSE on the scale it will be scored on (the encoder's), not
            # per-series standardised units: a series whose feature was flat in its context (a species not
            # yet arrived) would otherwise blow its scaled errors up 1000-fold and drown every other series
            val["unscale"] = torch.as_tensor(self.scaler.std[task.val_origins[:, 0]][:, None, :], device=self.device)
            if val["spread"] is not None:
                val["unscale"] = val["unscale"] * val["spread"]
        self._build(data)
        progress = _progress(o.epochs * o.members, quiet=o.quiet)
        self.histories, self.best_epochs = [], []
        if (o.members > 1 and self.device.type == "cpu" and self.train_windows >= DASK_MEMBERS_MIN_WINDOWS
                and active_client() is not None and not ddp.active()):
            # --dask: the members train on the cluster, the windows sent once to every worker
            fitted = map_series(_fit_member, [(self, seed, k) for k in range(o.members)], shared=(train, val),
                                labels=[f"lstm member {k}" for k in range(o.members)])
            self.members_on = "dask"
        else:
            self.members_on = f"rank {ddp.rank()} of {ddp.world()}" if ddp.active() else "this process"
            fitted = [self._member(train, val, seed, k, lambda e, t, v, k=k: progress(k * o.epochs + e, t, v))
                      for k in range(o.members)]
        self.members = [state for state, _, _ in fitted]
        self.histories, self.best_epochs = [h for _, h, _ in fitted], [b for _, _, b in fitted]
        self._load_state(self.members[-1])
        progress(None, None, None)
        self.history, self.best_epoch = self.histories[0], self.best_epochs[0]
        if val is not None:
            self._say_if_persistence(val)
        return self

    def _member(self, train: dict[str, Any], val: dict[str, Any] | None, seed: int, k: int,
                progress) -> tuple[dict[str, Any], list, int]:
        """Member ``k`` of the seed ensemble (same windows, other initial weights and shuffles): its best
        state, training history and best epoch. Its weights and dropout draw from torch's RNG seeded with
        ``seed + k`` here, so a member trained on a Dask worker gets the numbers it gets in this process."""
        torch.manual_seed(seed + k)
        self._fresh_weights()
        self._train(train, val, seed + k, progress)
        return copy.deepcopy(self._state()), self.histories.pop(), self.best_epochs.pop()

    def _train(self, train: dict[str, Any], val: dict[str, Any] | None, seed: int, progress) -> None:
        """Train ``self.model`` from its initial weights; early stopping restores the best epoch. Under
        torchrun every rank takes its share of each global batch (:mod:`biocount.ddp`)."""
        o = self.options
        self.model.to(self.device)
        net = ddp.wrap(self.model)
        scored = train["mask"].flatten(1).sum(1).float() if ddp.world() > 1 else None  # values per window
        if self.dispersion is not None:
            self.dispersion.to(self.device)
        n = train["last"].shape[0]
        optim = self._optimizer(self.lr)
        generator = torch.Generator().manual_seed(seed)
        best, best_state, waited, best_epoch = float("inf"), None, 0, None
        history = []
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda" and o.bf16)
        for epoch in range(o.epochs):
            self.model.train()
            order = torch.randperm(n, generator=generator).to(self.device)
            total = torch.zeros((), device=self.device)  # summed on the device: no host sync per step
            for start in range(0, n, self.batch_size):
                # labelled for `python -m bench profile` (torch.profiler); a few microseconds per step when off
                with _step("gather"):
                    idx = order[start:start + self.batch_size]
                    mine, weight = ddp.share(idx, scored)
                    batch = _take(train, mine)
                with _step("forward"), autocast:
                    loss = self._loss(batch, net) * weight
                with _step("backward"):
                    optim.zero_grad(set_to_none=True)
                    loss.backward()
                with _step("optimiser"):
                    if o.clip is not None:
                        torch.nn.utils.clip_grad_norm_(self._parameters(), o.clip)
                    optim.step()
                    total += loss.detach() * (idx.numel() / ddp.world())
            train_loss = float(ddp.all_sum(total)) / n  # one sync per epoch
            with _step("validation"):
                val_loss = self._evaluate(val) if val is not None else None
            history.append((epoch, train_loss, val_loss))
            progress(epoch, train_loss, val_loss)
            if val_loss is not None and epoch + 1 >= o.min_epochs:
                if val_loss < best - 1e-7:
                    best, waited, best_epoch = val_loss, 0, epoch
                    best_state = copy.deepcopy(self._state())
                else:
                    waited += 1
                    if waited >= o.patience:
                        break
        if best_state is not None:
            self._load_state(best_state)
        self.histories.append(history)
        self.best_epochs.append(len(history) - 1 if best_epoch is None else best_epoch)

    def _say_if_persistence(self, val: dict[str, Any]) -> None:
        """One note when validation says the LSTM is no better than persistence (never a silent near-copy)."""
        if self.options.loss != "mse":
            return
        fit = self._validation_mse(val)
        unit = val["unscale"]
        stay = float(mse(val["last"][:, None, :].expand_as(val["y"]) * unit, val["y"] * unit, val["mask"]))
        lowest = [int(np.argmin([h[2] for h in hist])) for hist in self.histories]
        if fit >= stay or max(lowest) <= 1:
            why = (f"validation MSE {fit:.4g} vs persistence {stay:.4g}" if fit >= stay else
                   f"validation loss lowest in epoch {', '.join(map(str, lowest))}")
            self.notes.append(
                f"no better than persistence on this study ({why}; tried: {self.options.members} seed(s), early "
                "stopping on validation, a residual head starting at persistence); read the baselines and the "
                "ensemble instead, and try --ablate-modalities, a shorter lookback, or more training series")

    def _lookback(self, task: ForecastTask) -> int:
        """The lookback option, shortened (with a note) to the longest training part."""
        train = task.train_end if task.train_series is None else task.train_end[task.train_series]
        longest = int(train.max()) + 1 if train.size else 0
        if longest < 1:
            raise BiocountInputError("lstm: no series has a training part")
        if self.options.lookback > longest:
            self.notes.append(f"lookback {longest} (not {self.options.lookback}): the training part has {longest} "
                              "time points")
        return min(self.options.lookback, longest)

    def report(self) -> dict[str, Any]:
        """Training facts for run.json: curve, best epoch, lookback, device, notes."""
        out: dict[str, Any] = {"notes": list(self.notes), "torch_threads": self._threads() or torch.get_num_threads()}
        if hasattr(self, "device"):
            out["device"] = str(self.device)
            if self.device.type == "cuda":
                out |= {"cudnn": torch.backends.cudnn.version(), "gpu": torch.cuda.get_device_name(self.device)}
        if self.history:
            out |= {"lookback": int(self.lookback), "epochs_run": len(self.history), "best_epoch": int(self.best_epoch),
                    "train_windows": int(self.train_windows), "batch_size": int(self.batch_size), "lr": float(self.lr),
                    "members": len(self.members), "members_on": getattr(self, "members_on", "this process"),
                    "best_epochs": [int(e) for e in self.best_epochs],
                    "history": [[e, round(t, 6), None if v is None else round(v, 6)] for e, t, v in self.history]}
        return out

    def _train_origins(self, task: ForecastTask) -> np.ndarray:
        """Origins whose history and at least one target lie in the training part."""
        data = task.data
        s, t = np.nonzero(data.present | np.any([m.observed for m in data.inputs.values()], axis=0))
        keep = t < task.train_end[s]
        if task.train_series is not None:
            keep &= task.train_series[s]
        s, t = s[keep], t[keep]
        ahead = t[:, None] + np.arange(1, task.horizon + 1)[None, :]
        ok = (ahead <= task.train_end[s][:, None]) & (ahead < data.times.size)
        has_target = np.zeros(s.size, dtype=bool)
        for h in range(task.horizon):
            col = np.where(ok[:, h], ahead[:, h], 0)
            has_target |= ok[:, h] & data.present[s, col]
        return np.stack([s[has_target], t[has_target]], axis=1).astype(int)

    def _state(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict()}
        if self.dispersion is not None:
            state["dispersion"] = self.dispersion.state_dict()
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.dispersion is not None:
            self.dispersion.load_state_dict(state["dispersion"])

    def _validation_mse(self, val: dict[str, Any]) -> float:
        """Validation MSE of the (averaged) members, on the scale the run scores."""
        first = torch.stack([self._with_state(st, lambda: self._outputs(val)[0]) for st in self.members]).mean(0)
        return float(mse(first * val["unscale"], val["y"] * val["unscale"], val["mask"]))

    @torch.no_grad()
    def _with_state(self, state: dict[str, Any], fn):
        self._load_state(state)
        self.model.eval()
        return fn()

    @torch.no_grad()
    def _evaluate(self, batch: dict[str, Any]) -> float:
        self.model.eval()
        if ddp.world() > 1:  # each rank scores every world-th window; the sums are shared (one all-reduce)
            part = _take(batch, torch.arange(ddp.rank(), batch["last"].shape[0], ddp.world(), device=self.device))
            scored = part["mask"].sum().to(torch.float32)
            total = ddp.all_sum(torch.stack([self._validation_loss(part) * scored, scored]))
            return float(total[0] / total[1].clamp(min=1.0))
        return float(self._validation_loss(batch))

    def _validation_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        """The early-stopping loss: the training loss, or for MSE the MSE on the scale the run scores."""
        if self.options.loss != "mse":
            return self._loss(batch)
        first, _ = self._outputs(batch)
        return mse(first * batch["unscale"], batch["y"] * batch["unscale"], batch["mask"])

    def predict(self, task: ForecastTask, origins: np.ndarray, *, without: tuple[str, ...] = ()) -> Forecast:
        """Forecasts from ``origins``; ``without`` names input modalities to switch off (the network was
        trained with modality dropout, so it also forecasts from any subset: ``Capabilities.subsets``)."""
        sig = self.signature
        allowed = [n for n in dict.fromkeys([*sig["inputs"], *(s.split(":")[0] for s in sig["static_names"])])
                   if n not in (sig["target"], TIME)]
        unknown = [m for m in without if m not in allowed]
        if unknown:
            raise BiocountInputError(f"lstm: cannot switch off '{unknown[0]}': the inputs it can do without are "
                                     + (", ".join(allowed) or "none"))
        with _torch_threads(self._threads()):
            return self._predict(task, origins, frozenset(without))

    @torch.no_grad()
    def _predict(self, task: ForecastTask, origins: np.ndarray, off: frozenset[str] = frozenset()) -> Forecast:
        if not hasattr(self, "model"):
            raise BiocountInputError("lstm: predict() called before fit()")
        self._check_signature(task.data)
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        w = make_windows(task.data, origins, lookback=self.lookback, horizon=self.horizon, scaler=self.scaler,
                         inputs_scaler=self.inputs_scaler, window_norm=self.options.scaling == "window",
                         every=self.step)
        batch = _tensors(w, self.device)
        if off and batch["static"] is not None:  # a switched-off modality's static covariates go too (0 = mean)
            names = self.signature["static_names"]
            gone = torch.as_tensor([n.split(":")[0] in off for n in names], device=self.device)
            batch["static"] = batch["static"].masked_fill(gone, 0.0)
        outs = [self._with_state(st, lambda: self._outputs(batch, off=off)) for st in self.members]
        first = torch.stack([f for f, _ in outs]).mean(0).cpu().numpy().astype(np.float64)
        second = None if outs[0][1] is None else torch.stack([v for _, v in outs]).mean(0)
        s = origins[:, 0]
        if self.options.loss in COUNT:
            quantiles, counts = self._count_distribution(task, origins, first)
            return Forecast(mean=np.log1p(np.exp(first)), quantiles=quantiles, counts=counts)
        spread = np.ones_like(first[:, :1]) if w.spread is None else w.spread[:, None, :]
        if w.center is not None:
            first = first * spread + w.center[:, None, :]
        mean = self.scaler.unscale(first, s)
        quantiles = {}
        if second is not None:
            from scipy.stats import norm

            sd = np.exp(0.5 * np.clip(second.cpu().numpy(), -10, 10)) * self.scaler.std[s][:, None] * spread
            quantiles = {q: mean + norm.ppf(q) * sd for q in (0.025, 0.1, 0.5, 0.9, 0.975)}
            return Forecast(mean=mean, quantiles=quantiles, sd=sd)
        return Forecast(mean=mean, quantiles=quantiles)

    def attribute(self, task: ForecastTask, origins: np.ndarray, *, targets: np.ndarray, steps: int = 32) -> dict[str, Any]:
        """Integrated gradients of the forecasts at ``origins`` (:mod:`biocount.attribution`), averaged
        over the seed-ensemble members (IG is linear in the function explained)."""
        from biocount.attribution import integrated_gradients

        w = make_windows(task.data, np.asarray(origins, dtype=int).reshape(-1, 2), lookback=self.lookback,
                         horizon=self.horizon, scaler=self.scaler, inputs_scaler=self.inputs_scaler,
                         window_norm=self.options.scaling == "window", every=self.step)
        batch = _tensors(w, self.device)
        channels = {n: len(f) for n, f in self.signature["inputs"].items()}
        parts = []
        with _torch_threads(self._threads()):
            for state in self.members:
                self._load_state(state)
                self.model.eval()
                parts.append(integrated_gradients(self.model, batch, channels, targets=targets, steps=steps))

        def mean(get):
            return np.mean([get(p) for p in parts], axis=0)

        return {"abs": {n: mean(lambda p, n=n: p["abs"][n]) for n in channels},
                "static_abs": None if parts[0]["static_abs"] is None else mean(lambda p: p["static_abs"]),
                "delta": mean(lambda p: p["delta"]), "total": mean(lambda p: p["total"])}

    def _count_distribution(self, task: ForecastTask, origins: np.ndarray,
                            log_rate: np.ndarray) -> tuple[dict[float, np.ndarray], Counts]:
        """Quantiles of log1p(count / size factor) under the fitted Poisson or negative binomial, and that
        distribution of the counts themselves.

        The future library size is unknown: each series' last observed size factor stands in for it.
        """
        from scipy import stats

        sf = task.data.size_factors
        seen = ~np.isnan(task.data.y).all(axis=2)
        last = np.array([sf[s, np.flatnonzero(seen[s, : t + 1])[-1]] if seen[s, : t + 1].any() else 1.0
                         for s, t in origins])[:, None, None]
        mu = np.exp(log_rate) * last
        r = None
        if self.options.loss == "negbin":
            r = np.exp(-self.dispersion.log_alpha.detach().cpu().numpy())[None, None, :]
            dist = stats.nbinom(r, r / (r + mu))
        else:
            dist = stats.poisson(mu)
        return {q: np.log1p(dist.ppf(q) / last) for q in (0.025, 0.1, 0.5, 0.9, 0.975)}, Counts(mu, r)

    def _check_signature(self, data) -> None:
        got = {n: m.features.tolist() for n, m in data.inputs.items()}
        if got != self.signature["inputs"] or data.target_features.tolist() != self.signature["target_features"]:
            raise BiocountInputError("lstm: the data's modalities or features differ from those the model was "
                                     f"trained on ({', '.join(self.signature['inputs'])}); encode the same way")

    # -- checkpoints ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Weights, options, modality and feature names, scalers and the biocount version."""
        torch.save({
            "format": CHECKPOINT_FORMAT, "biocount": __version__, "options": self.options.model_dump(),
            "horizon": self.horizon, "lookback": self.lookback, "step": self.step, "signature": self.signature,
            "scaler_mean": torch.as_tensor(self.scaler.mean), "scaler_std": torch.as_tensor(self.scaler.std),
            "inputs_scaler": {n: [torch.as_tensor(m), torch.as_tensor(sd)] for n, (m, sd) in self.inputs_scaler.stats.items()},
            "state": _cpu(self.members[0]), "members": [_cpu(m) for m in self.members],
        }, path)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto") -> LSTMForecaster:
        """Load with ``weights_only=True``; refuse checkpoints from an incompatible biocount."""
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise BiocountInputError(f"{path}: not a biocount checkpoint ({type(exc).__name__}: {exc})") from None
        version = str(ckpt.get("biocount", "?"))
        if ckpt.get("format") != CHECKPOINT_FORMAT or version.split(".")[:2] != __version__.split(".")[:2]:
            raise BiocountInputError(f"{path}: written by biocount {version} (format {ckpt.get('format')}); this is "
                                     f"biocount {__version__}, which reads {'.'.join(__version__.split('.')[:2])}.x "
                                     "checkpoints: retrain, or install the matching biocount")
        try:
            self = cls(LSTMOptions(**{**ckpt["options"], "device": device}))
            self.horizon, self.lookback, self.signature = ckpt["horizon"], ckpt["lookback"], ckpt["signature"]
            self.step = ckpt["step"]
            self.scaler = SeriesScaler(ckpt["scaler_mean"].numpy(), ckpt["scaler_std"].numpy())
            self.inputs_scaler = InputScaler({n: (m.numpy(), sd.numpy())
                                              for n, (m, sd) in ckpt["inputs_scaler"].items()})
            self.device = resolve_device(device)
            self._new_model()
            self.members = [{k: {n: t.to(self.device) for n, t in v.items()} for k, v in m.items()}
                            for m in ckpt.get("members") or [ckpt["state"]]]
            self._load_state(self.members[0])
        except BiocountInputError:
            raise
        except Exception as exc:  # options that do not validate, a missing entry, weights of another shape
            from biocount.registry import first_error

            why = first_error(exc) if hasattr(exc, "errors") else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
            raise BiocountInputError(f"{path}: a damaged or edited biocount checkpoint ({why}); retrain and save "
                                     "it again") from None
        self.model.to(self.device)
        return self


def _fit_member(train: dict[str, Any], val: dict[str, Any] | None, forecaster: LSTMForecaster, seed: int,
                k: int) -> tuple[dict[str, Any], list, int]:
    """One member on a Dask worker: the same code, seed and threads as in the run's own process."""
    with _torch_threads(forecaster._threads()):
        return forecaster._member(train, val, seed, k, lambda *args: None)


def _regular_step(times: np.ndarray, train_end: np.ndarray) -> float | None:
    """The median step of the grid's training part: the spacing of regular-time history (None: one point)."""
    steps = np.diff(times[: int(train_end.max()) + 1])
    return float(np.median(steps)) if steps.size else None


STEP_CLOCK: dict[str, list[float]] | None = None  # label -> [calls, seconds] while `bench profile` runs


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


def _cpu(state: dict[str, Any]) -> dict[str, Any]:
    return {k: {n: t.cpu() for n, t in v.items()} for k, v in state.items()}


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


LOG_EVERY = 20.0  # seconds between progress lines on a log


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


def build(options: LSTMOptions) -> LSTMForecaster:
    """The spec's factory."""
    return LSTMForecaster(options)
