"""What a plugin registers: specs of encoders and forecasters (pydantic models).

A spec names a component, says where its code lives (a lazy ``"package.module:callable"``
factory, imported only when a run uses it), which options it takes (a pydantic model, so
registry files and command lines are validated before any heavy code runs) and which plugin
API version it was written for.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = r"^[a-z][a-z0-9_\-]*$"
_FACTORY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class NoOptions(BaseModel):
    """The options model of a component that takes no options."""

    model_config = ConfigDict(extra="forbid")


class _ComponentSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str = Field(pattern=_NAME, description="Component name users type, e.g. 'rna' or 'arima'.")
    factory: str = Field(description="'package.module:callable' building the component from its options.")
    options: type[BaseModel] = Field(default=NoOptions, description="Pydantic model of the component's options.")
    api: str = Field(pattern=r"^\d+\.\d+$", description="Plugin API version targeted, e.g. '1.0'.")
    description: str = Field(default="", description="One line shown by `biocount plugins list`.")

    @field_validator("factory")
    @classmethod
    def _factory_form(cls, value: str) -> str:
        if not _FACTORY.match(value):
            raise ValueError(f"factory {value!r} is not of the form 'package.module:callable'")
        return value

    @property
    def api_major(self) -> int:
        return int(self.api.split(".")[0])

    def load_factory(self) -> Any:
        """Import the factory (this runs the component's heavy imports)."""
        import importlib

        module_name, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class EncoderSpec(_ComponentSpec):
    """A modality encoder.

    ``modality`` is the name users type in ``--modalities`` that this encoder serves by default
    (``None`` for a generic encoder that serves only the modalities registry.yaml maps to it).
    The factory is called as ``factory(options)`` and returns an object with
    ``fit(adata, *, train_times=None, train_series=None)`` and ``transform(adata) -> ModalityData``.
    """

    kind: ClassVar[str] = "encoder"
    modality: str | None = Field(default=None, pattern=_NAME)


class Capabilities(BaseModel):
    """What a forecaster declares about itself on its :class:`~biocount.ForecasterSpec`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    global_model: bool = Field(default=False, description="Learns shared weights from every training series (a "
                                                         "local model fits each series on its own history).")
    uses_inputs: bool = Field(default=False, description="Reads modalities other than the target's own history "
                                                        "(modality ablations apply to it).")
    native_intervals: bool = Field(default=False, description="Returns its own quantiles in Forecast.quantiles.")
    distributed: bool = Field(default=False, description="Under torchrun, every rank fits it together (torch "
                                                        "DistributedDataParallel, biocount.ddp); others fit on rank 0.")
    local_fits: bool = Field(default=False, description="Fits one model per series and target feature: its cost "
                                                       "grows with their product (the run says so when it is large).")
    subsets: bool = Field(default=False, description="One fit forecasts from any subset of its input modalities: "
                                                    "predict(task, origins, without=(modality, ...)) switches inputs "
                                                    "off; the headline weighs those views as candidates.")
    explainable: bool = Field(default=False, description="Has attribute(task, origins, targets=, steps=): integrated "
                                                        "gradients per input feature and lookback step (run.json "
                                                        "attributions).")
    checkpointable: bool = Field(default=False, description="Has save(path): the run writes NAME.pt beside its "
                                                           "results.")


class ForecasterSpec(_ComponentSpec):
    """A forecaster, e.g. ``arima``.

    The factory is called as ``factory(options)`` and returns an object with ``fit`` and
    ``predict`` (see docs/plugins.md, "Writing a forecaster").
    """

    kind: ClassVar[str] = "forecaster"
    capabilities: Capabilities = Field(default_factory=Capabilities,
                                       description="What the forecaster declares about itself (see Capabilities).")
