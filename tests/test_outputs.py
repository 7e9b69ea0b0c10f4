"""Nothing lost: atomic output folders, --overwrite only of biocount's own folders, concurrent runs,
interrupted swaps, runs that died, and worker processes that die with their parent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from biocount import BiocountInputError
from biocount.io.output import MARKER, check, write_folder


def table(path: Path) -> Path:
    rows = ["series_id,time,feature,value"] + [f"s{s},{t},x,{(s * 7 + t * 3) % 11 + 1}" for s in range(3)
                                                for t in range(20)]
    path.write_text("\n".join(rows) + "\n")
    return path


def biocount(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "biocount", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def fill(text: str):
    return lambda tmp: (tmp / "run.json").write_text(text)


def test_concurrent_runs_to_one_folder_lose_nothing(tmp_path):
    data = table(tmp_path / "t.csv")
    out = tmp_path / "R"
    procs = [biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out,
                      "--seed", seed) for seed in (1, 2)]
    codes = [p.wait(timeout=300) for p in procs]
    outputs = [p.stdout.read() for p in procs]
    assert sorted(codes) in ([0, 2], [2, 0]), outputs
    winner = codes.index(0) + 1
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == winner
    loser = outputs[codes.index(2)]
    assert "the folder exists" in loser and "Traceback" not in loser
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".R.")]  # no temp folders left


def test_overwrite_replaces_only_a_folder_biocount_wrote(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "study.csv").write_text("precious\n")
    with pytest.raises(BiocountInputError, match="not written by biocount"):
        write_folder(data_dir, fill("{}"), overwrite=True)
    assert (data_dir / "study.csv").read_text() == "precious\n"
    out = write_folder(tmp_path / "R", fill('{"n": 1}'), overwrite=False)
    assert (out / MARKER).is_file()
    write_folder(out, fill('{"n": 2}'), overwrite=True)
    assert json.loads((out / "run.json").read_text()) == {"n": 2}


def test_the_current_folder_is_never_an_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.csv").write_text("x\n")
    with pytest.raises(BiocountInputError, match="current folder"):
        check(".", overwrite=True)
    assert (tmp_path / "keep.csv").exists()


def test_an_interrupt_during_the_swap_keeps_the_old_result(tmp_path, monkeypatch):
    out = write_folder(tmp_path / "R", fill('{"n": 1}'), overwrite=False)
    real = os.rename
    calls = []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # between moving the old folder away and moving the new one in
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(os, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_folder(out, fill('{"n": 2}'), overwrite=True)
    monkeypatch.setattr(os, "rename", real)
    assert json.loads((out / "run.json").read_text()) == {"n": 1}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".R.")]


def test_signals_are_held_during_the_swap(tmp_path, monkeypatch):
    """A SIGINT arriving between the two renames is delivered only after both."""
    import threading

    out = write_folder(tmp_path / "R", fill('{"n": 1}'), overwrite=False)
    real, seen = os.rename, []

    def rename(src, dst):
        real(src, dst)
        if len(seen) == 0:
            seen.append("first")
            # to the main thread: os.kill lets the kernel pick any thread (torch's, loky's), whose handler may
            # run after the swap, and this test then failed now and then ("DID NOT RAISE")
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # held until the swap is done
            seen.append("survived")

    monkeypatch.setattr(os, "rename", rename)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test left installed
    try:
        with pytest.raises(KeyboardInterrupt):
            write_folder(out, fill('{"n": 2}'), overwrite=True)
    finally:
        signal.signal(signal.SIGINT, before)
    assert seen == ["first", "survived"]
    assert json.loads((out / "run.json").read_text()) == {"n": 2}


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_killed_run_are_cleaned_and_the_old_result_restored(tmp_path):
    pid = dead_pid()
    old = tmp_path / f".R.old-{pid}-abc" / "R"
    old.mkdir(parents=True)
    (old / MARKER).write_text("{}")
    (old / "run.json").write_text('{"n": "old"}')
    partial = tmp_path / f".R.partial-{pid}-def"
    partial.mkdir()
    (partial / "metrics.csv").write_text("half")
    # a run killed between its two renames: R is gone, the old result sits in .R.old-*
    with pytest.raises(BiocountInputError, match="the folder exists"):
        write_folder(tmp_path / "R", fill('{"n": "new"}'), overwrite=False)
    assert json.loads((tmp_path / "R" / "run.json").read_text()) == {"n": "old"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]


@pytest.mark.parametrize("delay", [0.5, 1.5, 2.5, 3.5, 5.0])
def test_a_sigkilled_run_leaves_nothing_the_next_run_does_not_clean(tmp_path, delay):
    """Killed at some stage of an --overwrite run: the old result is intact or the new one complete, and
    the next run leaves no temporary folder behind."""
    data = table(tmp_path / "t.csv")
    out = tmp_path / "R"
    first = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out,
                     "--seed", 1)
    assert first.wait(timeout=300) == 0, first.stdout.read()
    proc = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive,arima", "--quiet",
                    "--out", out, "--overwrite", "--seed", 2)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    restored = out.exists() or [p for p in tmp_path.iterdir() if p.name.startswith(".R.old-")]
    assert restored, "the old result is gone"
    # the next run of any kind (here: to another --out) puts a swapped-out R back before it reads anything
    other = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--out", tmp_path / "S")
    text = other.stdout.read()
    assert other.wait(timeout=300) == 0, text
    assert out.is_dir(), "the next run did not restore the old result"
    lines = text.splitlines()
    if any("restored" in line for line in lines):
        assert text.index("restored") < text.index("reading data")
    shutil.rmtree(tmp_path / "S")
    seed = json.loads((out / "run.json").read_text())["config"]["seed"]
    assert seed in (1, 2) and (out / "metrics.csv").is_file() and (out / MARKER).is_file()
    done = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out,
                    "--overwrite", "--seed", 3)
    assert done.wait(timeout=300) == 0, done.stdout.read()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "t.csv"]
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 3


def test_an_existing_output_is_refused_before_any_work(tmp_path):
    data = table(tmp_path / "t.csv")
    out = tmp_path / "R"
    out.mkdir()
    proc = biocount("run", "--data", data, "--modalities", "t=tabular", "--out", out)
    assert proc.wait(timeout=60) == 2
    text = proc.stdout.read()
    assert "the folder exists" in text and "fitting" not in text and "reading data" not in text


def test_arima_workers_die_with_their_parent(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(
        "import numpy as np, time\n"
        "from biocount import ModalityData\nfrom biocount.study.align import align\nfrom biocount.forecast import ForecastTask\n"
        "from biocount_arima.forecaster import ArimaForecaster\nfrom biocount_arima.options import ArimaOptions\n"
        "rng = np.random.default_rng(0); S, T = 40, 80\n"
        "y = np.cumsum(rng.normal(size=(S, T, 1)), axis=1)\n"
        "d = ModalityData(series=[f's{i}' for i in range(S)], times=np.arange(T, dtype=float), features=['x'],"
        " values=y, meta={'modality': 'x'})\n"
        "data = align({'x': d}, target='x')\n"
        "task = ForecastTask(data=data, horizon=2, train_end=np.full(S, 40))\n"
        "origins = np.array([(s, t) for s in range(S) for t in range(40, 78)])\n"
        "ArimaForecaster(ArimaOptions(n_jobs=2, reselect_growth=0)).fit(task).predict(task, origins)\n")
    proc = subprocess.Popen([sys.executable, str(script)])

    def workers() -> list[int]:
        listing = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        kids = [int(p) for p in listing.read_text().split()] if listing.exists() else []
        return [k for k in kids if b"LokyProcess" in Path(f"/proc/{k}/cmdline").read_bytes()]

    deadline = time.time() + 60
    while time.time() < deadline and len(workers()) < 2:
        time.sleep(0.5)
    started = workers()
    assert len(started) == 2, "the worker processes did not start"
    time.sleep(2)  # let them get to work
    proc.kill()
    proc.wait()
    time.sleep(5)
    alive = [w for w in started if Path(f"/proc/{w}").exists() and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"]
    assert alive == [], f"workers {alive} outlived their parent by 5 s"


def _kill_between_the_renames(out: Path) -> None:
    """A real process replacing ``out`` with --overwrite, SIGKILLed right after its first rename (the old
    folder moved aside, the new one not yet in place): the worst moment of the swap."""
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nimport biocount.io.output as o\n"
        "real = os.rename\ncalls = []\n"
        "def rename(a, b):\n    real(a, b)\n    calls.append(1)\n"
        "    if len(calls) == 1: os.kill(os.getpid(), signal.SIGKILL)\n"
        "o.os.rename = rename\n"
        "o.write_folder(Path(sys.argv[1]), lambda tmp: (tmp / 'run.json').write_text('new'), overwrite=True)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not out.exists() and [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.old-")]


def test_a_run_killed_mid_swap_is_restored_at_the_start_of_the_next_run_of_any_kind(tmp_path):
    data = table(tmp_path / "t.csv")
    out = tmp_path / "R"
    first = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out)
    assert first.wait(timeout=300) == 0, first.stdout.read()
    kept = (out / "run.json").read_text()
    _kill_between_the_renames(out)
    # a run to another --out in the same folder brings R back before it reads anything
    other = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--out", tmp_path / "S")
    text = other.stdout.read()
    assert other.wait(timeout=300) == 0, text
    lines = text.splitlines()
    restored = next(i for i, line in enumerate(lines) if "restored" in line)
    assert restored < next(i for i, line in enumerate(lines) if "reading data" in line)
    assert f"biocount: restored {out} from the swap of a run killed while replacing it" in lines[restored]
    assert (out / "run.json").read_text() == kept
    # the same --out without --overwrite: restored, then refused before any work (exit 2, one line)
    _kill_between_the_renames(out)
    again = biocount("run", "--data", data, "--modalities", "t=tabular", "--out", out)
    text = again.stdout.read()
    assert again.wait(timeout=60) == 2 and "the folder exists" in text and "reading data" not in text, text
    assert (out / "run.json").read_text() == kept
    # biocount report on the missing folder restores it too, then rebuilds its report
    _kill_between_the_renames(out)
    rep = biocount("report", out)
    text = rep.stdout.read()
    assert rep.wait(timeout=60) == 0 and "restored" in text and (out / "report.html").is_file(), text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R", "S", "t.csv"]


def test_a_planted_symlink_at_a_temporary_path_is_never_followed(tmp_path):
    """The report's temporary file and report.html itself, and folders planted at the names of a dead run's
    temporary folders: nothing outside OUT is written, moved or deleted."""
    data = table(tmp_path / "t.csv")
    out = tmp_path / "R"
    first = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out)
    assert first.wait(timeout=300) == 0, first.stdout.read()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / ".report.html.partial").symlink_to(victim)
    (out / "report.html").unlink()
    (out / "report.html").symlink_to(victim)
    rep = biocount("report", out)
    assert rep.wait(timeout=60) == 0, rep.stdout.read()
    assert victim.read_text() == "precious"
    assert (out / "report.html").is_file() and not (out / "report.html").is_symlink()
    # folders outside, planted under a dead run's temporary names beside OUT
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "R").mkdir(parents=True)
    (elsewhere / "R" / "keep.txt").write_text("mine")
    pid = dead_pid()
    (tmp_path / f".R.old-{pid}-x").symlink_to(elsewhere)
    (tmp_path / f".R.partial-{pid}-y").symlink_to(elsewhere)
    shutil.rmtree(out)
    run = biocount("run", "--data", data, "--modalities", "t=tabular", "--models", "naive", "--quiet", "--out", out)
    assert run.wait(timeout=300) == 0, run.stdout.read()
    assert (elsewhere / "R" / "keep.txt").read_text() == "mine"  # not moved into OUT, not deleted
    assert json.loads((out / "run.json").read_text())["config"]["models"] == ["naive"]
