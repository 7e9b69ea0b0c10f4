from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class NbarOptions(BaseModel):
    """Options of the nbar forecaster."""

    model_config = ConfigDict(extra="forbid")

    max_lags: int = Field(default=3, ge=1, le=12,
                          description="Most observed values the regression reads (log1p of counts per size factor); "
                                      "the number, 1 to max_lags, is chosen by AIC on the training part.")
    min_rows: int = Field(default=20, ge=5,
                          description="Training rows a feature x horizon model needs; fewer: persistence there, with "
                                      "a note.")
