"""biocount: forecast biological counts over time.

``import biocount as bc`` is light: submodules and heavy dependencies (torch, scanpy) load on
first use. What plugins may import is the short list in ``__all__``; everything else is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import PLUGIN_API, __version__

if TYPE_CHECKING:
    from .contract import ModalityData, ModalityMeta, Units
    from .errors import BiocountError, BiocountInputError, ContractError, PluginError, RegistryError
    from .forecast import Forecast, Forecaster, ForecastTask
    from .hookspecs import hookimpl
    from .parallel import map_series
    from .specs import Capabilities, EncoderSpec, ForecasterSpec, NoOptions

_LAZY = {
    "hookimpl": "hookspecs",
    "EncoderSpec": "specs",
    "ForecasterSpec": "specs",
    "Capabilities": "specs",
    "Forecaster": "forecast",
    "NoOptions": "specs",
    "ModalityData": "contract",
    "Forecast": "forecast",
    "ForecastTask": "forecast",
    "ModalityMeta": "contract",
    "Units": "contract",
    "BiocountError": "errors",
    "BiocountInputError": "errors",
    "ContractError": "errors",
    "PluginError": "errors",
    "RegistryError": "errors",
    "map_series": "parallel",
}
_SUBMODULES = {"datasets", "pp", "tl", "pl", "get", "testing", "pseudobulk", "readers", "align", "encoding"}

__all__ = [
    "run",
    "PLUGIN_API", "BiocountError", "BiocountInputError", "Capabilities", "ContractError", "EncoderSpec", "Forecast",
    "ForecastTask", "Forecaster", "ForecasterSpec",
    "ModalityData", "ModalityMeta", "NoOptions", "PluginError", "RegistryError", "Units", "__version__",
    "hookimpl", "map_series",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "run":
        value = _run
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'biocount' has no attribute {name!r}")
    globals()[name] = value
    return value


def _run(config: Any = None, **options: Any):
    """Run the whole pipeline like ``biocount run``; returns a result with what the CLI writes.

    Parameters
    ----------
    config
        A :class:`biocount.engine.RunConfig`, a dict of options, or a path to a YAML file.
    **options
        Options overriding ``config`` (``modalities=["rna", "protein"]``, ``horizon=3``, ...).

    Returns
    -------
    :class:`biocount.engine.RunResult` with ``comparison``, ``metrics``, ``forecasts``, ``info`` (run.json)
    and ``write(out)`` to save the same folder the CLI writes.
    """
    from pathlib import Path

    from .engine import RunConfig, config_from, run, validated
    from .errors import BiocountInputError

    if isinstance(config, RunConfig):  # validated again with the overrides: nothing skips the checks
        config = validated({**config.model_dump(exclude_unset=True), **options})
    elif isinstance(config, dict):
        config = validated({**config, **options})
    elif config is None or isinstance(config, (str, Path)):
        config = config_from(config, options)
    else:
        raise BiocountInputError(f"bc.run: config must be a RunConfig, a dict of options or a YAML path, not "
                                 f"{type(config).__name__}")
    return run(config)


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])
