"""biocount-genomic: placeholder registration until its encoder lands."""

from biocount import EncoderSpec, hookimpl
from biocount.specs import NoOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(name="genomic", modality="genomic", factory="biocount_genomic.encoder:Encoder", options=NoOptions, api="1.0",
                         description="skeleton"))
