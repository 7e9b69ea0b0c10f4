"""registry.yaml: which plugins may load, at which versions, and which component a name means.

The packaged default lives beside this module (and at the repository top level); users layer
their own file on top with ``--registry FILE`` or ``BIOCOUNT_REGISTRY``. The schema below is the
reference; ``biocount registry schema`` prints it as JSON Schema (also in docs/registry.schema.json).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from biocount.errors import RegistryError

SCHEMA_VERSION = 1
ENV_REGISTRY = "BIOCOUNT_REGISTRY"
ENV_CONFIG_DIR = "BIOCOUNT_CONFIG_DIR"


def _check_specifier(value: str, what: str) -> str:
    try:
        spec = SpecifierSet(value)
    except InvalidSpecifier:
        raise ValueError(f"{what} {value!r} is not a version specifier such as '>=0.1,<1'") from None
    if not _satisfiable(spec):
        raise ValueError(f"{what} {value!r} admits no version at all; widen the range")
    return value


def _satisfiable(spec: SpecifierSet) -> bool:
    """Whether any version meets ``spec``, tried on the versions it mentions and their neighbours."""
    candidates = [Version("0"), Version("999999")]
    for s in spec:
        v = s.version.rstrip(".*")
        candidates += [Version(v), Version(v + ".0.0.0.1")]
        release = Version(v).release
        candidates.append(Version(".".join(map(str, (*release[:-1], release[-1] + 1)))))
        if release[-1] > 0:
            candidates.append(Version(".".join(map(str, (*release[:-1], release[-1] - 1)))))
    return any(spec.contains(c, prereleases=True) for c in candidates)


class PluginEntry(BaseModel):
    """One distribution's line: the versions allowed, whether it loads, its components' options."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, description="PEP 440 specifier the installed version must meet.")
    enabled: bool = Field(default=True, description="false: never imported, whatever the load mode.")
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Options per component name, validated by its options model."
    )

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        return None if value is None else _check_specifier(value, "version")


class Registry(BaseModel):
    """The registry file's schema."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(description="Version of this file's schema.")
    biocount: str = Field(default=">=0", description="biocount versions this file was written for.")
    load: Literal["explicit", "autoload"] = Field(
        default="explicit",
        description="explicit: import only the distributions listed under plugins; autoload: all installed.",
    )
    plugins: dict[str, PluginEntry] = Field(default_factory=dict, description="Per distribution name.")
    modalities: dict[str, str] = Field(
        default_factory=dict,
        description="Modality name users type -> encoder, as 'name' or 'distribution:name'.",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Model name users type -> forecaster, as 'name' or 'distribution:name'.",
    )

    @field_validator("biocount")
    @classmethod
    def _host_range(cls, value: str) -> str:
        return _check_specifier(value, "biocount range")

    @model_validator(mode="after")
    def _normalise(self) -> Registry:
        self.plugins = {canonicalize_name(k): v for k, v in self.plugins.items()}
        return self

    def entry(self, dist: str) -> PluginEntry | None:
        return self.plugins.get(canonicalize_name(dist))


class LoadedRegistry(BaseModel):
    """A registry together with where it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    registry: Registry
    sources: list[Path]
    sha256: str


def default_registry_path() -> Path:
    """The packaged default registry.yaml (inside a wheel), else the repository's top-level one."""
    packaged = Path(__file__).parents[1] / "registry.yaml"  # biocount/registry.yaml in a wheel
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "registry.yaml"


def user_registry_path() -> Path:
    """The user's own registry, edited by ``biocount plugins enable/disable``.

    ``$BIOCOUNT_CONFIG_DIR/registry.yaml``, else ``$XDG_CONFIG_HOME/biocount/registry.yaml``, else
    ``~/.config/biocount/registry.yaml``.
    """
    base = os.environ.get(ENV_CONFIG_DIR)
    if base:
        return Path(base) / "registry.yaml"
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "biocount" / "registry.yaml"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the registry file ({exc.strerror}); check the path") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise RegistryError(f"{path}: not valid YAML{line}; fix the syntax or point --registry elsewhere") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the registry must be a mapping with 'schema_version', 'plugins', ...")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {msg}{more}"


def load_registry(path: str | Path | None = None) -> LoadedRegistry:
    """Read the default registry, layered with the user's registry (:func:`user_registry_path`, if it
    exists) and then a given file (``path`` or ``$BIOCOUNT_REGISTRY``).

    Each layer overrides the ones below key by key (mappings merge, other values replace).

    Raises
    ------
    RegistryError
        The file is missing, not YAML, fails the schema, or was written for another biocount.
    """
    from biocount._version import __version__

    sources = [default_registry_path()]
    if user_registry_path().is_file():
        sources.append(user_registry_path())
    user = path if path is not None else os.environ.get(ENV_REGISTRY) or None
    if user is not None:
        sources.append(Path(user))
    data: dict[str, Any] = {}
    digest = hashlib.sha256()
    for source in sources:
        layer = _read_yaml(source)
        try:
            Registry.model_validate({"schema_version": SCHEMA_VERSION, **layer})
        except ValidationError as exc:
            raise RegistryError(f"{source}: {first_error(exc)}; see docs/registry.schema.json") from None
        data = _merge(data, layer)
        digest.update(source.read_bytes())
    registry = Registry.model_validate(data)
    if not SpecifierSet(registry.biocount).contains(__version__, prereleases=True):
        raise RegistryError(
            f"{sources[-1]}: written for biocount {registry.biocount}, but this is biocount {__version__}; "
            "update the file's 'biocount:' range or install a matching biocount"
        )
    return LoadedRegistry(registry=registry, sources=sources, sha256=digest.hexdigest())


def json_schema() -> dict[str, Any]:
    """The registry schema as JSON Schema."""
    return Registry.model_json_schema()


def set_enabled(dist: str, enabled: bool) -> Path:
    """Set ``plugins.<dist>.enabled`` in the user's registry, creating it if needed.

    Comments and order of an existing file are kept (ruamel.yaml round trip); the file is replaced
    atomically, and only after the edited content validates.
    """
    import tempfile

    from ruamel.yaml import YAML

    path = user_registry_path()
    yaml_rt = YAML()
    yaml_rt.preserve_quotes = True
    if path.is_file():
        try:
            doc = yaml_rt.load(path.read_text(encoding="utf-8")) or {}
        except Exception as exc:
            raise RegistryError(f"{path}: not valid YAML ({type(exc).__name__}); fix it before editing") from None
    else:
        doc = yaml_rt.load("# Your biocount registry, layered over the packaged default.\n"
                           "# Edited by `biocount plugins enable/disable`; comments you add are kept.\n"
                           "schema_version: 1\n")
    name = canonicalize_name(dist)
    plugins = doc.setdefault("plugins", {})
    key = next((k for k in plugins if canonicalize_name(str(k)) == name), name)
    entry = plugins.get(key)
    if entry is None:
        plugins[key] = {"enabled": enabled}
    else:
        entry["enabled"] = enabled
    try:
        Registry.model_validate({"schema_version": SCHEMA_VERSION, **yaml.safe_load(_dump(yaml_rt, doc))})
    except ValidationError as exc:
        raise RegistryError(f"{path}: the edit would break the registry ({first_error(exc)})") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".registry.", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yaml_rt.dump(doc, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _dump(yaml_rt: Any, doc: Any) -> str:
    import io

    buf = io.StringIO()
    yaml_rt.dump(doc, buf)
    return buf.getvalue()
