from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ProteinOptions(BaseModel):
    """Options of the protein encoder."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["auto", "adt", "ms"] = Field(
        default="auto",
        description="adt: CITE-seq antibody counts (centred log-ratio); ms: mass-spec intensities (log2, "
                    "per-sample median centring); auto: adt if the values are non-negative integers.")
    layer: str | None = Field(default=None, description="Layer holding the values; default X.")
    centre: bool = Field(
        default=True,
        description="ms only: per-sample median centring (removes loading differences between samples; needs "
                    "many proteins per sample to be stable).")
    log2: Literal["auto", "yes", "no"] = Field(
        default="auto",
        description="ms only: take log2 of the intensities; auto: yes when the largest value exceeds 100 "
                    "(raw intensities), no when they already look log-scaled.")
