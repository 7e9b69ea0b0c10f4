"""biocount-nbar: a count baseline, the negative-binomial autoregression (statsmodels), pooled over series."""

from biocount import Capabilities, ForecasterSpec, hookimpl

from .options import NbarOptions


@hookimpl
def biocount_register_forecasters(register):
    register(ForecasterSpec(
        name="nbar",
        factory="biocount_nbar.forecaster:NbarForecaster",
        options=NbarOptions,
        api="1.6",
        description="negative-binomial autoregression on the target's raw counts, one model per feature and "
                    "horizon pooled over series (statsmodels)",
        capabilities=Capabilities(global_model=True, native_intervals=True),
    ))
