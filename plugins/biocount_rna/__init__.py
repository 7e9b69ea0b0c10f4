"""biocount-rna: placeholder registration until its encoder lands."""

from biocount import EncoderSpec, hookimpl
from biocount.specs import NoOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(name="rna", modality="rna", factory="biocount_rna.encoder:Encoder", options=NoOptions, api="1.0",
                         description="skeleton"))
