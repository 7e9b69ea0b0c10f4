"""Shared fixtures. Plugins in tests are real distributions: a throwaway *.dist-info on sys.path."""

from __future__ import annotations

import os
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["biocount.host.testing"]


@pytest.fixture
def child_venv():
    """Make a virtual environment that sees the packages of the one running the tests.

    ``system_site_packages=True`` would expose the *base* interpreter, not this venv (a newcomer's
    set-up): instead the child's site-packages gets a .pth that adds this environment's site
    directories, after its own, with their .pth files processed (editable installs included).
    """
    import site
    import sys
    import sysconfig
    import venv

    def make(path: Path) -> Path:
        venv.create(path, with_pip=False)
        py = path / "bin" / "python"
        child_site = Path(sysconfig.get_path("purelib", vars={"base": str(path), "platbase": str(path)}))
        parents = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib")]) if Path(p).is_dir()]
        line = "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents)
        (child_site / "_biocount_parent_env.pth").write_text(line + "\n")
        assert py.exists(), sys.executable
        return py

    return make


@dataclass
class FakeDist:
    name: str
    module: str
    marker: Path  # written when the plugin module is imported


@pytest.fixture
def make_dist(tmp_path, monkeypatch):
    """Install a tiny plugin distribution into a temp folder on sys.path; returns a FakeDist."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))

    def make(name: str, body: str = "", *, version: str = "1.0", ep_name: str | None = None,
             target: str | None = None) -> FakeDist:
        module = f"bcplug_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        marker = tmp_path / f"{module}.imported"
        info = root / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[biocount]\n{ep_name or name} = {target or module}\n")
        code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('imported')\n"
        (root / f"{module}.py").write_text(code + textwrap.dedent(body).replace("MODULE", module))
        return FakeDist(name, module, marker)

    return make


@pytest.fixture
def registry_file(tmp_path):
    """Write a user registry layered over the default; returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / f"registry-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


# A plugin registering one encoder for modality 'metabolomics', whose factory resolves (itself).
ENCODER_PLUGIN = """
from biocount import EncoderSpec, hookimpl

class Enc:
    def __init__(self, options):
        self.options = options

@hookimpl
def biocount_register_encoders(register):
    register(EncoderSpec(name="lcms", modality="metabolomics", factory="MODULE:Enc", api="1.0"))
"""


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The published tables in ../shared/data. CI lays shared/ beside the clone and requires them (a missing
    folder fails there); a plain clone without it skips the real-data tests, saying why."""
    import os

    if not SHARED.is_dir():
        message = f"{SHARED} is missing: the real-data tests need the shared/ folder beside the repo"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI requires it)")
        pytest.skip(message + " (skipped outside CI)")
    return SHARED


@pytest.fixture(scope="session")
def demo_study():
    from biocount.io.datasets import demo

    return demo(seed=0)


@pytest.fixture
def demo_modalities(demo_study):
    """The demo as {modality: AnnData} with canonical obs columns (a fresh copy per test)."""
    from biocount.io.readers import as_modalities

    return as_modalities(demo_study, where="demo")


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory, monkeypatch):
    """Tests never read or write the real ~/.config/biocount/registry.yaml."""
    monkeypatch.setenv("BIOCOUNT_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
    monkeypatch.delenv("BIOCOUNT_REGISTRY", raising=False)
    monkeypatch.delenv("BIOCOUNT_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("BIOCOUNT_STRICT_PLUGINS", raising=False)


def section_of(page: str, name: str) -> str:
    """One ``<section id=name>`` of a report page."""
    start = page.index(f'<section id="{name}">')
    return page[start: page.index("</section>", start) + len("</section>")]


@pytest.fixture
def section_screenshot():
    """Headless Chromium renders one section of a report alone (with the page's style): no console error,
    text and charts drawn, not a blank box. Skipped where there is no chromium, outside CI."""
    import shutil
    import subprocess

    import numpy as np

    def shoot(report: Path, name: str, tmp_path: Path) -> Path:
        browser = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))
                        if p), None)
        if browser is None:
            if os.environ.get("BIOCOUNT_REQUIRE_BROWSER"):
                pytest.fail("BIOCOUNT_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
            pytest.skip("no chromium on this machine (CI installs it: apt-get install chromium)")
        page = report.read_text()
        alone = tmp_path / f"{name}.html"
        alone.write_text(page[: page.index("<main>")] + "<main>" + section_of(page, name) + "</main></body></html>")
        shot = tmp_path / f"{name}.png"
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'u'}",
                 "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
        done = subprocess.run([*flags, "--window-size=1280,1600", f"--screenshot={shot}", alone.as_uri()],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
        assert not [line for line in done.stderr.splitlines() if "CONSOLE" in line]
        from PIL import Image

        pixels = np.asarray(Image.open(shot).convert("L"))
        assert pixels.std() > 10 and len(np.unique(pixels)) > 20  # text and bars, not a blank page
        keep = os.environ.get("BIOCOUNT_SCREENSHOT_DIR")
        if keep:
            shutil.copy(shot, os.path.join(keep, f"{report.parent.parent.name}-{name}.png"))
        return shot

    return shoot
