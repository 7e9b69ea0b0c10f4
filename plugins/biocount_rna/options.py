from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RnaOptions(BaseModel):
    """Options of the rna encoder."""

    model_config = ConfigDict(extra="forbid")

    layer: str | None = Field(default=None, description="Layer holding raw counts; default X.")
    n_top_genes: int | None = Field(
        default=2000, gt=0,
        description="Keep the genes with the highest variance of log-normalised expression on training rows; "
                    "None keeps all.")
    n_pcs: int | None = Field(
        default=None, gt=0,
        description="Replace genes by this many principal components fitted on training rows (drops raw counts).")
    cell_type_key: str | None = Field(
        default="auto",
        description="obs column with cell types: also emit cells per type as a count modality "
                    "'<modality>_celltypes'. 'auto' looks for cell_type/celltype; None disables.")
