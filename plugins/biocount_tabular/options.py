from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TabularOptions(BaseModel):
    """Options of the generic tabular encoder."""

    model_config = ConfigDict(extra="forbid")

    layer: str | None = Field(default=None, description="Layer holding the values; default X.")
    counts: bool | None = Field(
        default=None,
        description="True: values are counts (log1p, raw counts kept for count likelihoods); False: continuous; "
                    "None: counts if every observed value is a non-negative integer.")
    scale: bool = Field(default=True, description="Centre and scale each feature on training rows.")
