"""The components that live in core register through the same hooks that plugins use."""

from __future__ import annotations

from biocount._version import PLUGIN_API
from biocount.forecasters.climatology_options import ClimatologyOptions
from biocount.forecasters.lstm.options import LSTMOptions
from biocount.host.hookspecs import hookimpl
from biocount.host.specs import Capabilities, ForecasterSpec, NoOptions


@hookimpl
def biocount_register_forecasters(register):
    register(ForecasterSpec(name="naive", factory="biocount.forecasters.naive:build", options=NoOptions,
                            api=PLUGIN_API, description="persistence: the last observed value"))
    register(ForecasterSpec(name="climatology", factory="biocount.forecasters.climatology:build",
                            options=ClimatologyOptions, api=PLUGIN_API,
                            description="the same phase of earlier cycles (or the mean so far): the hubs' baseline"))
    register(ForecasterSpec(name="lstm", factory="biocount.forecasters.lstm.forecaster:build", options=LSTMOptions,
                            api=PLUGIN_API, description="the shared multi-input LSTM (cuDNN on CUDA, CPU otherwise)",
                            capabilities=Capabilities(global_model=True, uses_inputs=True, distributed=True,
                                                      subsets=True, explainable=True, checkpointable=True)))
