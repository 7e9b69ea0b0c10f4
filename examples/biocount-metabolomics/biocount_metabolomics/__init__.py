"""biocount-metabolomics: an example third-party plugin, written against biocount's public API only."""

from biocount import EncoderSpec, hookimpl

from .options import LcmsOptions


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="lcms",
        modality="metabolite",
        factory="biocount_metabolomics.encoder:LcmsEncoder",
        options=LcmsOptions,
        api="1.0",
        description="LC-MS intensities: log2, QC drift and batch median correction",
    ))
