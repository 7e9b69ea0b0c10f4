"""biocount.host.testing: the author kit, run against the built-in components."""

from __future__ import annotations

import warnings

import numpy as np
import pluggy
import pytest

from biocount import EncoderSpec, ForecasterSpec, hookimpl
from biocount.host.plugins import load_host
from biocount.host.testing import EncoderContract, ForecasterContract, registered, synthetic_table


class TestRnaContract(EncoderContract):
    modality = "rna"
    options = {"n_top_genes": 3}

    def example(self, seed=0):
        return synthetic_table(counts=True, seed=seed)


class TestProteinContract(EncoderContract):
    modality = "protein"


class TestGenomicContract(EncoderContract):
    """Time-varying genomic tables (e.g. variant allele frequencies); static ones have no time to cut."""

    modality = "genomic"


class TestTabularContract(EncoderContract):
    modality = "tabular"

    def build(self, host, **options):
        return host.component("encoder", "tabular").build(**options)

    def test_options_round_trip(self, host):
        spec = host.component("encoder", "tabular").spec
        assert spec.options.model_validate(spec.options().model_dump()) == spec.options()


class TestNaiveContract(ForecasterContract):
    name = "naive"


class TestClimatologyContract(ForecasterContract):
    name = "climatology"
    options = {"period": 6, "min_values": 2}  # the contract's sine has a period near 19 days; any cycle will do


class TestArimaContract(ForecasterContract):
    name = "arima"
    options = {"order": [1, 0, 0]}


class TestLstmContract(ForecasterContract):
    name = "lstm"
    options = {"epochs": 5, "hidden": 4, "adapter_dim": 4, "quiet": True}


class Widget:
    def __init__(self, options):
        self.options = options


class WidgetPlugin:
    @hookimpl
    def biocount_register_encoders(self, register):
        register(EncoderSpec(name="widget", modality="widgets", factory="tests.test_testing_kit:Widget", api="1.0"))


def test_host_fixture_has_discovery_off(biocount_host):
    assert [r.target for r in biocount_host.records] == ["biocount.core"]
    assert {c.spec.name for c in biocount_host.components("forecaster")} == {"lstm", "naive", "climatology"}


def test_registered_adds_a_plugin_for_the_block_only(biocount_host):
    with registered(biocount_host, WidgetPlugin(), name="widgets") as record:
        assert record.status == "loaded"
        assert biocount_host.encoder("widgets").spec.name == "widget"
    with pytest.raises(Exception, match="no encoder for modality 'widgets'"):
        biocount_host.encoder("widgets")


def test_a_broken_registered_plugin_fails_loudly(biocount_host):
    class Bad:
        @hookimpl
        def biocount_register_forecasters(self, register):
            register(ForecasterSpec(name="bad", factory="nowhere:X", api="1.0"))

    with pytest.raises(AssertionError, match="did not load: broken: .*factory 'nowhere:X' .* does not resolve"):
        with registered(biocount_host, Bad(), name="bad"):
            pass


def test_deprecated_hook_arguments_warn_and_name_the_plugin():
    """The deprecation path for hook arguments: pluggy's warn_on_impl_args, surfaced per plugin."""
    host = load_host(entry_points=[])
    spec = pluggy.HookspecMarker("biocount")

    class Future:
        @spec(warn_on_impl_args={"legacy": DeprecationWarning("'legacy' is deprecated; drop it from your hook")})
        def biocount_register_gadgets(self, register, legacy):
            """A hook whose 'legacy' argument is on its way out."""

    host.pm.add_hookspecs(Future)

    class Old:
        @hookimpl
        def biocount_register_gadgets(self, register, legacy):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes: it is recorded on the plugin
        record = host.add_plugin(Old(), name="old")
    assert record.warnings == ["'legacy' is deprecated; drop it from your hook"]


def test_synthetic_table_shapes():
    a = synthetic_table(n_series=2, n_times=5, n_features=3, counts=True)
    assert a.shape == (10, 3) and np.all(a.X == np.round(a.X))
