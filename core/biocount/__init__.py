"""biocount: forecast biological counts over time.

``import biocount as bc`` is light: submodules and heavy dependencies (torch, scanpy) load on
first use. What plugins may import is the short list in ``__all__``; everything else is private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import PLUGIN_API, __version__

if TYPE_CHECKING:
    from .contract import ModalityData, ModalityMeta
    from .errors import BiocountError, BiocountInputError, ContractError, PluginError, RegistryError
    from .forecast import Forecast, ForecastTask
    from .hookspecs import hookimpl
    from .specs import EncoderSpec, ForecasterSpec, NoOptions

_LAZY = {
    "hookimpl": "hookspecs",
    "EncoderSpec": "specs",
    "ForecasterSpec": "specs",
    "NoOptions": "specs",
    "ModalityData": "contract",
    "Forecast": "forecast",
    "ForecastTask": "forecast",
    "ModalityMeta": "contract",
    "BiocountError": "errors",
    "BiocountInputError": "errors",
    "ContractError": "errors",
    "PluginError": "errors",
    "RegistryError": "errors",
}
_SUBMODULES = {"datasets", "pp", "tl", "pl", "get", "testing", "pseudobulk", "readers", "align", "encoding"}

__all__ = [
    "PLUGIN_API", "BiocountError", "BiocountInputError", "ContractError", "EncoderSpec", "Forecast", "ForecastTask",
    "ForecasterSpec",
    "ModalityData", "ModalityMeta", "NoOptions", "PluginError", "RegistryError", "__version__", "hookimpl",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'biocount' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])
