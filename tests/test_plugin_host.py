"""The plugin host with real entry points: discovery, isolation, selection, versions, conflicts."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import ENCODER_PLUGIN

from biocount.cli import cli
from biocount.errors import PluginError, RegistryError
from biocount.host.plugins import load_host


def record(host, dist):
    (rec,) = host.plugin(dist)
    return rec


def list_json(registry, env=None):
    result = CliRunner().invoke(cli, ["--registry", str(registry), "plugins", "list", "--json", "--all"], env=env)
    return result, (json.loads(result.output) if result.exit_code == 0 else None)


def test_third_party_plugin_is_discovered_and_resolves(make_dist, registry_file):
    dist = make_dist("biocount-lcms", ENCODER_PLUGIN)
    reg = registry_file("plugins: {biocount-lcms: {}}\n")
    host = load_host(reg)
    assert record(host, "biocount-lcms").status == "loaded"
    comp = host.encoder("metabolomics")
    assert comp.ref == "biocount-lcms:lcms"
    assert type(comp.build()).__name__ == "Enc"
    assert dist.marker.exists()


def test_builtin_plugins_come_through_entry_points():
    host = load_host()
    names = {r.name for r in host.records if r.dist == "biocount" and r.status == "loaded"}
    assert {"rna", "protein", "genomic", "tabular"} <= names
    assert host.encoder("rna").plugin.target == "biocount_rna"


def test_explicit_mode_blocks_unlisted_plugin_before_import(make_dist, registry_file):
    dist = make_dist("biocount-lcms", ENCODER_PLUGIN)
    host = load_host(registry_file("load: explicit\n"))
    assert record(host, "biocount-lcms").status == "blocked"
    assert not dist.marker.exists()
    with pytest.raises(PluginError, match="no encoder for modality 'metabolomics'"):
        host.encoder("metabolomics")
    autoload = load_host(registry_file("load: autoload\n"))
    assert record(autoload, "biocount-lcms").status == "loaded"


def test_plugin_raising_at_import_is_broken_and_list_still_exits_0(make_dist, registry_file):
    make_dist("biocount-bad", "raise RuntimeError('numpy ABI mismatch')\n")
    make_dist("biocount-lcms", ENCODER_PLUGIN)
    reg = registry_file("load: autoload\n")
    result, data = list_json(reg)
    assert result.exit_code == 0, result.output
    by = {p["distribution"]: p for p in data["plugins"]}
    assert by["biocount-bad"]["status"] == "broken"
    assert "RuntimeError: numpy ABI mismatch" in by["biocount-bad"]["error"]
    assert by["biocount-lcms"]["status"] == "loaded"  # one broken plugin takes nothing else down
    table = CliRunner().invoke(cli, ["--registry", str(reg), "plugins", "list"])
    assert table.exit_code == 0 and "numpy ABI mismatch" in table.output


def test_system_exit_in_plugin_is_caught(make_dist, registry_file):
    make_dist("biocount-exit", "import sys\nsys.exit(3)\n")
    host = load_host(registry_file("load: autoload\n"))
    rec = record(host, "biocount-exit")
    assert rec.status == "broken" and "SystemExit" in rec.error


def test_disabled_plugin_is_never_imported(make_dist, registry_file):
    dist = make_dist("biocount-lcms", ENCODER_PLUGIN)
    host = load_host(registry_file("load: autoload\nplugins: {biocount-lcms: {enabled: false}}\n"))
    assert record(host, "biocount-lcms").status == "disabled"
    assert not dist.marker.exists()


def test_version_mismatch_is_incompatible_and_not_imported(make_dist, registry_file):
    dist = make_dist("biocount-lcms", ENCODER_PLUGIN, version="0.3.0")
    host = load_host(registry_file("plugins: {biocount-lcms: {version: '>=1.0'}}\n"))
    rec = record(host, "biocount-lcms")
    assert rec.status == "incompatible" and "0.3.0" in rec.error and ">=1.0" in rec.error
    assert not dist.marker.exists()


def test_selected_broken_plugin_is_a_hard_error_naming_it(make_dist, registry_file):
    make_dist("biocount-lcms", "raise ImportError('no module named pyopenms')\n")
    host = load_host(registry_file("plugins: {biocount-lcms: {}}\nmodalities: {metabolomics: biocount-lcms:lcms}\n"))
    with pytest.raises(PluginError, match=r"encoder .lcms. of distribution biocount-lcms 1.0, which is broken.*pyopenms"):
        host.encoder("metabolomics")
    host.encoder("rna")  # unselected: the run goes on


def test_name_conflict_reported_then_settled_by_registry(make_dist, registry_file):
    make_dist("biocount-lcms", ENCODER_PLUGIN)
    make_dist("biocount-lcms2", ENCODER_PLUGIN)
    host = load_host(registry_file("load: autoload\n"))
    (line,) = host.conflicts()
    assert "biocount-lcms:lcms" in line and "biocount-lcms2:lcms" in line and "modalities: {metabolomics:" in line
    with pytest.raises(PluginError, match="2 encoders provide 'metabolomics'"):
        host.encoder("metabolomics")
    settled = load_host(registry_file("load: autoload\nmodalities: {metabolomics: biocount-lcms2:lcms}\n"))
    assert settled.conflicts() == []
    assert settled.encoder("metabolomics").plugin.dist == "biocount-lcms2"


def test_strict_mode_makes_a_broken_plugin_fatal(make_dist, registry_file):
    make_dist("biocount-bad", "raise RuntimeError('boom')\n")
    reg = registry_file("load: autoload\n")
    load_host(reg).raise_for_strict()  # lenient by default
    with pytest.raises(PluginError, match="biocount-bad.*boom"):
        load_host(reg, strict=True).raise_for_strict()
    result = CliRunner().invoke(cli, ["--registry", str(reg), "plugins", "list"],
                                env={"BIOCOUNT_STRICT_PLUGINS": "1"})
    assert result.exit_code == 2 and "boom" in result.output


def test_load_plugins_env_selects_distributions(make_dist, registry_file, monkeypatch):
    dist = make_dist("biocount-lcms", ENCODER_PLUGIN)
    reg = registry_file("load: autoload\n")
    monkeypatch.setenv("BIOCOUNT_LOAD_PLUGINS", "")
    host = load_host(reg)
    assert all(r.status == "blocked" for r in host.records if r.target != "biocount.core")
    assert not dist.marker.exists()
    monkeypatch.setenv("BIOCOUNT_LOAD_PLUGINS", "biocount-lcms")
    host = load_host(reg)
    assert record(host, "biocount-lcms").status == "loaded"
    assert all(r.status == "blocked" for r in host.plugin("biocount") if r.target != "biocount.core")


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        # a spec missing a required field
        ("from biocount import EncoderSpec, hookimpl\n@hookimpl\ndef biocount_register_encoders(register):\n"
         "    register(EncoderSpec(name='x', factory='os:getcwd'))\n", "broken", "api: Field required"),
        # a factory string that does not resolve
        ("from biocount import EncoderSpec, hookimpl\n@hookimpl\ndef biocount_register_encoders(register):\n"
         "    register(EncoderSpec(name='x', factory='nowhere.enc:E', api='1.0'))\n", "broken", "no module 'nowhere.enc'"),
        # an API major this host does not support
        ("from biocount import EncoderSpec, hookimpl\n@hookimpl\ndef biocount_register_encoders(register):\n"
         "    register(EncoderSpec(name='x', factory='os:getcwd', api='2.0'))\n", "incompatible", "supports 1.x"),
        # a newer minor API than this host implements (it may use what the host lacks)
        ("from biocount import EncoderSpec, hookimpl\n@hookimpl\ndef biocount_register_encoders(register):\n"
         "    register(EncoderSpec(name='x', factory='os:getcwd', api='1.7'))\n", "incompatible",
         "newer than this biocount's"),
        # a hook that raises
        ("from biocount import hookimpl\n@hookimpl\ndef biocount_register_forecasters(register):\n"
         "    raise KeyError('weights')\n", "broken", "biocount_register_forecasters failed: KeyError"),
        # a hook this biocount does not know
        ("from biocount import hookimpl\n@hookimpl\ndef biocount_register_widgets(register):\n    pass\n",
         "incompatible", "unknown hook(s) biocount_register_widgets"),
        # the wrong object handed to register
        ("from biocount import hookimpl\n@hookimpl\ndef biocount_register_encoders(register):\n"
         "    register({'name': 'x'})\n", "broken", "register() takes a EncoderSpec"),
    ],
)
def test_bad_plugins_are_reported_with_a_reason(make_dist, registry_file, body, status, needle):
    make_dist("biocount-odd", body)
    make_dist("biocount-lcms", ENCODER_PLUGIN)
    host = load_host(registry_file("load: autoload\n"))
    rec = record(host, "biocount-odd")
    assert rec.status == status and needle in rec.error, rec.error
    assert rec.components == []
    assert record(host, "biocount-lcms").status == "loaded"


def test_entry_point_target_that_does_not_exist(make_dist, registry_file):
    make_dist("biocount-ghost", target="no_such_module_xyz:plugin")
    rec = record(load_host(registry_file("load: autoload\n")), "biocount-ghost")
    assert rec.status == "broken" and "no_such_module_xyz" in rec.error


def test_registry_options_are_validated_by_the_options_model(make_dist, registry_file):
    body = """
