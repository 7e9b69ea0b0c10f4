"""The plugin author's path, for real: scaffold -> pip install -> its tests -> enable -> list -> run.

Runs in a temporary virtual environment that sees this environment's packages, so nothing is
installed into the environment running the tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from biocount import hookspecs
from biocount.host.scaffold import new_plugin

ROOT = Path(__file__).resolve().parents[1]


def sh(*args, cwd=None, env=None, timeout=600):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.mark.slow
def test_scaffold_install_test_enable_list_run(tmp_path, child_venv):
    root = new_plugin("lipid", "lipidomics", tmp_path)
    env_dir = tmp_path / "venv"
    py = child_venv(env_dir)
    env = {**os.environ, "BIOCOUNT_CONFIG_DIR": str(tmp_path / "config")}
    sh(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-build-isolation", "-q", root, env=env)
    out = sh(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root, env=env)
    assert re.search(r"\d+ passed", out) and "failed" not in out
    sh(py, "-m", "biocount", "plugins", "enable", "biocount-lipid", env=env)
    listing = json.loads(sh(py, "-m", "biocount", "plugins", "list", "--json", env=env))
    mine = [p for p in listing["plugins"] if p["distribution"] == "biocount-lipid"]
    assert mine and mine[0]["status"] == "loaded" and mine[0]["provides"] == ["encoder lipid (modality lipidomics)"]
    out_dir = tmp_path / "run"
    sh(py, "-m", "biocount", "run", "--data", "demo", "--data", root / "biocount_lipid" / "data" / "example.csv",
       "--modalities", "rna,lipidomics", "--target", "lipidomics", "--models", "naive,arima", "--out", out_dir,
       "--quiet", env=env)
    info = json.loads((out_dir / "run.json").read_text())
    assert info["plugins"]["encoders"]["lipidomics"] == "biocount-lipid:lipid"


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path):
    from biocount import BiocountInputError

    with pytest.raises(BiocountInputError, match="use lowercase letters"):
        new_plugin("Lipid!", "lipidomics", tmp_path)
    new_plugin("lipid", "lipidomics", tmp_path)
    with pytest.raises(BiocountInputError, match="exists"):
        new_plugin("lipid", "lipidomics", tmp_path)
    text = (tmp_path / "biocount-lipid" / "pyproject.toml").read_text()
    assert 'lipid = "biocount_lipid"' in text and '"biocount>=0.1,<1"' in text


def test_every_hook_is_documented_and_tested():
    """As datasette does: a hook without a reference section or a test fails the build."""
    hooks = [name for name in dir(hookspecs) if name.startswith("biocount_")]
    assert len(hooks) >= 3
    doc = (ROOT / "docs" / "plugins.md").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    for hook in hooks:
        assert re.search(rf"^### `{hook}\(", doc, flags=re.M), f"docs/plugins.md has no section for {hook}"
        assert f"def test_hook_{hook}" in tests, f"no test_hook_{hook} in tests/"


@pytest.mark.slow
def test_example_plugin_is_discovered_and_runs_end_to_end(tmp_path, child_venv):
    example = ROOT / "examples" / "biocount-metabolomics"
    env_dir = tmp_path / "venv"
    py = child_venv(env_dir)
    env = {**os.environ, "BIOCOUNT_CONFIG_DIR": str(tmp_path / "config")}
    sh(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-build-isolation", "-q", example,
       env=env)
    listing = json.loads(sh(py, "-m", "biocount", "plugins", "list", "--json", "--all", env=env))
    found = {p["distribution"]: p for p in listing["plugins"]}
    assert found["biocount-metabolomics"]["status"] == "blocked"  # installed, not yet enabled: explicit mode
    sh(py, "-m", "biocount", "plugins", "enable", "biocount-metabolomics", env=env)
    listing = json.loads(sh(py, "-m", "biocount", "plugins", "list", "--json", env=env))
    found = {p["distribution"]: p for p in listing["plugins"]}
    assert found["biocount-metabolomics"]["provides"] == ["encoder lcms (modality metabolite)"]
    out = tmp_path / "run"
    sh(py, "-m", "biocount", "run", "--data", "demo", "--data",
       example / "biocount_metabolomics" / "data" / "metabolite.h5ad", "--modalities", "rna,metabolite",
       "--target", "metabolite", "--models", "lstm,naive", "--out", out, "--quiet", env=env)
    info = json.loads((out / "run.json").read_text())
    assert info["plugins"]["encoders"]["metabolite"] == "biocount-metabolomics:lcms"
    assert info["modalities"]["metabolite"]["shape"] == [12, 30, 8]
    out = sh(py, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=example, env=env)
    assert re.search(r"\d+ passed", out) and "failed" not in out


def test_every_spec_field_is_documented():
    from biocount import EncoderSpec, ForecasterSpec

    doc = (ROOT / "docs" / "plugins.md").read_text()
    fields = set(EncoderSpec.model_fields) | set(ForecasterSpec.model_fields)
    missing = [f for f in sorted(fields) if f"| `{f}` |" not in doc]
    assert missing == []
