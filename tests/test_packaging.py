"""A wheel (not only the editable install) carries the registry and finds its plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from biocount.host.registry import default_registry_path, json_schema, load_registry

ROOT = Path(__file__).resolve().parents[1]


def test_default_registry_is_valid_and_documented():
    loaded = load_registry()
    assert loaded.registry.load == "explicit"
    assert loaded.sources == [default_registry_path()]
    published = json.loads((ROOT / "docs" / "registry.schema.json").read_text())
    assert published == json_schema(), "docs/registry.schema.json is stale: regenerate it (see docs/plugins.md)"


@pytest.mark.slow
def test_wheel_install_carries_registry_and_plugins(tmp_path, child_venv):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("biocount-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "biocount/registry.yaml" in names
    assert {"biocount_rna/__init__.py", "biocount_tabular/__init__.py"} <= set(names)
    env = tmp_path / "venv"
    py = child_venv(env)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, timeout=300)
    out = subprocess.run([str(env / "bin" / "biocount"), "plugins", "list", "--json"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    data = json.loads(out)
    assert data["registry"][0].startswith(str(env)), data["registry"]
    loaded = {p["name"] for p in data["plugins"] if p["status"] == "loaded"}
    assert {"rna", "protein", "genomic", "tabular"} <= loaded
