"""biocount: forecast biological counts over time.

``import biocount as bc`` is light: submodules and heavy dependencies (torch, scanpy) load on
first use. What plugins may import is the short list in ``__all__``; everything else is private.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from biocount._version import PLUGIN_API, __version__

if TYPE_CHECKING:
    from biocount.errors import BiocountError, BiocountInputError, ContractError, PluginError, RegistryError
    from biocount.forecast import Counts, Forecast, Forecaster, ForecastTask
    from biocount.host.contract import ModalityData, ModalityMeta, Units
    from biocount.host.hookspecs import hookimpl
    from biocount.host.specs import Capabilities, EncoderSpec, ForecasterSpec, NoOptions
    from biocount.parallel import map_series

_LAZY = {
    "hookimpl": "host.hookspecs",
    "EncoderSpec": "host.specs",
    "ForecasterSpec": "host.specs",
    "Capabilities": "host.specs",
    "NoOptions": "host.specs",
    "ModalityData": "host.contract",
    "ModalityMeta": "host.contract",
    "Units": "host.contract",
    "Forecaster": "forecast",
    "Forecast": "forecast",
    "Counts": "forecast",
    "ForecastTask": "forecast",
    "BiocountError": "errors",
    "BiocountInputError": "errors",
    "ContractError": "errors",
    "PluginError": "errors",
    "RegistryError": "errors",
    "map_series": "parallel",
}
#: Public module paths (what plugins and notebooks import: docs/plugins.md) -> where the module lives. Each
#: is that very module (``biocount.contract is biocount.host.contract``), imported on first use.
PUBLIC_PATHS = {
    "contract": "host.contract", "specs": "host.specs", "hookspecs": "host.hookspecs", "testing": "host.testing",
    "readers": "io.readers", "datasets": "io.datasets", "encoding": "study.encoding",
    "pseudobulk": "study.pseudobulk", "align": "study.align", "scores": "evaluation.scores",
    "pp": "api.pp", "tl": "api.tl", "pl": "api.pl", "get": "api.get",
}


class _PublicPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import biocount.contract`` finds :mod:`biocount.host.contract` itself (not a copy), lazily."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        short = fullname.removeprefix(f"{__name__}.")
        if short == fullname or short not in PUBLIC_PATHS:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:  # the import system returns what sys.modules then holds
        sys.modules[module.__name__] = importlib.import_module(f".{PUBLIC_PATHS[module.__name__.split('.', 1)[1]]}",
                                                               __name__)


sys.meta_path.append(_PublicPaths())

__all__ = [
    "run",
    "PLUGIN_API", "BiocountError", "BiocountInputError", "Capabilities", "ContractError", "Counts", "EncoderSpec", "Forecast",
    "ForecastTask", "Forecaster", "ForecasterSpec",
    "ModalityData", "ModalityMeta", "NoOptions", "PluginError", "RegistryError", "Units", "__version__",
    "hookimpl", "map_series",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "run":
        value = _run
    elif name in PUBLIC_PATHS:
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

    from biocount.engine import RunConfig, config_from, run, validated
    from biocount.errors import BiocountInputError

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
    return sorted([*__all__, *PUBLIC_PATHS])
