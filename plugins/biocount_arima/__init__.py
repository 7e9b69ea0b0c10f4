"""biocount-arima: the ARIMA baseline (statsmodels), one model per series and target feature."""

from biocount import Capabilities, ForecasterSpec, hookimpl

from .options import ArimaOptions


@hookimpl
def biocount_register_forecasters(register):
    register(ForecasterSpec(
        name="arima",
        factory="biocount_arima.forecaster:ArimaForecaster",
        options=ArimaOptions,
        api="1.1",
        description="statsmodels ARIMA per series and feature; orders re-selected as each series grows",
        capabilities=Capabilities(native_intervals=True, local_fits=True),
    ))
