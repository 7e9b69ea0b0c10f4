from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LcmsOptions(BaseModel):
    """Options of the LC-MS encoder."""

    model_config = ConfigDict(extra="forbid")

    sample_type_key: str = Field(default="sample_type", description="obs column marking QC injections.")
    qc_label: str = Field(default="QC", description="Value of sample_type_key for pooled QC injections.")
    batch_key: str = Field(default="batch", description="obs column with the analytical batch.")
    order_key: str = Field(default="injection_order", description="obs column with the injection order.")
    drift: bool = Field(default=True, description="Remove a linear trend in injection order, fitted per batch and "
                                                  "feature on training QC injections.")
    batch_correction: bool = Field(default=True, description="Centre each batch on the median of its training samples.")
