"""LSTM checkpoints: weights of every member, the network's config, options, scalers, names, version.

Read with ``weights_only=True`` (plain tensors and containers, no pickled code). A checkpoint from
another minor version of biocount, or of another format, is refused with what to do.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from biocount._version import __version__
from biocount.errors import BiocountInputError

from .network import NetworkConfig
from .windows import InputScaler, SeriesScaler

FORMAT = 3  # 3: the network's config saved; 2: lag head and regular-time history


def save(forecaster: Any, path: str | Path) -> None:
    """Weights, the network's config, options, modality and feature names, scalers and the biocount version."""
    f = forecaster
    torch.save({
        "format": FORMAT, "biocount": __version__, "options": f.options.model_dump(),
        "network": asdict(f.model.config), "horizon": f.horizon, "lookback": f.lookback, "step": f.step,
        "signature": f.signature,
        "scaler_mean": torch.as_tensor(f.scaler.mean), "scaler_std": torch.as_tensor(f.scaler.std),
        "inputs_scaler": {n: [torch.as_tensor(m), torch.as_tensor(sd)] for n, (m, sd) in f.inputs_scaler.stats.items()},
        "members": [_cpu(m) for m in f.members],
    }, path)


def load(cls: type, path: str | Path, *, device: str = "auto") -> Any:
    """A forecaster of class ``cls`` restored from ``path`` onto ``device``."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise BiocountInputError(f"{path}: not a biocount checkpoint ({type(exc).__name__}: {exc})") from None
    version = str(ckpt.get("biocount", "?"))
    if ckpt.get("format") != FORMAT or version.split(".")[:2] != __version__.split(".")[:2]:
        raise BiocountInputError(f"{path}: written by biocount {version} (format {ckpt.get('format')}); this is "
                                 f"biocount {__version__}, which reads {'.'.join(__version__.split('.')[:2])}.x "
                                 "checkpoints: retrain, or install the matching biocount")
    try:
        f = cls(cls.options_type(**{**ckpt["options"], "device": device}))
        f.horizon, f.lookback, f.signature = ckpt["horizon"], ckpt["lookback"], ckpt["signature"]
        f.step = ckpt["step"]
        f.scaler = SeriesScaler(ckpt["scaler_mean"].numpy(), ckpt["scaler_std"].numpy())
        f.inputs_scaler = InputScaler({n: (m.numpy(), sd.numpy()) for n, (m, sd) in ckpt["inputs_scaler"].items()})
        f.device = f.resolve_device(device)
        f.new_network(NetworkConfig(**ckpt["network"]))
        f.members = [{k: {n: t.to(f.device) for n, t in v.items()} for k, v in m.items()} for m in ckpt["members"]]
        f.load_state(f.members[0])
    except BiocountInputError:
        raise
    except Exception as exc:  # options that do not validate, a missing entry, weights of another shape
        from biocount.host.registry import first_error

        why = first_error(exc) if hasattr(exc, "errors") else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        raise BiocountInputError(f"{path}: a damaged or edited biocount checkpoint ({why}); retrain and save "
                                 "it again") from None
    f.model.to(f.device)
    return f


def _cpu(state: dict[str, Any]) -> dict[str, Any]:
    return {k: {n: t.cpu() for n, t in v.items()} for k, v in state.items()}
