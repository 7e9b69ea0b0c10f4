"""One source of truth for run options: every RunConfig field is a `biocount run` option with the same
name, default and help, and every option of `biocount run` is a RunConfig field (or a named shorthand)."""

from __future__ import annotations

import click
import pytest

from biocount.cli import _MODEL_OPTIONS, _default_text, cli
from biocount.config import RunConfig, config_from
from biocount.forecasters.lstm.options import LSTMOptions

# Fields with no option of their own, and why
NO_OPTION = {"options": "per-component options nest ({lstm: {hidden: 64}}): YAML --config or bc.run",
             "model_options": "spelled by the shorthands --lookback, --device, --cell, --preset"}
NOT_FIELDS = {"config_file": "the YAML file itself", "holdout": "deprecated spelling of --test-series",
              "help": "click's"}


@pytest.fixture(scope="module")
def run_params() -> dict[str, click.Option]:
    return {p.name: p for p in cli.commands["run"].params}


def test_every_field_has_an_option_and_every_option_a_field(run_params):
    fields = set(RunConfig.model_fields) - set(NO_OPTION)
    shorthands = {name for _, name, _ in _MODEL_OPTIONS}
    assert fields - set(run_params) == set(), "RunConfig fields without a biocount run option"
    assert set(run_params) - fields - shorthands - set(NOT_FIELDS) == set(), "options that are not RunConfig fields"
    assert shorthands <= set(LSTMOptions.model_fields) and set(NO_OPTION) <= set(RunConfig.model_fields)


def test_option_help_and_defaults_come_from_the_config(run_params):
    for name, info in RunConfig.model_fields.items():
        if name in NO_OPTION:
            continue
        option = run_params[name]
        assert info.description and option.help.startswith(info.description), name
        if not option.is_flag:
            default = info.get_default(call_default_factory=True)
            assert option.help.endswith(_default_text(default)), name
        assert option.default in (None, ()), f"--{name}: the CLI must leave defaults to RunConfig"
    for _flag, name, _kind in _MODEL_OPTIONS:
        assert run_params[name].help.startswith(LSTMOptions.model_fields[name].description)


def test_no_flags_is_the_config_default():
    assert config_from(None, {}) == RunConfig()


def test_bc_run_validates_overrides_of_a_config():
    import biocount as bc
    from biocount.errors import BiocountInputError

    with pytest.raises(BiocountInputError, match="horizon"):
        bc.run(RunConfig(), horizon=0)


# bc.tl.forecast's keyword -> the RunConfig field it sets (scanpy's names where scanpy has one)
TL_FIELDS = {"target": "target", "horizon": "horizon", "lookback": "lookback", "random_state": "seed",
             "time_key": "time_key", "series_key": "series_key", "split": "split", "test_size": "test_size",
             "val_size": "val_size", "levels": "levels", "options": "options", "n_jobs": "jobs", "link": "link",
             "period": "period", "time_scale": "time_scale"}


def test_bc_tl_forecast_defaults_are_biocount_run_s(monkeypatch):
    """Every default of bc.tl.forecast is None (meaning: as biocount run) or RunConfig's own default, and a call
    with the defaults runs exactly RunConfig's defaults."""
    import inspect

    import biocount as bc
    from biocount import engine

    params = inspect.signature(bc.tl.forecast).parameters
    for keyword, field in TL_FIELDS.items():
        default = params[keyword].default
        if field == "lookback":
            assert default is None  # the LSTM's option: None is its own default (it adapts to short series)
            continue
        assert default is None or default == RunConfig.model_fields[field].get_default(call_default_factory=True), keyword
    seen = {}

    class Stop(Exception):
        pass

    def capture(config, **kwargs):
        seen["config"] = config
        raise Stop

    monkeypatch.setattr(engine, "run", capture)
    with pytest.raises(Stop):
        bc.tl.forecast(bc.datasets.demo(seed=0)["protein"], method="naive", modalities=["protein"])
    config, defaults = seen["config"], RunConfig()
    for field in set(TL_FIELDS.values()) - {"lookback"}:
        assert getattr(config, field) == getattr(defaults, field), field


def test_target_and_modalities_are_parsed_once_into_typed_choices():
    from biocount import BiocountInputError
    from biocount.config import ModalityChoice, TargetChoice

    cfg = RunConfig(modalities="rna,cases=tabular", target="cases:flu,cases:rsv")
    assert cfg.choices == [ModalityChoice("rna"), ModalityChoice("cases", "tabular")]
    assert cfg.target_choice == TargetChoice("cases", ("flu", "rsv"))
    assert RunConfig(modalities="rna,protein").target_choice == TargetChoice("protein")  # the default target
    assert RunConfig(modalities="cases=tabular,rna").target_choice == TargetChoice("cases")  # else the first
    with pytest.raises(BiocountInputError, match="one modality"):
        TargetChoice.parse("cases:flu,rna:GAPDH")
