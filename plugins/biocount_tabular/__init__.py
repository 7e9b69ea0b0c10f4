"""biocount-tabular: a generic encoder for any numeric series x time table.

A lab's modality with no dedicated plugin still runs: map it to this encoder in registry.yaml
(``modalities: {metabolite: tabular}``).
"""

from biocount import EncoderSpec, hookimpl

from .options import TabularOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="tabular",
        modality=None,
        factory="biocount_tabular.encoder:TabularEncoder",
        options=TabularOptions,
        api="1.0",
        description="any numeric series x time table (counts: log1p then scaling; continuous: scaling)",
    ))
