from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GenomicOptions(BaseModel):
    """Options of the genomic encoder."""

    model_config = ConfigDict(extra="forbid")

    layer: str | None = Field(default=None, description="Layer holding the values; default X.")
    standardize: bool = Field(default=True, description="Centre and scale each feature on training series.")
    n_pcs: int | None = Field(default=None, gt=0,
                              description="Static features only: replace them by PCs fitted on training series.")
