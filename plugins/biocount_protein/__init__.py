"""biocount-protein: CITE-seq ADT counts or mass-spectrometry intensities -> the data contract."""

from biocount import EncoderSpec, hookimpl

from .options import ProteinOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="protein",
        modality="protein",
        factory="biocount_protein.encoder:ProteinEncoder",
        options=ProteinOptions,
        api="1.0",
        description="ADT counts (CLR) or mass-spec intensities (log2, median centring); NaN kept",
    ))
