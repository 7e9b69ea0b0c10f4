"""biocount-genomic: copy number, genotype dosage, mutations (static) or VAFs over time."""

from biocount import EncoderSpec, hookimpl

from .options import GenomicOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="genomic",
        modality="genomic",
        factory="biocount_genomic.encoder:GenomicEncoder",
        options=GenomicOptions,
        api="1.0",
        description="static per-series covariates (standardised, optional PCA) or time-varying VAFs",
    ))
