"""The built-in components a default run uses, named in one place.

Core never imports a plugin; it refers to the built-in ones by name only here, as defaults a user
overrides (``--modalities``, ``--target``, ``--models``, ``--baselines``, ``bc.tl``'s ``method``).
tests/test_boundaries.py forbids these names as string literals anywhere else in core, apart from
registering core's own components (``_builtins.py``) and naming the example data's modalities.
"""

from __future__ import annotations

MODALITIES = ("rna", "protein")  # biocount run on the demo study
TARGET = "protein"  # forecast when the run has it, else the first modality
MODELS = ("lstm", "arima", "naive", "climatology")
BASELINES = ("arima", "naive", "climatology")  # every other forecaster is DM-tested against these
ANNDATA_MODALITY = "rna"  # the modality a lone AnnData is, in bc.tl and bc.pp, unless told
METHOD = "lstm"  # bc.tl.forecast's forecaster
REFERENCE = "arima"  # bc.tl.compare's reference when it was fitted
