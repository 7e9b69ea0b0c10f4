"""biocount-rna: transcriptomic counts (AnnData, single cells or bulk) -> the data contract."""

from biocount import EncoderSpec, hookimpl

from .options import RnaOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="rna",
        modality="rna",
        factory="biocount_rna.encoder:RnaEncoder",
        options=RnaOptions,
        api="1.0",
        description="UMI counts: pseudobulk, size factors, log1p, HVG/PCA fitted on training rows",
    ))
