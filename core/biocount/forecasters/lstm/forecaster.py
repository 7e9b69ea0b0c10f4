"""The ``lstm`` forecaster: the shared multi-input LSTM (:mod:`.network`) fitted on one global set of
windows (:mod:`.windows`) by :mod:`.training`, read through its likelihood (:mod:`.likelihood`),
explained by :mod:`.attribution` and saved by :mod:`.checkpoint`. See docs/model.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from biocount.errors import BiocountInputError
from biocount.forecast import Forecast, ForecastTask
from biocount.study.align import modality_of

from . import checkpoint, training
from .likelihood import COUNT, Dispersion, count_distribution, mse, normal_quantiles, read_head, training_loss
from .network import MultiModalLSTM, NetworkConfig
from .options import LSTMOptions
from .training import torch_threads
from .windows import TIME, InputScaler, Windows, make_windows, regular_step, target_scaler, train_origins


def resolve_device(name: str) -> torch.device:
    """The torch device for the ``device`` option (auto: CUDA when torch sees one)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise BiocountInputError("--device cuda: no CUDA device is visible to torch on this machine; "
                                 "use --device cpu or --device auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# Windows per forward pass without gradients (validation, forecasts, explanations): a large study's windows go
# through the network in equal pieces of at most this many, whose activations (about 12 kB per window) stay
# small and are reused: 2x faster than one pass over 1,000 series x 100 points' 45,000 windows, and 10,000
# series no longer hold 5 GB of activations at once (docs/performance.md, §7b). Another batch size may let the
# matrix kernels sum in another order: the same numbers to float32 rounding (tested; identical in that bench).
FORWARD_CHUNK = 4_096


class LSTMForecaster:
    """The shared multi-input LSTM as a forecaster (see docs/model.md)."""

    options_type = LSTMOptions
    resolve_device = staticmethod(resolve_device)

    def __init__(self, options: LSTMOptions | None = None) -> None:
        self.options = options or LSTMOptions()
        self.history: list[tuple[int, float, float | None]] = []
        self.notes: list[str] = []

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, task: ForecastTask) -> LSTMForecaster:
        with torch_threads(training.threads_for(self.options)):
            return self._fit(task)

    def _fit(self, task: ForecastTask) -> LSTMForecaster:
        o, data = self.options, task.data
        self._check(task)
        self.notes = []
        self.horizon, self.lookback = task.horizon, self._lookback(task)
        self.step = regular_step(data.times, task.train_end) if o.regular_history else None
        self.device = resolve_device(o.device)
        seed = task.seed if o.seed is None else o.seed
        torch.manual_seed(seed)
        self.scaler = target_scaler(o.scaling, data, task.train_end)
        self.inputs_scaler = InputScaler.fit(data, task.train_end)
        origins = train_origins(data, task.train_end, task.horizon, task.train_series)
        if origins.shape[0] == 0:
            raise BiocountInputError(f"no training windows: with horizon {task.horizon} no origin before the end of "
                                     "the training part has an observed target; shorten --horizon or widen training")
        train = self._windows(data, origins, target_until=task.train_end)
        self.train_windows = origins.shape[0]
        self.batch_size, self.lr = training.batch_policy(o, self.train_windows)
        val = None
        if task.val_origins.shape[0] and o.patience is not None:
            val = self._windows(data, task.val_origins, target_until=task.val_end)
            # early stopping reads the validation MSE on the scale it will be scored on (the encoder's), not
            # per-series standardised units: a series whose feature was flat in its context (a species not
            # yet arrived) would otherwise blow its scaled errors up 1000-fold and drown every other series
            val["unscale"] = torch.as_tensor(self.scaler.std[task.val_origins[:, 0]][:, None, :], device=self.device)
            if val["spread"] is not None:
                val["unscale"] = val["unscale"] * val["spread"]
        self.signature = {"inputs": {n: m.features.tolist() for n, m in data.inputs.items()},
                          "target": data.target, "target_features": data.target_features.tolist(),
                          "static_names": [] if data.static_names is None else data.static_names.tolist()}
        self.fresh_weights()
        fitted, self.members_on = training.train_members(self, train, val, seed)
        self.members = [state for state, _, _ in fitted]
        self.histories, self.best_epochs = [h for _, h, _ in fitted], [b for _, _, b in fitted]
        self.load_state(self.members[-1])
        self.history, self.best_epoch = self.histories[0], self.best_epochs[0]
        if val is not None:
            self._say_if_persistence(val)
        return self

    def _cut(self, data: Any, origins: np.ndarray, *, target_until: np.ndarray | None = None) -> Windows:
        """Windows at ``origins``, cut as this model reads them (targets after ``target_until`` masked)."""
        return make_windows(data, origins, lookback=self.lookback, horizon=self.horizon, scaler=self.scaler,
                            inputs_scaler=self.inputs_scaler, target_until=target_until,
                            window_norm=self.options.scaling == "window", every=self.step)

    def _windows(self, data: Any, origins: np.ndarray, *, target_until: np.ndarray | None = None) -> dict[str, Any]:
        """:meth:`_cut`, as tensors on the device."""
        return training.tensors(self._cut(data, origins, target_until=target_until), self.device)

    # -- checks and notes ------------------------------------------------------------------------
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

    # -- the network and what training asks of it (biocount.forecasters.lstm.training) ----------
    def network_config(self) -> NetworkConfig:
        """The network for the data's signature, the horizon, the lookback and the options."""
        o, sig = self.options, self.signature
        level = {sig["target"]: 2 * len(sig["target_features"])} if o.scaling == "window" else {}
        return NetworkConfig(
            modalities={n: len(f) + 2 + level.get(n, 0) for n, f in sig["inputs"].items()} | {TIME: 1},
            n_static=len(sig["static_names"]), n_targets=len(sig["target_features"]), horizon=self.horizon,
            target=sig["target"], outputs_per_target=2 if o.loss == "gaussian" else 1,
            lag_steps=self.lookback if o.lag_head else 0, hidden=o.hidden, layers=o.layers, dropout=o.dropout,
            adapter_dim=o.adapter_dim, adapters=o.adapters, cell=o.cell, modality_dropout=o.modality_dropout)

    def new_network(self, config: NetworkConfig) -> None:
        """The network (and the NB dispersion) for ``config``; used by fit and by checkpoint loading."""
        self.model = MultiModalLSTM(config)
        self.dispersion = Dispersion(config.n_targets) if self.options.loss == "negbin" else None

    def fresh_weights(self) -> None:
        """A new network, initialised from torch's current RNG (a residual model starts at persistence)."""
        self.new_network(self.network_config())
        if self.options.residual:
            self.model.zero_head()

    def parameters(self) -> list[torch.nn.Parameter]:
        params = list(self.model.parameters())
        return params + (list(self.dispersion.parameters()) if self.dispersion is not None else [])

    def outputs(self, batch: dict[str, Any], net: Any = None,
                off: frozenset[str] = frozenset()) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's (first, second) outputs for a batch of windows; without gradients (forecasts,
        validation) at most ``FORWARD_CHUNK`` windows per pass."""
        n = batch["last"].shape[0]
        if n > FORWARD_CHUNK and not torch.is_grad_enabled():
            step = -(-n // -(-n // FORWARD_CHUNK))  # equal pieces: none much smaller than the others
            parts = [self.outputs(training.take(batch, slice(i, i + step)), net, off) for i in range(0, n, step)]
            second = None if parts[0][1] is None else torch.cat([v for _, v in parts])
            return torch.cat([f for f, _ in parts]), second
        out = (net or self.model)(batch["inputs"], batch["static"], batch["ahead"], off).float()
        return read_head(out, batch, loss=self.options.loss, residual=self.options.residual)

    def loss(self, batch: dict[str, Any], net: Any = None) -> torch.Tensor:
        first, second = self.outputs(batch, net)
        return training_loss(first, second, batch, loss=self.options.loss, dispersion=self.dispersion)

    def state(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict()}
        if self.dispersion is not None:
            state["dispersion"] = self.dispersion.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.dispersion is not None:
            self.dispersion.load_state_dict(state["dispersion"])

    @torch.no_grad()
    def _with_state(self, state: dict[str, Any], fn):
        self.load_state(state)
        self.model.eval()
        return fn()

    def _validation_mse(self, val: dict[str, Any]) -> float:
        """Validation MSE of the (averaged) members, on the scale the run scores."""
        first = torch.stack([self._with_state(st, lambda: self.outputs(val)[0]) for st in self.members]).mean(0)
        return float(mse(first * val["unscale"], val["y"] * val["unscale"], val["mask"]))

    # -- predict ---------------------------------------------------------------------------------
    def predict(self, task: ForecastTask, origins: np.ndarray, *, without: tuple[str, ...] = ()) -> Forecast:
        """Forecasts from ``origins``; ``without`` names input modalities to switch off (the network was
        trained with modality dropout, so it also forecasts from any subset: ``Capabilities.subsets``)."""
        sig = self.signature
        allowed = [n for n in dict.fromkeys([*sig["inputs"], *map(modality_of, sig["static_names"])])
                   if n not in (sig["target"], TIME)]
        unknown = [m for m in without if m not in allowed]
        if unknown:
            raise BiocountInputError(f"lstm: cannot switch off '{unknown[0]}': the inputs it can do without are "
                                     + (", ".join(allowed) or "none"))
        with torch_threads(training.threads_for(self.options)):
            return self._predict(task, origins, frozenset(without))

    @torch.no_grad()
    def _predict(self, task: ForecastTask, origins: np.ndarray, off: frozenset[str] = frozenset()) -> Forecast:
        if not hasattr(self, "model"):
            raise BiocountInputError("lstm: predict() called before fit()")
        self._check_signature(task.data)
        origins = np.asarray(origins, dtype=int).reshape(-1, 2)
        w = self._cut(task.data, origins)
        batch = training.tensors(w, self.device)
        if off and batch["static"] is not None:  # a switched-off modality's static covariates go too (0 = mean)
            names = self.signature["static_names"]
            gone = torch.as_tensor([modality_of(n) in off for n in names], device=self.device)
            batch["static"] = batch["static"].masked_fill(gone, 0.0)
        outs = [self._with_state(st, lambda: self.outputs(batch, off=off)) for st in self.members]
        first = torch.stack([f for f, _ in outs]).mean(0).cpu().numpy().astype(np.float64)
        second = None if outs[0][1] is None else torch.stack([v for _, v in outs]).mean(0)
        s = origins[:, 0]
        if self.options.loss in COUNT:
            quantiles, counts = count_distribution(task.data, origins, first, self.dispersion)
            return Forecast(mean=np.log1p(np.exp(first)), quantiles=quantiles, counts=counts)
        spread = np.ones_like(first[:, :1]) if w.spread is None else w.spread[:, None, :]
        if w.center is not None:
            first = first * spread + w.center[:, None, :]
        mean = self.scaler.unscale(first, s)
        if second is not None:
            sd = np.exp(0.5 * np.clip(second.cpu().numpy(), -10, 10)) * self.scaler.std[s][:, None] * spread
            return Forecast(mean=mean, quantiles=normal_quantiles(mean, sd), sd=sd)
        return Forecast(mean=mean, quantiles={})

    def attribute(self, task: ForecastTask, origins: np.ndarray, *, targets: np.ndarray, steps: int = 32) -> dict[str, Any]:
        """Integrated gradients of the forecasts at ``origins``, averaged over the seed-ensemble members
        (:func:`biocount.forecasters.lstm.attribution.over_members`)."""
        from .attribution import over_members

        batch = self._windows(task.data, np.asarray(origins, dtype=int).reshape(-1, 2))
        with torch_threads(training.threads_for(self.options)):
            return over_members(self, batch, targets=targets, steps=steps)

    def _check_signature(self, data) -> None:
        got = {n: m.features.tolist() for n, m in data.inputs.items()}
        if got != self.signature["inputs"] or data.target_features.tolist() != self.signature["target_features"]:
            raise BiocountInputError("lstm: the data's modalities or features differ from those the model was "
                                     f"trained on ({', '.join(self.signature['inputs'])}); encode the same way")

    def report(self) -> dict[str, Any]:
        """Training facts for run.json: curve, best epoch, lookback, device, notes."""
        out: dict[str, Any] = {"notes": list(self.notes), "torch_threads": training.threads_for(self.options) or torch.get_num_threads()}
        if hasattr(self, "device"):
            out["device"] = str(self.device)
            if self.device.type == "cuda":
                out |= {"cudnn": torch.backends.cudnn.version(), "gpu": torch.cuda.get_device_name(self.device)}
        if self.history:
            out |= {"lookback": int(self.lookback), "epochs_run": len(self.history), "best_epoch": int(self.best_epoch),
                    "train_windows": int(self.train_windows), "batch_size": int(self.batch_size), "lr": float(self.lr),
                    "members": len(self.members), "members_on": getattr(self, "members_on", "this process"),
                    "best_epochs": [int(e) for e in self.best_epochs],
                    "patience": training.patience_epochs(self.options.patience, self.train_windows, self.batch_size),
                    "history": [[e, round(t, 6), None if v is None else round(v, 6)] for e, t, v in self.history]}
        return out

    # -- checkpoints (biocount.forecasters.lstm.checkpoint) -----------------------------------------
    def save(self, path: str | Path) -> None:
        """Weights, the network's config, options, modality and feature names, scalers and the version."""
        checkpoint.save(self, path)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto") -> LSTMForecaster:
        """Load with ``weights_only=True``; refuse checkpoints from an incompatible biocount."""
        return checkpoint.load(cls, path, device=device)


def build(options: LSTMOptions) -> LSTMForecaster:
    """The spec's factory."""
    return LSTMForecaster(options)
