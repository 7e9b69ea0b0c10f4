"""biocount-protein: placeholder registration until its encoder lands."""

from biocount import EncoderSpec, hookimpl
from biocount.specs import NoOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(name="protein", modality="protein", factory="biocount_protein.encoder:Encoder", options=NoOptions, api="1.0",
                         description="skeleton"))
