"""Architecture rules, checked on the source: core never imports a plugin, and plugins use only
biocount's public API (the names in ``biocount.__all__`` and its public submodules)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import biocount

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists())
PUBLIC_MODULES = {"biocount", "biocount.specs", "biocount.contract", "biocount.errors", "biocount.hookspecs",
                  "biocount.testing", "biocount.pseudobulk", "biocount.readers", "biocount.datasets",
                  "biocount.encoding", "biocount.forecast"}


def imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, node.module, alias.name


def test_plugins_are_found():
    assert {"biocount_rna", "biocount_protein", "biocount_genomic", "biocount_tabular"} <= set(PLUGIN_PACKAGES)


def test_core_never_imports_a_plugin():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {mod}"
           for p in (ROOT / "core").rglob("*.py") for line, mod, _ in imports(p)
           if mod.split(".")[0] in PLUGIN_PACKAGES or mod.startswith("biocount_")]
    assert bad == []


@pytest.mark.parametrize("package", PLUGIN_PACKAGES)
def test_plugin_uses_only_public_api(package):
    bad = []
    for path in (ROOT / "plugins" / package).rglob("*.py"):
        for line, mod, name in imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            top = mod.split(".")[0]
            if top in PLUGIN_PACKAGES and top != package:
                bad.append(f"{where} imports another plugin ({mod})")
            if top != "biocount":
                continue
            if mod not in PUBLIC_MODULES:
                bad.append(f"{where} imports private module {mod}")
            elif mod == "biocount" and name and name not in biocount.__all__ and name not in dir(biocount):
                bad.append(f"{where} imports private name biocount.{name}")
            elif name and name.startswith("_"):
                bad.append(f"{where} imports private name {mod}.{name}")
    assert bad == []


def test_boundary_check_catches_a_violation(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from biocount.host.plugins import load_host\nimport biocount_rna\n")
    found = [mod for _, mod, _ in imports(bad)]
    assert "biocount.host.plugins" not in PUBLIC_MODULES and "biocount_rna" in found


def test_public_module_paths_stay_where_plugins_import_them():
    """The modules moved into subpackages (host/, io/, study/, evaluation/, api/) keep the import paths
    docs/plugins.md and the plugins use: each old path is the moved module itself, not a copy."""
    import importlib
    import re

    documented = set(re.findall(r"\bbiocount\.([a-z_]+)\b", (ROOT / "docs" / "plugins.md").read_text()))
    modules = {m for m in documented if importlib.util.find_spec(f"biocount.{m}") is not None}
    assert {"contract", "testing", "encoding", "pseudobulk", "hookspecs", "scores", "ddp"} <= modules
    assert PUBLIC_MODULES - {"biocount"} <= {f"biocount.{m}" for m in [*biocount.PUBLIC_PATHS, "errors", "forecast"]}
    for short, real in biocount.PUBLIC_PATHS.items():
        old, new = importlib.import_module(f"biocount.{short}"), importlib.import_module(f"biocount.{real}")
        assert old is new and getattr(biocount, short) is new, short
    from biocount.contract import ModalityData
    from biocount.testing import EncoderContract  # noqa: F401

    assert ModalityData.__module__ == "biocount.host.contract"


@pytest.mark.parametrize("argv", [["--help"], ["plugins", "list"], ["plugins", "list", "--json"]])
def test_cli_start_up_imports_neither_torch_nor_scanpy(argv):
    code = (
        "import sys\n"
        "from biocount.cli import cli\n"
        f"try:\n    cli({argv!r}, prog_name='biocount')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('torch', 'scanpy', 'anndata', 'statsmodels', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr


def test_import_biocount_is_light():
    code = "import sys, biocount\nassert 'torch' not in sys.modules and 'scanpy' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _builtin_names() -> set[str]:
    """Names of the components the built-in plugins and core register (what a literal may not hard-wire)."""
    from biocount.host.plugins import load_host

    host = load_host()
    names = {c.spec.name for c in host.components("forecaster")}
    names |= {c.spec.name for c in host.components("encoder")} | {c.spec.modality for c in host.components("encoder")}
    return {n for n in names if n}


def _string_literals(path: Path):
    """String constants outside docstrings, with line numbers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


# defaults.py names the defaults; _builtins.py registers core's own components; the example data name
# their modalities
ALLOWED = {"defaults.py", "_builtins.py", "datasets.py", "simulators.py"}


def test_core_names_builtin_plugins_only_in_its_defaults():
    names = _builtin_names()
    assert {"arima", "lstm", "naive", "rna", "protein", "tabular"} <= names
    bad = [f"{p.relative_to(ROOT)}:{line} '{text}'"
           for p in (ROOT / "core" / "biocount").rglob("*.py") if p.name not in ALLOWED
           for line, text in _string_literals(p) if text in names]
    assert bad == [], "use biocount.defaults instead of naming a built-in plugin: " + ", ".join(bad)


def test_no_function_in_core_is_over_60_lines():
    """Units stay readable: a function's body (its docstring aside) fits on a screen."""
    long = []
    for path in (ROOT / "core" / "biocount").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                has_doc = isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                start = body[1].lineno if has_doc and len(body) > 1 else body[0].lineno
                if node.end_lineno - start + 1 > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []


def test_the_engine_reads_as_its_stages():
    import inspect

    from biocount import engine

    source = inspect.getsource(engine.run)
    body = source.split('"""')[2]  # after the docstring
    assert len(body.strip().splitlines()) <= 40
    stages = ["resolve(", "read_study(", "split_study(", "encode_study(", "align_study(", "backtest(", "run_info("]
    assert [source.index(s) for s in stages] == sorted(source.index(s) for s in stages)  # in the flow's order
