"""Options of the climatology forecaster: light (pydantic only), so the host registers it without numpy."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ClimatologyOptions(BaseModel):
    """Options of the climatology forecaster."""

    model_config = ConfigDict(extra="forbid")

    period: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                 description="Length of the cycle in the data's time units (52 for weekly data "
                                             "with a yearly cycle, 24 for hourly circadian data); None: no cycle, "
                                             "the mean of everything observed so far.")
    min_values: int = Field(default=3, ge=1, description="Same-phase observations needed before the cycle is "
                                                         "used; fewer: all observations so far.")
