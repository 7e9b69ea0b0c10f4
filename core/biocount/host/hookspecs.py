"""The hooks a biocount plugin can implement: the plugin author's reference page.

A plugin is a module (or an object) named by an entry point in the ``biocount`` group::

    [project.entry-points.biocount]
    metabolomics = "biocount_metabolomics"

Its hook implementations are plain functions decorated with :data:`hookimpl` whose names
start with ``biocount_``. Keep the plugin module light: it runs when ``biocount plugins list``
runs. Heavy code (torch, scanpy, your model) belongs in the module that a spec's ``factory``
names, which is imported only when a run uses the component.

Example::

    from biocount import EncoderSpec, hookimpl

    @hookimpl
    def biocount_register_encoders(register):
        register(EncoderSpec(
            name="lcms",
            modality="metabolomics",
            factory="biocount_metabolomics.encoder:LcmsEncoder",
            options=LcmsOptions,
            api="1.0",
        ))

An implementation may accept fewer arguments than its specification (pluggy passes only the
ones it names), which is how new hook arguments are added without breaking old plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from biocount.host.specs import EncoderSpec, ForecasterSpec

PROJECT = "biocount"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate your hook implementations with this.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def biocount_register_encoders(register: Callable[[EncoderSpec], None]) -> None:
    """Register modality encoders: call ``register(EncoderSpec(...))`` once per encoder.

    An encoder turns one modality's data (an AnnData) into the data contract,
    :class:`biocount.ModalityData`. See docs/plugins.md, "Writing an encoder".
    """


@hookspec
def biocount_register_forecasters(register: Callable[[ForecasterSpec], None]) -> None:
    """Register forecasters: call ``register(ForecasterSpec(...))`` once per forecaster.

    A forecaster is fitted on aligned training windows and predicts every horizon for all
    target features at rolling origins. See docs/plugins.md, "Writing a forecaster".
    """


@hookspec(firstresult=True)
def biocount_read_input(path: Path, options: dict[str, Any]) -> Any | None:
    """Read a file format that biocount does not know; return None if it is not yours.

    Return an ``AnnData`` (one modality) or a ``MuData`` / ``dict[str, AnnData]`` (several),
    with series and time columns in ``obs``. The first implementation that returns something
    wins; biocount's own readers (h5mu, h5ad, CSV/TSV) are tried only after all plugins
    declined. ``options`` holds the reader options (``time_key``, ``series_key``, ...).
    """
