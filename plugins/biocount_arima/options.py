from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ArimaOptions(BaseModel):
    """Options of the arima forecaster."""

    model_config = ConfigDict(extra="forbid")

    order: list[int] | None = Field(
        default=None, min_length=3, max_length=3,
        description="Fixed (p, d, q) for every series; None chooses per series and feature by AICc.")
    max_p: int = Field(default=2, ge=0, le=5, description="Largest AR order tried.")
    max_d: int = Field(default=1, ge=0, le=2, description="Largest differencing order tried.")
    max_q: int = Field(default=1, ge=0, le=5, description="Largest MA order tried.")
    max_P: int = Field(default=1, ge=0, le=1, description="Seasonal AR terms tried (0 or 1) when the run declares a "
                                                         "cycle (--period) on a regular grid.")
    max_Q: int = Field(default=1, ge=0, le=1, description="Seasonal MA terms tried (0 or 1), as max_P.")
    period: float | None = Field(
        default=None, gt=0, allow_inf_nan=False,
        description="Length of the cycle in the data's time units (the run's --period): every order is also tried "
                    "with a seasonal AR(1) and MA(1) term at that lag, where the grid is regular and the period a whole "
                    "number (>= 2) of its steps; None: no seasonal terms.")
    preselect: int | None = Field(
        default=None, ge=1,
        description="Rank the candidate orders by a Hannan–Rissanen AICc (least squares, no likelihood "
                    "optimisation) and fit only this many by maximum likelihood (3: 1.0-3.9x fewer core-seconds, "
                    "test MSE within 0.4 % on 34 of the accuracy suite's 37 cells but up to 3.9 % higher on US "
                    "measles: docs/performance.md 4c); None: fit every candidate. Series with gaps always get the "
                    "full search.")
    approximation: bool | None = Field(
        default=None,
        description="Choose and estimate the orders by conditional sums of squares, batched over every series "
                    "(auto.arima's approximation: 26x fewer core-seconds per series at 100 points, test MSE -9 % to +34 % "
                    "on the accuracy suite; docs/performance.md 4g), forecasting by Box and Jenkins' "
                    "recursions at those estimates; False: exact maximum likelihood for every candidate; None: "
                    "approximate from 1,000 series x target features on. Selections whose "
                    "data have gaps, and runs with seasonal terms (--period), always use the exact search.")
    reselect_growth: float | None = Field(
        default=0.2, ge=0.0,
        description="Re-select the order and re-estimate whenever a series' observed history has grown by this "
                    "fraction since the last selection (0: at every origin, the expensive gold standard; None: "
                    "select once on the training part). In between, origins extend the filtered state.")
    n_jobs: int = Field(default=1, ge=-1, description="Processes over series (loky), never more than series; a "
                                                      "Dask cluster (--dask) replaces them; "
                                                      "-1: all cores.")

    @field_validator("n_jobs")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("0 processes cannot run anything; use 1 (in this process), N, or -1 (all cores)")
        return value
