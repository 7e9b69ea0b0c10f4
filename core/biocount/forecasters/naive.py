"""The ``naive`` forecaster: persistence, the floor every model must clear.

Every horizon gets the target's last observed value at or before the origin.
"""

from __future__ import annotations

import numpy as np

from biocount.forecast import Forecast, ForecastTask
from biocount.host.specs import NoOptions


class NaiveForecaster:
    def __init__(self, options: NoOptions | None = None) -> None:
        self.options = options

    def fit(self, task: ForecastTask) -> NaiveForecaster:
        return self

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        data = task.data
        last = data.last_target(origins)
        return Forecast(mean=np.repeat(last[:, None, :].astype(np.float64), task.horizon, axis=1))

    def report(self) -> dict:
        return {}


def build(options: NoOptions) -> NaiveForecaster:
    return NaiveForecaster(options)
