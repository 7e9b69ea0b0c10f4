"""docs/architecture.md's "to add a forecaster" row, checked: a toy ETS forecaster with options of its own,
written against the public API only, registered by a hook, runs end to end beside the built-ins, is
scored on identical origins, validates its options with one-line errors and passes the author kit's
contract (truncation included), without touching a core file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict, Field

from biocount import BiocountInputError, Forecast, ForecasterSpec, ForecastTask, hookimpl
from biocount.host.testing import ForecasterContract, registered


class EtsOptions(BaseModel):
    """Simple exponential smoothing: the level moves ``alpha`` of the way to each new observation."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(default=0.5, gt=0.0, le=1.0, description="Smoothing weight of the newest observation.")


class Ets:
    """A local model: the smoothed level of the target's history up to the origin, flat over the horizon."""

    def __init__(self, options: EtsOptions) -> None:
        self.options = options

    def fit(self, task: ForecastTask) -> Ets:
        return self  # nothing to learn: alpha is an option

    def predict(self, task: ForecastTask, origins: np.ndarray) -> Forecast:
        y, a = task.data.y, self.options.alpha
        out = np.full((origins.shape[0], task.horizon, y.shape[2]), np.nan)
        for i, (s, t) in enumerate(origins):
            level = np.full(y.shape[2], np.nan)
            for value in y[s, : t + 1]:  # up to the origin, never after it
                seen = ~np.isnan(value)
                level = np.where(seen & np.isnan(level), value, level)
                level = np.where(seen, a * value + (1 - a) * level, level)
            out[i] = level
        return Forecast(mean=out)

    def report(self) -> dict:
        return {"alpha": self.options.alpha}


def build(options: EtsOptions) -> Ets:
    return Ets(options)


class EtsPlugin:
    @hookimpl
    def biocount_register_forecasters(self, register):
        register(ForecasterSpec(name="ets", factory="tests.test_toy_plugin:build", options=EtsOptions, api="1.4",
                                description="simple exponential smoothing (a test's toy)"))


@pytest.fixture
def host():
    from biocount.host.plugins import load_host

    host = load_host()
    with registered(host, EtsPlugin(), name="toy-ets"):
        yield host


class TestEtsContract(ForecasterContract):
    name = "ets"
    options = {"alpha": 0.3}

    @pytest.fixture
    def host(self):
        from biocount.host.plugins import load_host

        host = load_host()
        with registered(host, EtsPlugin(), name="toy-ets"):
            yield host


def _config(**extra):
    from biocount.config import validated

    return validated({"modalities": ["protein"], "models": ["ets", "naive"], "horizon": 2, "quiet": True,
                      "options": {"ets": {"alpha": 0.3}}} | extra)


def test_a_toy_forecaster_runs_end_to_end_without_touching_core(host):
    from biocount.engine import run

    result = run(_config(), host=host)
    metrics = result.metrics
    assert {"ets", "naive", "ensemble:stack"} <= set(metrics["forecaster"])
    assert result.info["plugins"]["forecasters"]["ets"]["options"] == {"alpha": 0.3}
    assert result.info["forecasters"]["ets"]["alpha"] == 0.3  # its own report, in run.json
    # identical origins and points: the same rows and the same scored count as the built-in
    overall = metrics[metrics.scope == "overall"].set_index("forecaster")
    assert overall.loc["ets", "n"] == overall.loc["naive", "n"] > 0
    assert np.isfinite(overall.loc["ets", "dm_naive_p"])
    # alpha = 1 is persistence: the toy and naive agree exactly there (an independent check of the plumbing)
    same = run(_config(options={"ets": {"alpha": 1.0}}), host=host).forecasts
    assert np.allclose(same["ets"], same["naive"], equal_nan=True)
    assert isinstance(result.forecasts, pd.DataFrame) and "ets_lower_80" in result.forecasts


def test_the_toy_s_options_are_validated_in_one_line(host):
    from biocount.engine import run

    with pytest.raises(BiocountInputError) as err:
        run(_config(options={"ets": {"alpha": 1.5}}), host=host)
    message = str(err.value)
    assert "ets" in message and "alpha" in message and "\n" not in message
    with pytest.raises(BiocountInputError, match="ets"):
        run(_config(options={"ets": {"beta": 0.1}}), host=host)
