"""The causality contract catches each way a component can look ahead (deliberately leaky toy plugins),
and passes the honest twin of each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biocount import Forecast, ModalityData
from biocount.host.contract import cube
from biocount.host.plugins import load_host
from biocount.host.testing import EncoderContract, ForecasterContract
from biocount.study.encoding import train_mask


def _cube(adata, values):
    ids, grid, cv = cube(adata.obs["series"].to_numpy(), adata.obs["time"].to_numpy(), values)
    return ModalityData(series=ids, times=grid, features=adata.var_names.to_numpy(), values=cv,
                        meta={"modality": "toy"})


class StateWithoutUnderscore:
    """Learns its scale from *all* rows and keeps it in ``self.scale`` (no trailing underscore, so the
    fitted-state comparison cannot see it)."""

    def __init__(self, options, honest=False):
        self.honest = honest

    def fit(self, adata, *, train=None):
        X = np.asarray(adata.X, dtype=float)
        self.scale = X[train_mask(adata, train)].std(axis=0) if self.honest else X.std(axis=0)
        return self

    def transform(self, adata):
        return _cube(adata, np.asarray(adata.X, dtype=float) / self.scale)


class _LearnsNothing:
    """An encoder whose fit learns nothing; its transform is where the two toys below leak."""

    def __init__(self, options, honest=False):
        self.honest = honest

    def fit(self, adata, *, train=None):
        self.train_ = train_mask(adata, train)
        return self


class WholeSeriesCentring(_LearnsNothing):
    """Centres each series on its mean over the whole series inside ``transform``."""

    def transform(self, adata):
        X = pd.DataFrame(np.asarray(adata.X, dtype=float))
        key = adata.obs["series"].to_numpy()
        if self.honest:  # centre on the mean of what was seen so far in the series (expanding)
            order = np.argsort(adata.obs["time"].to_numpy(), kind="stable")
            centre = X.iloc[order].groupby(key[order]).transform(lambda c: c.expanding().mean()).sort_index()
        else:
            centre = X.groupby(key).transform("mean")
        return _cube(adata, (X - centre).to_numpy())


class CentredFilter(_LearnsNothing):
    """Smooths each series with a centred moving average (it reads the next row)."""

    def transform(self, adata):
        X = pd.DataFrame(np.asarray(adata.X, dtype=float))
        order = np.argsort(adata.obs["time"].to_numpy(), kind="stable")
        key = adata.obs["series"].to_numpy()[order]
        smooth = X.iloc[order].groupby(key).transform(
            lambda c: c.rolling(3, min_periods=1, center=not self.honest).mean()).sort_index()
        return _cube(adata, smooth.to_numpy())


class DecidesWithAllOrigins:
    """Persistence, nudged by the spread of each whole series (like a fallback decided after the loop)."""

    def __init__(self, options, honest=False):
        self.options, self.honest = options, honest

    def fit(self, task):
        return self

    def predict(self, task, origins):
        data = task.data
        last = data.last_target(origins)
        if self.honest:
            spread = np.array([np.nanstd(data.y[s, : t + 1], axis=0) for s, t in origins])
        else:
            spread = np.nanstd(data.y[origins[:, 0]], axis=1)
        return Forecast(mean=np.repeat((last + 0.1 * spread)[:, None, :], task.horizon, axis=1))

    def report(self):
        return {}


LEAKY = {"state": StateWithoutUnderscore, "centring": WholeSeriesCentring, "filter": CentredFilter}


def _encoder_contract(cls, honest):
    class Contract(EncoderContract):
        modality = "toy"

        def build(self, host, **options):
            return cls(options, honest=honest)

    return Contract()


@pytest.mark.parametrize("kind", sorted(LEAKY))
def test_truncation_contract_catches_a_leaky_encoder(kind):
    host = load_host(entry_points=[])
    with pytest.raises(AssertionError, match="changed when later rows were deleted"):
        _encoder_contract(LEAKY[kind], honest=False).test_truncation(host)
    _encoder_contract(LEAKY[kind], honest=True).test_truncation(host)  # the honest twin passes


def test_the_old_fitted_state_check_alone_misses_state_without_an_underscore():
    host = load_host(entry_points=[])
    _encoder_contract(StateWithoutUnderscore, honest=False).test_fit_learns_from_training_rows_only(host)


def _forecaster_contract(honest):
    class Contract(ForecasterContract):
        name = "toy"

        def build(self, host):
            return DecidesWithAllOrigins(None, honest=honest)

    return Contract()


@pytest.mark.parametrize("honest", [False, True])
def test_truncation_contract_catches_a_forecaster_deciding_with_later_data(honest):
    host = load_host(entry_points=[])
    if honest:
        _forecaster_contract(honest).test_truncation(host)
    else:
        with pytest.raises(AssertionError, match="used later data"):
            _forecaster_contract(honest).test_truncation(host)


def test_arima_divergence_decision_uses_data_up_to_each_origin_only():
    """The regression behind this contract: ARIMA decided 'diverged -> persistence' once per series from
    the forecasts at all origins; truncating after t must leave earlier forecasts bit-identical."""
    from biocount.forecast import ForecastTask
    from biocount.study.align import align
    from biocount_arima.forecaster import ArimaForecaster

    rng = np.random.default_rng(7)
    T = 60
    y = np.cumsum(rng.normal(0, 1, T))
    y[45:] += np.linspace(0, 400, T - 45)  # a late explosion: forecasts there leave 3 training ranges
    origins = np.array([[0, t] for t in range(30, 58)])

    def forecast(until):
        d = ModalityData(series=["a"], times=np.arange(until, dtype=float), features=["f"],
                         values=y[None, :until, None], meta={"modality": "x"})
        data = align({"x": d}, target="x")
        task = ForecastTask(data=data, horizon=2, train_end=np.array([29]))
        keep = origins[origins[:, 1] < until]
        return ArimaForecaster().fit(task).predict(task, keep).mean

    full, cut = forecast(T), forecast(44)
    np.testing.assert_array_equal(cut, full[: cut.shape[0]])
