"""``biocount plugins new``: a complete, installable, tested modality plugin in one command."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from biocount._version import PLUGIN_API, __version__
from biocount.errors import BiocountInputError

PYPROJECT = '''[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "{dist}"
version = "0.1.0"
description = "biocount encoder plugin for {modality} data"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["biocount{biocount_range}"]

[project.optional-dependencies]
test = ["pytest>=8"]

# How biocount finds the plugin: an entry point in the "biocount" group.
[project.entry-points.biocount]
{name} = "{package}"

[tool.hatch.build.targets.wheel]
packages = ["{package}"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

INIT = '''"""{dist}: biocount encoder plugin for {modality} data.

Kept light: `biocount plugins list` imports this module. The encoder's code is imported only when a
run uses it (the spec's factory).
"""

from biocount import EncoderSpec, hookimpl

from .options import {Camel}Options


@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(
        name="{name}",
        modality="{modality}",
        factory="{package}.encoder:{Camel}Encoder",
        options={Camel}Options,
        api="{api}",
        description="{modality}: log transform and per-feature scaling fitted on training rows",
    ))
'''

OPTIONS = '''from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class {Camel}Options(BaseModel):
    """Options of the {name} encoder (validated before any data is read)."""

    model_config = ConfigDict(extra="forbid")

    log: bool = Field(default=True, description="log1p the values first (for intensities or counts).")
    scale: bool = Field(default=True, description="Centre and scale each feature on training rows.")
'''

ENCODER = '''"""The {name} encoder: {modality} table (one row per series and time) -> biocount's data contract.

Edit `fit` and `transform` for your modality. Rules: learn only from rows where `train` is True, keep
what you learn in attributes ending with `_`, and return a `biocount.ModalityData`.
"""

from __future__ import annotations

import numpy as np
from biocount import BiocountInputError, ModalityData
from biocount.contract import cube
from biocount.encoding import Standardizer, check_finite, matrix, train_mask

from .options import {Camel}Options


class {Camel}Encoder:
    def __init__(self, options: {Camel}Options) -> None:
        self.options = options

    def _values(self, adata) -> np.ndarray:
        if "time" not in adata.obs:
            raise BiocountInputError("{name}: the modality has no time column")
        X = matrix(adata, None, "{name}")
        X = X.toarray() if hasattr(X, "toarray") else X
        check_finite(X, "{name}", adata.var_names)
        if self.options.log:
            if np.nanmin(X) < 0:
                raise BiocountInputError("{name}: negative values cannot be log-transformed; set log: false")
            X = np.log1p(X)
        return X

    def fit(self, adata, *, train=None) -> {Camel}Encoder:
        rows = self._values(adata)[train_mask(adata, train)]
        self.scaler_ = Standardizer().fit(rows) if self.options.scale else None
        self.features_ = adata.var_names.to_numpy()
        return self

    def transform(self, adata) -> ModalityData:
        values = self._values(adata)
        if self.scaler_ is not None:
            values = self.scaler_.transform(values)
        series, grid, cube_values = cube(adata.obs["series"].to_numpy(), adata.obs["time"].to_numpy(), values)
        return ModalityData(series=series, times=grid, features=self.features_, values=cube_values,
                            meta={{"modality": "{modality}", "normalisation": "log1p, scaled"}})
'''

CONFTEST = '''pytest_plugins = ["biocount.host.testing"]
'''

TESTS = '''"""Tests of the {name} plugin, using biocount's contract tests."""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

import pytest
from biocount.io.readers import read
from biocount.host.testing import EncoderContract

import {package}

EXAMPLE = Path({package}.__file__).parent / "data" / "example.csv"


class Test{Camel}Encoder(EncoderContract):
    modality = "{modality}"

    @pytest.fixture
    def host(self, biocount_host):
        biocount_host.add_plugin({package}, name="{name}", dist="{dist}")
        return biocount_host


def test_plugin_is_installed():
    found = {{(ep.dist.name, ep.value) for ep in md.entry_points(group="biocount") if ep.dist}}
    assert ("{dist}", "{package}") in found, "reinstall the plugin: pip install -e ."


def test_example_table_encodes(biocount_host):
    biocount_host.add_plugin({package}, name="{name}", dist="{dist}")
    (adata,) = read(EXAMPLE).values()
    encoded = biocount_host.encoder("{modality}").build().fit(adata).transform(adata)
    assert encoded.shape == (12, 30, 5)
'''

README = '''# {dist}

A [biocount](https://github.com/) encoder plugin for **{modality}** data, made with
`biocount plugins new {name} --modality {modality}`.

```bash
pip install -e ".[test]"            # install (the entry point makes biocount find it)
python -m pytest                    # biocount's contract tests for encoders, plus your own
biocount plugins enable {dist}      # the default registry loads only listed plugins
biocount plugins list               # shows {dist} as loaded
biocount run --data demo --data {package}/data/example.csv --modalities rna,{modality}
```

- `{package}/__init__.py` registers the encoder (keep it light: `plugins list` imports it).
- `{package}/encoder.py` turns a `{modality}` table into biocount's data contract; edit `fit`/`transform`.
- `{package}/options.py` declares the options, settable in a registry file:
  `plugins: {{{dist}: {{options: {{{name}: {{scale: false}}}}}}}}`.
- `{package}/data/example.csv` is a small long table (series_id, time, feature, value, modality) on the
  demo study's donors and days.

Targets biocount plugin API {api}; compatible biocount versions: `{biocount_range}`.
'''


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_\\-]", name))


def example_table(modality: str, seed: int = 0) -> str:
    """A long CSV on the demo's donors and days: 5 features, log-normal intensities."""
    from biocount.io.datasets import N_SERIES, sample_times

    rng = np.random.default_rng(seed)
    times = sample_times(np.random.default_rng(0))  # the demo study's days (seed 0)
    lines = ["series_id,time,feature,value,modality"]
    level = rng.lognormal(4, 0.5, size=5)
    for s in range(N_SERIES):
        phase = rng.uniform(0, 6)
        for t in times:
            for f in range(5):
                value = level[f] * np.exp(0.4 * np.sin(t / 6 + phase + f) + rng.normal(0, 0.1))
                lines.append(f"D{s + 1:02d},{t:g},{modality.upper()[:3]}{f + 1},{value:.4f},{modality}")
    return "\n".join(lines) + "\n"


MAX_NAME = 64  # characters of a plugin or modality name


def new_plugin(name: str, modality: str, directory: str | Path = ".") -> Path:
    """Write ``biocount-<name>/`` under ``directory``; returns its path."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise BiocountInputError(f"plugin name '{name}': use lowercase letters, digits and _, starting with a letter")
    if len(name) > MAX_NAME:  # file names (tests/test_<name>.py) and PyPI names stay short
        raise BiocountInputError(f"plugin name '{name[:20]}...': {len(name)} characters; use at most {MAX_NAME}")
    if not re.fullmatch(r"[a-z][a-z0-9_\-]*", modality) or len(modality) > MAX_NAME:
        raise BiocountInputError(f"--modality '{modality[:40]}': use at most {MAX_NAME} lowercase letters, digits, "
                                 "_ and -")
    dist, package = f"biocount-{name.replace('_', '-')}", f"biocount_{name}"
    root = Path(directory) / dist
    if root.exists():
        raise BiocountInputError(f"{root} exists; choose another --dir or remove it")
    major, minor = (int(x) for x in __version__.split(".")[:2])
    fields = {"name": name, "modality": modality, "dist": dist, "package": package, "Camel": _camel(name),
              "api": PLUGIN_API, "biocount_range": f">={major}.{minor},<{major + 1}"}
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{package}/__init__.py": INIT,
        f"{package}/options.py": OPTIONS, f"{package}/encoder.py": ENCODER,
        "tests/conftest.py": CONFTEST, f"tests/test_{name}.py": TESTS,
    }
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**fields))
    (root / package / "data").mkdir()
    (root / package / "data" / "example.csv").write_text(example_table(modality))
    return root
