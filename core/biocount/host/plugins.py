"""The plugin host: discover entry points, load them one by one, collect their components.

Startup order (docs/plugins.md, "How plugins load"):

1. read registry.yaml (the packaged default, layered with the user's file);
2. for each entry point in the ``biocount`` group, sorted by distribution and name, decide
   *before importing it* whether it may load: ``enabled: false`` -> disabled; not allowed by
   the load mode or ``BIOCOUNT_LOAD_PLUGINS`` -> blocked; version outside the registry's
   specifier -> incompatible;
3. import the allowed ones one at a time; any ``Exception`` or ``SystemExit`` marks that plugin
   broken (never ``KeyboardInterrupt``);
4. call each registration hook one plugin at a time, so an error names its plugin, and check
   every spec (plugin API version, factory resolvable, registry options valid).

Nothing here imports a component's factory: listing plugins never pulls in torch or scanpy.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pluggy
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from pydantic import BaseModel, ValidationError

from biocount._version import PLUGIN_API, SUPPORTED_PLUGIN_API_MAJORS, __version__
from biocount.errors import PluginError, RegistryError
from biocount.host import hookspecs
from biocount.host.registry import LoadedRegistry, Registry, first_error, load_registry
from biocount.host.specs import EncoderSpec, ForecasterSpec

GROUP = "biocount"
ENV_LOAD = "BIOCOUNT_LOAD_PLUGINS"
ENV_STRICT = "BIOCOUNT_STRICT_PLUGINS"
CORE = "biocount.core"

Status = Literal["loaded", "broken", "blocked", "disabled", "incompatible", "missing"]
Spec = EncoderSpec | ForecasterSpec


@dataclass
class PluginRecord:
    """What the host knows of one plugin (one entry point), whether or not it loaded."""

    name: str
    dist: str
    version: str
    target: str
    status: Status = "loaded"
    error: str | None = None
    components: list[Component] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a hook argument that is deprecated

    @property
    def label(self) -> str:
        """How messages name the plugin: distribution, version and entry point."""
        return f"{self.dist} {self.version} (plugin '{self.name}')"

    def fail(self, status: Status, error: str) -> None:
        self.status, self.error, self.components = status, error, []

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.dist,
            "version": self.version,
            "entry_point": self.target,
            "status": self.status,
            "error": self.error,
            "provides": [c.describe() for c in self.components],
            "warnings": self.warnings,
        }


@dataclass
class Component:
    """A registered encoder or forecaster, with its provider and its validated options."""

    spec: Spec
    plugin: PluginRecord
    options: BaseModel

    @property
    def ref(self) -> str:
        return f"{self.plugin.dist}:{self.spec.name}"

    def describe(self) -> str:
        serves = f" (modality {self.spec.modality})" if isinstance(self.spec, EncoderSpec) and self.spec.modality else ""
        return f"{self.spec.kind} {self.spec.name}{serves}"

    def build(self, **overrides: Any) -> Any:
        """Import the factory and build the component; any failure names the plugin."""
        try:
            # only what was set explicitly: filled-in defaults must not override a preset chosen later
            options = self.spec.options.model_validate({**self.options.model_dump(exclude_unset=True), **overrides})
        except ValidationError as exc:
            raise PluginError(f"{self.spec.kind} '{self.spec.name}' option {first_error(exc)}") from None
        try:
            return self.spec.load_factory()(options)
        except (Exception, SystemExit) as exc:
            raise PluginError(
                f"{self.plugin.label} failed to build {self.spec.kind} '{self.spec.name}': {_one_line(exc)}"
            ) from exc


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return first_error(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _env_allow_list() -> set[str] | None:
    raw = os.environ.get(ENV_LOAD)
    if raw is None:
        return None
    return {canonicalize_name(n) for n in raw.split(",") if n.strip()}


def strict_from_env() -> bool:
    return os.environ.get(ENV_STRICT, "").strip().lower() in {"1", "true", "yes", "on"}


class Host:
    """The loaded plugins and their components. Build one with :func:`load_host`."""

    def __init__(self, registry: LoadedRegistry | None, registry_error: str | None, strict: bool) -> None:
        self.loaded_registry = registry
        self.registry_error = registry_error
        self.strict = strict
        self.records: list[PluginRecord] = []
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)

    @property
    def registry(self) -> Registry:
        return self.loaded_registry.registry if self.loaded_registry else Registry(schema_version=1)

    # -- loading --------------------------------------------------------------------------
    def _gate(self, dist: str, version: str, allow: set[str] | None) -> tuple[Status, str] | None:
        """Why a plugin must not be imported, or None if it may."""
        if self.registry_error is not None:
            return "blocked", "not loaded because the registry file is invalid (see above)"
        entry = self.registry.entry(dist)
        if entry is not None and not entry.enabled:
            return "disabled", "enabled: false in the registry"
        if allow is not None:
            if dist not in allow:
                return "blocked", f"not in {ENV_LOAD}"
        elif self.registry.load == "explicit" and entry is None:
            return "blocked", f"not listed in the registry (load: explicit); run `biocount plugins enable {dist}`"
        if entry is not None and entry.version and not SpecifierSet(entry.version).contains(version, prereleases=True):
            return "incompatible", f"installed {version} does not meet the registry's '{entry.version}'"
        return None

    def _load_entry_points(self, entry_points: list[md.EntryPoint], only: set[str] | None,
                           report_missing: bool = True) -> None:
        allow = _env_allow_list()
        if allow is not None:
            installed = {canonicalize_name(ep.dist.name) for ep in entry_points if ep.dist is not None}
            unknown = sorted(allow - installed)
            if unknown and self.registry_error is None:  # a typo would otherwise block every plugin silently
                self.registry_error = (f"{ENV_LOAD}: '{unknown[0]}' is not an installed plugin distribution "
                                       f"(installed: {', '.join(sorted(installed))}); fix the name or unset it")
        for ep in sorted(entry_points, key=lambda e: (canonicalize_name(e.dist.name if e.dist else ""), e.name)):
            dist = canonicalize_name(ep.dist.name) if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else "?"
            record = PluginRecord(name=ep.name, dist=dist, version=version, target=ep.value)
            self.records.append(record)
            if only is not None and dist not in only:
                continue
            gate = self._gate(dist, version, allow)
            if only is not None and gate is not None and gate[0] in ("blocked", "disabled"):
                gate = None  # validating a plugin loads it whatever the registry selects
            if gate is not None:
                record.fail(*gate)
                continue
            try:
                plugin = ep.load()
                self._register(plugin, record, f"{dist}:{ep.name}")
            except (Exception, SystemExit) as exc:
                record.fail("broken", f"cannot load entry point '{ep.name} = {ep.value}': {_one_line(exc)}")
                continue
            unknown = [h.name for h in self.pm.get_hookcallers(plugin) or [] if not h.has_spec()]
            if unknown:
                self.pm.unregister(plugin)
                record.fail("incompatible", f"implements unknown hook(s) {', '.join(unknown)}; upgrade biocount")
        for name in sorted(self.registry.plugins) if only is None and report_missing else []:
            if not any(r.dist == name for r in self.records):
                self.records.append(
                    PluginRecord(name=name, dist=name, version="-", target="-", status="missing",
                                 error="listed in the registry but not installed; pip install it or remove the entry")
                )

    def _check_spec(self, spec: Spec, record: PluginRecord) -> BaseModel:
        if spec.api_major not in SUPPORTED_PLUGIN_API_MAJORS:
            supported = ", ".join(f"{m}.x" for m in SUPPORTED_PLUGIN_API_MAJORS)
            raise _Incompatible(
                f"{spec.kind} '{spec.name}' targets plugin API {spec.api}, but biocount {__version__} supports "
                f"{supported}; install a plugin release for API {PLUGIN_API} or upgrade biocount"
            )
        major, minor = (int(x) for x in spec.api.split("."))
        host_major, host_minor = (int(x) for x in PLUGIN_API.split("."))
        if major == host_major and minor > host_minor:
            raise _Incompatible(
                f"{spec.kind} '{spec.name}' targets plugin API {spec.api}, newer than this biocount's {PLUGIN_API}: it "
                "may use features this host lacks; upgrade biocount, or install an older release of the plugin"
            )
        module = spec.factory.partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"factory '{spec.factory}' of {spec.kind} '{spec.name}' does not resolve: no module '{module}'")
        entry = self.registry.entry(record.dist)
        raw = entry.options.get(spec.name, {}) if entry else {}
        try:
            return spec.options.model_validate(raw)
        except ValidationError as exc:
            where = self.loaded_registry.sources[-1] if self.loaded_registry else "registry"
            raise ValueError(
                f"{where}: plugins.{record.dist}.options.{spec.name}.{first_error(exc)}"
            ) from None

    def add_plugin(self, plugin: Any, *, name: str = "test-plugin", dist: str = "test-plugin",
                   version: str = "0.0") -> PluginRecord:
        """Register a plugin object in this host now (tests, notebooks); returns its record.

        The plugin goes through the same checks as an installed one; a failure marks it broken.
        """
        record = PluginRecord(name=name, dist=canonicalize_name(dist), version=version, target=repr(plugin))
        self.records.append(record)
        try:
            self._register(plugin, record, f"{record.dist}:{name}")
        except Exception as exc:
            record.fail("broken", _one_line(exc))
            return record
        self._call_register_hooks(only={f"{record.dist}:{name}"})
        return record

    def remove_plugin(self, record: PluginRecord) -> None:
        """Undo :meth:`add_plugin`."""
        key = f"{record.dist}:{record.name}"
        if self.pm.get_plugin(key) is not None:
            self.pm.unregister(name=key)
        self.records = [r for r in self.records if r is not record]

    def _register(self, plugin: Any, record: PluginRecord, name: str) -> None:
        """Register with pluggy, keeping its warnings (e.g. a deprecated hook argument) on the record."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.pm.register(plugin, name=name)  # pluggy's warn_on_impl(_args) fire here
        record.warnings += [str(w.message) for w in caught]

    def _call_register_hooks(self, only: set[str] | None = None) -> None:
        """Each loaded plugin's registration hooks, one plugin at a time (pluggy's ``subset_hook_caller``),
        so one that fails is marked broken and the others still register."""
        by_plugin = {f"{r.dist}:{r.name}": r for r in self.records}
        plugins = dict(self.pm.list_name_plugin())
        for hook, spec_type in (("biocount_register_encoders", EncoderSpec),
                                ("biocount_register_forecasters", ForecasterSpec)):
            for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):  # registration order
                record = by_plugin[impl.plugin_name]
                if record.status != "loaded" or (only is not None and impl.plugin_name not in only):
                    continue
                collected: list[Spec] = []

                def register(spec: Any, _type: type = spec_type, _into: list = collected) -> None:
                    if not isinstance(spec, _type):
                        raise TypeError(f"register() takes a {_type.__name__}, got {type(spec).__name__}")
                    _into.append(spec)

                others = [p for n, p in plugins.items() if n != impl.plugin_name]
                try:
                    self.pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
                    record.components += [Component(s, record, self._check_spec(s, record)) for s in collected]
                except _Incompatible as exc:
                    record.fail("incompatible", str(exc))
                except (Exception, SystemExit) as exc:
                    record.fail("broken", f"{impl.function.__name__} failed: {_one_line(exc)}")

    # -- queries --------------------------------------------------------------------------
    def components(self, kind: str) -> list[Component]:
        return [c for r in self.records if r.status == "loaded" for c in r.components if c.spec.kind == kind]

    @property
    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status in ("broken", "incompatible", "missing")]

    def conflicts(self) -> list[str]:
        """One line per name that two providers offer and the registry does not settle."""
        lines = []
        for kind, key, table, section in (("encoder", "modality", self.registry.modalities, "modalities"),
                                          ("forecaster", "name", self.registry.models, "models")):
            names: dict[str, list[Component]] = {}
            for c in self.components(kind):
                served = getattr(c.spec, key)
                if served:
                    names.setdefault(served, []).append(c)
            for name, comps in sorted(names.items()):
                if len(comps) > 1 and name not in table:
                    lines.append(_conflict_message(kind, name, comps, section))
        return lines

    def encoder(self, modality: str) -> Component:
        """The encoder serving ``modality``; raises a one-line error naming what to change."""
        return self._resolve("encoder", modality, self.registry.modalities, "modalities", "modality")

    def forecaster(self, name: str) -> Component:
        """The forecaster called ``name``; raises a one-line error naming what to change."""
        return self._resolve("forecaster", name, self.registry.models, "models", "name")

    def _resolve(self, kind: str, name: str, table: dict[str, str], section: str, key: str) -> Component:
        self.raise_for_registry()
        ref = table.get(name)
        if ref is not None:
            return self._by_ref(kind, ref, f"{section}: {name}: {ref}")
        comps = [c for c in self.components(kind) if getattr(c.spec, key) == name]
        if len(comps) == 1:
            return comps[0]
        if len(comps) > 1:
            raise PluginError(_conflict_message(kind, name, comps, section))
        known = sorted({getattr(c.spec, key) for c in self.components(kind) if getattr(c.spec, key)} | set(table))
        failed = [f"{r.label} ({r.error})" for r in self.broken]
        hint = f"; plugins that failed to load and may provide it: {', '.join(failed)}" if failed else ""
        off = sorted({r.dist for r in self.records if r.status in ("blocked", "disabled")})
        if off:
            hint += (f"; installed but not enabled (may provide it): {', '.join(off)}; run `biocount plugins enable "
                     f"{off[0]}`")
        generic = [c.spec.name for c in self.components(kind) if key == "modality" and c.spec.modality is None]
        mapping = (f"; name one with --modalities {name}={generic[0]}, or map it in the registry, e.g. "
                   f"'{section}: {{{name}: {generic[0]}}}'" if generic else "")
        raise PluginError(f"no {kind} for {key} '{name}'{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
                          f"{mapping}{hint}")

    def component(self, kind: str, ref: str) -> Component:
        """The component ``ref`` ('name' or 'distribution:name') of ``kind``."""
        self.raise_for_registry()
        return self._by_ref(kind, ref, ref)

    def _by_ref(self, kind: str, ref: str, line: str) -> Component:
        dist, _, comp = ref.rpartition(":")
        dist = canonicalize_name(dist) if dist else ""
        matches = [c for c in self.components(kind) if c.spec.name == comp and (not dist or c.plugin.dist == dist)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise PluginError(_conflict_message(kind, comp, matches, line.split(":")[0]))
        failed = [r for r in self.records if r.status != "loaded" and (r.dist == dist or not dist)]
        if failed:  # name the distribution the line asks for (all its plugins share the gate), not one of them
            r = failed[0]
            raise PluginError(f"registry line '{line}' needs {kind} '{comp}' of distribution {r.dist} {r.version}, "
                              f"which is {r.status}: {r.error}")
        names = sorted({c.spec.name for c in self.components(kind)})
        where = f"registry line '{line}'" if line != ref else f"--modalities MOD={ref}"
        raise PluginError(f"{where}: no loaded {kind} '{ref}'{did_you_mean(comp, names)}; {kind}s: "
                          f"{', '.join(names) or 'none'} (`biocount plugins list`)")

    def raise_for_registry(self) -> None:
        if self.registry_error is not None:
            raise RegistryError(self.registry_error)

    def raise_for_strict(self) -> None:
        """In strict mode (``BIOCOUNT_STRICT_PLUGINS=1``), any plugin that failed is fatal."""
        if self.strict and self.broken:
            r = self.broken[0]
            raise PluginError(f"{r.label} is {r.status} ({ENV_STRICT}=1 makes this fatal): {r.error}")

    def plugin(self, dist: str) -> list[PluginRecord]:
        return [r for r in self.records if r.dist == canonicalize_name(dist)]


class _Incompatible(Exception):
    pass


def did_you_mean(name: str, options: list[str]) -> str:
    """" (did you mean 'x'?)" for the closest of ``options`` (difflib), or ''."""
    import difflib

    close = difflib.get_close_matches(name, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close and close[0] != name else ""


def _conflict_message(kind: str, name: str, comps: list[Component], section: str) -> str:
    refs = [c.ref for c in comps]
    return (f"{len(comps)} {kind}s provide '{name}': {', '.join(refs)}; choose one in the registry "
            f"with the line '{section}: {{{name}: {refs[0]}}}'")


def load_host(registry: str | Path | None = None, *, strict: bool | None = None,
              entry_points: list[md.EntryPoint] | None = None, only: set[str] | None = None) -> Host:
    """Load the registry and every allowed plugin. Never raises for a broken plugin or registry.

    Parameters
    ----------
    registry
        The user's registry file, layered over the packaged default (default: ``$BIOCOUNT_REGISTRY``).
    strict
        Make any failed plugin fatal in :meth:`Host.raise_for_strict` (default: ``$BIOCOUNT_STRICT_PLUGINS``).
    entry_points
        Entry points to load instead of the installed ``biocount`` group (for tests).
    only
        Load just these distributions, whatever the registry selects (``biocount plugins validate``).
    """
    try:
        loaded, error = load_registry(registry), None
    except RegistryError as exc:
        loaded, error = None, str(exc)
    host = Host(loaded, error, strict_from_env() if strict is None else strict)
    eps = list(md.entry_points(group=GROUP)) if entry_points is None else entry_points
    host._load_entry_points(eps, None if only is None else {canonicalize_name(d) for d in only},
                            report_missing=entry_points is None)  # given entry points: discovery is off
    core = PluginRecord(name="core", dist="biocount", version=__version__, target=CORE)
    host.records.insert(0, core)
    from biocount.host import _builtins

    host.pm.register(_builtins, name=f"biocount:{core.name}")
    host._call_register_hooks()
    return host
