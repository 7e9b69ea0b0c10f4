"""report.html: written with every run, self-contained, every section present, rebuilt identically."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from biocount.cli import cli
from biocount.report.html import SECTIONS

FAST = "arima:\n  reselect_growth: null\n"  # the LSTM as shipped: the importance test needs one that learned


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    (root / "run.yaml").write_text("quiet: true\noptions:\n  " + FAST.replace("\n", "\n  ").rstrip() + "\n")
    out = root / "out"
    result = CliRunner().invoke(cli, ["run", "--modalities", "rna,protein", "--config", str(root / "run.yaml"),
                                      "--ablate-modalities", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_every_run_writes_a_self_contained_report(demo_run):
    page = (demo_run / "report.html").read_text()
    assert "report.html" in {p.name for p in demo_run.iterdir()}
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    # offline: nothing to fetch, and a policy that forbids fetching anything
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only the SVGs' own clip paths
    assert "default-src 'none'" in page
    assert page.count("<svg") >= 6 and 'role="img"' in page  # charts, each labelled for screen readers
    assert len(page.encode()) < 5e6
    assert page.count("first test origin") >= 6  # fan charts draw the history before the test part too


def test_report_states_the_facts_of_run_json(demo_run):
    page = (demo_run / "report.html").read_text()
    info = json.loads((demo_run / "run.json").read_text())
    assert f"headline forecaster</td><td>{info['headline']}" in page
    for note in info["notes"]:
        assert note.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#x27;") in page
    assert "lstm[protein]" in page  # the ablation is shown beside the permutation importance


def test_biocount_report_rebuilds_the_same_page(demo_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(demo_run, copy)
    (copy / "report.html").unlink()
    result = CliRunner().invoke(cli, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").read_bytes() == (demo_run / "report.html").read_bytes()  # deterministic
    (copy / "run.json").write_text('{"target": ')  # cut short
    bad = CliRunner().invoke(cli, ["report", str(copy)])
    assert bad.exit_code == 2 and "cannot read its run files (JSONDecodeError" in bad.output
    (copy / "run.json").unlink()
    bad = CliRunner().invoke(cli, ["report", str(copy)])
    assert bad.exit_code == 2 and "not a biocount run folder (no run.json)" in bad.output


def test_rendering_a_report_leaves_no_figure_open(demo_run):
    """Every figure the page draws is closed once it is SVG: a notebook that writes reports run after run
    does not pile up matplotlib figures (the PIT section used to open one it never drew on)."""
    import matplotlib.pyplot as plt

    from biocount.report.html import render

    before = set(plt.get_fignums())
    render(demo_run)
    assert set(plt.get_fignums()) == before


def test_a_failing_report_keeps_the_results(demo_run, tmp_path, monkeypatch, caplog):
    import biocount.report.html

    def broken(folder):
        raise RuntimeError("chart went wrong")

    monkeypatch.setattr(biocount.report.html, "build", broken)
    result = CliRunner().invoke(cli, ["run", "--models", "naive", "--quiet", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert {"metrics.csv", "run.json"} <= {p.name for p in (tmp_path / "o").iterdir()}
    assert not (tmp_path / "o" / "report.html").exists()
    assert "report.html could not be built (RuntimeError: chart went wrong)" in caplog.text


def test_the_demo_s_rna_drives_its_protein_forecasts(demo_run):
    """The demo's truth: protein follows its source mRNA. Shuffling rna between donors must hurt, with an
    interval over repeats that excludes zero; the cell-type composition carries no such signal."""
    importance = json.loads((demo_run / "run.json").read_text())["importance"]["lstm"]
    assert importance["rna"]["low"] > 0 and importance["rna"]["delta_mse"] > 0.05
    assert importance["rna"]["delta_mse"] > 5 * abs(importance["rna_celltypes"]["delta_mse"])
    ig = json.loads((demo_run / "run.json").read_text())["attributions"]["lstm"]
    assert ig["shares"]["rna"] > 3 * ig["shares"]["rna_celltypes"] and ig["completeness_error"] < 0.02
    page = (demo_run / "report.html").read_text()
    assert "integrated gradients" in page and page.count("<svg") >= 10


def _chromium() -> str | None:
    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def test_the_report_renders_in_a_real_browser(demo_run, tmp_path):
    """Headless Chromium: the page loads with no console error and no request, every section is in the
    DOM, and the screenshot is not blank. CI installs Debian's chromium and sets BIOCOUNT_REQUIRE_BROWSER."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("BIOCOUNT_REQUIRE_BROWSER"):
            pytest.fail("BIOCOUNT_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
        pytest.skip("no chromium on this machine (CI installs it: apt-get install chromium)")
    page = (demo_run / "report.html").resolve()
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'u'}",
             "--virtual-time-budget=3000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout, section
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console  # a blocked request (CSP) or a script error would be logged here
    shot = tmp_path / "report.png"
    done = subprocess.run([*flags, "--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}",
                           page.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10 and len(np.unique(pixels)) > 20  # text and charts, not a blank page
    keep = os.environ.get("BIOCOUNT_SCREENSHOT_DIR")
    if keep:  # CI keeps the screenshot for the record
        shutil.copy(shot, keep)
        print(f"screenshot: {keep}/report.png ({(demo_run / 'report.html').stat().st_size / 1e6:.2f} MB report)")


def test_the_demo_scores_section_renders_in_a_real_browser(demo_run, tmp_path, section_screenshot):
    page = (demo_run / "report.html").read_text()
    from conftest import section_of

    section = section_of(page, "scores")
    assert "PIT histograms" in section and "CRPS skill vs" in section and section.count("<svg") == 2
    section_screenshot(demo_run / "report.html", "scores", tmp_path)


def test_names_that_look_like_mathtext_are_drawn_as_text(tmp_path):
    """A series and a feature named with matplotlib mathtext (an unknown macro): the report is written, the
    names appear as typed, and the last line lists what the folder holds."""
    rows = ["series_id,time,feature,value"] + [f"{s},{t},{f},{(i * 7 + t * 3) % 11 + 1}"
                                                for i, s in enumerate([r"$\undefinedmacro$", "b"]) for t in range(20)
                                                for f in [r"$\alpha_{x$", "y"]]
    data = tmp_path / "t.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--data", str(data), "--modalities", "t=tabular", "--models", "naive",
                                      "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert r"$\undefinedmacro$" in page and r"$\alpha_{x$" in page
    last = result.output.strip().splitlines()[-1]
    assert last == (f"wrote {out}/ (forecasts.csv, forecasts_encoded.csv, metrics.csv, observed.csv, report.html, "
                    "run.json, scores.csv)"), last


def test_the_verdict_opens_the_report_and_matches_the_tables(demo_run, tmp_path, section_screenshot):
    import pandas as pd

    info = json.loads((demo_run / "run.json").read_text())
    metrics = pd.read_csv(demo_run / "metrics.csv")
    overall = metrics[metrics.scope == "overall"].set_index("forecaster")
    best, modalities, step = info["verdict"]
    head = info["headline"]
    tough = min(info["baselines"], key=lambda b: overall.loc[b, "mse"])  # the toughest: lowest test MSE
    assert best.startswith(f"best: {head} ") and f" {tough}, the toughest baseline" in best
    assert f"test MSE {overall.loc[head, 'mse']:.3g} vs {overall.loc[tough, 'mse']:.3g}" in best
    assert f"DM p = {overall.loc[head, f'dm_{tough}_p']:.2g}" in best
    # the modality line: the LSTM with rna against its view without it, as metrics.csv scores them
    assert modalities.startswith("modalities: rna ")
    assert f"test MSE {overall.loc['lstm', 'mse']:.3g} with, {overall.loc['lstm(protein)', 'mse']:.3g} without" in modalities
    assert step.startswith("next: ")
    page = (demo_run / "report.html").read_text()
    assert page.index('<section id="verdict">') < page.index('<section id="facts">')  # first thing on the page
    assert "<pre" not in page and '{"' not in page  # no raw JSON anywhere
    section_screenshot(demo_run / "report.html", "verdict", tmp_path)