from pydantic import BaseModel, Field
from biocount import EncoderSpec, hookimpl

class Opts(BaseModel):
    n_top: int = Field(default=10, gt=0)

class Enc:
    def __init__(self, options):
        self.options = options

@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(name="lcms", modality="metabolomics", factory="MODULE:Enc", options=Opts, api="1.0"))
"""
    make_dist("biocount-lcms", body)
    ok = load_host(registry_file("plugins: {biocount-lcms: {options: {lcms: {n_top: 5}}}}\n"))
    assert ok.encoder("metabolomics").build().options.n_top == 5
    bad = load_host(registry_file("plugins: {biocount-lcms: {options: {lcms: {n_top: 0}}}}\n"))
    rec = record(bad, "biocount-lcms")
    assert rec.status == "broken" and "options.lcms.n_top" in rec.error and "greater than 0" in rec.error


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("plugins: [unclosed\n", "not valid YAML"),
        ("load: sometimes\n", "load: Input should be 'explicit' or 'autoload'"),
        ("plugins: {biocount-x: {version: '>=2,<1'}}\n", "admits no version"),
        ("plugins: {biocount-x: {version: 'banana'}}\n", "is not a version specifier"),
        ("biocount: '>=5'\n", "written for biocount >=5"),
        ("plugins: {biocount-x: {enabled: maybe}}\n", "plugins.biocount-x.enabled"),
    ],
)
def test_bad_registry_gives_one_line_and_list_still_works(registry_file, text, needle):
    reg = registry_file(text)
    host = load_host(reg)
    assert needle in host.registry_error and str(reg) in host.registry_error
    with pytest.raises(RegistryError):
        host.encoder("rna")
    result = CliRunner().invoke(cli, ["--registry", str(reg), "plugins", "list"])
    assert result.exit_code == 0 and needle in result.output


def test_unknown_distribution_in_registry_is_reported_missing(registry_file):
    host = load_host(registry_file("plugins: {biocount-nothere: {}}\nmodalities: {lipids: biocount-nothere:lip}\n"))
    assert record(host, "biocount-nothere").status == "missing"
    with pytest.raises(PluginError, match="biocount-nothere.*missing.*not installed"):
        host.encoder("lipids")


def test_unmapped_modality_suggests_the_mapping():
    with pytest.raises(PluginError, match=r"no encoder for modality 'lipids'.*modalities: \{lipids: tabular\}"):
        load_host().encoder("lipids")


def test_plugins_validate(make_dist, registry_file):
    make_dist("biocount-lcms", ENCODER_PLUGIN)
    make_dist("biocount-bad", "raise RuntimeError('boom')\n")
    runner = CliRunner()
    ok = runner.invoke(cli, ["plugins", "validate", "biocount-lcms"])  # validates even when not selected
    assert ok.exit_code == 0 and "ok  biocount-lcms 1.0" in ok.output
    bad = runner.invoke(cli, ["plugins", "validate", "biocount-bad"])
    assert bad.exit_code == 1 and "boom" in bad.output
    none = runner.invoke(cli, ["plugins", "validate", "biocount-nothing"])
    assert none.exit_code == 1 and "no installed distribution" in none.output
    builtin = runner.invoke(cli, ["plugins", "validate", "biocount"])
    assert builtin.exit_code == 0, builtin.output


def test_validate_reports_a_factory_attribute_that_does_not_exist(make_dist):
    body = ENCODER_PLUGIN.replace('factory="MODULE:Enc"', 'factory="MODULE:Missing"')
    make_dist("biocount-lcms", body)
    result = CliRunner().invoke(cli, ["plugins", "validate", "biocount-lcms"])
    assert result.exit_code == 1 and "Missing" in result.output


def test_a_requested_plugin_that_is_installed_but_not_enabled_says_how_to_enable_it(make_dist, registry_file):
    make_dist("biocount-lcms", ENCODER_PLUGIN)
    host = load_host(registry_file("load: explicit\n"))
    with pytest.raises(PluginError, match=r"installed but not enabled \(may provide it\): .*biocount-lcms.*; run "
                                          r"`biocount plugins enable biocount-"):
        host.encoder("metabolomics")


def test_a_requested_plugin_that_broke_is_named_with_its_reason(make_dist, registry_file):
    make_dist("biocount-lcms", "raise ImportError('no module named pyopenms')\n")
    host = load_host(registry_file("load: autoload\n"))
    with pytest.raises(PluginError, match=r"failed to load .*biocount-lcms.*pyopenms"):
        host.encoder("metabolomics")
