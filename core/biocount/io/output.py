"""The output folder, written so that nothing is ever lost.

Guarantees (docs/cli.md, "What biocount guarantees"; each has a test in tests/test_outputs.py):

- the folder is built under a temporary name beside ``out`` and renamed into place only when complete,
  so a reader never sees a half-written result;
- an existing ``out`` is refused before any work (exit 2) unless ``--overwrite``, and ``--overwrite``
  replaces only a folder biocount wrote (it carries the marker file ``MARKER``); anything else, ``.``
  or a data folder, is refused;
- concurrent runs to one ``out`` are serialised by a lock on the folder that holds it: the second finds the folder
  and fails with exit 2 (or replaces it, with ``--overwrite``); no run's result disappears while the
  run reports success;
- the swap of an old folder for a new one cannot be cut in half by Ctrl-C (signals are held for the two
  renames); temporary folders of runs that died (SIGKILL, power loss) are recognised by their process
  id and cleaned up, and a swapped-out old folder is put back, by the next run writing beside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from biocount.errors import BiocountInputError

MARKER = ".biocount-run"  # in every folder biocount writes; --overwrite replaces only such folders


def _where(out: Path) -> str:
    return f"--out {out}"


def check(out: str | Path, *, overwrite: bool) -> Path:
    """Refuse an output folder before any work: exists without --overwrite, or is not biocount's."""
    out = Path(out)
    if out.resolve() == Path.cwd().resolve() or out.resolve() == Path(out.resolve().anchor):
        raise BiocountInputError(f"{_where(out)}: that is the current folder (or the root); name a new folder for "
                                 "the results, e.g. --out biocount-out")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise BiocountInputError(f"{_where(out)}: exists and is not a folder; choose another --out")
        if not overwrite:
            raise BiocountInputError(f"{_where(out)}: the folder exists; pass --overwrite to replace it or choose "
                                     "another --out")
        if not (out / MARKER).is_file():
            raise BiocountInputError(f"{_where(out)}: the folder was not written by biocount (no {MARKER} in it), "
                                     "so --overwrite will not delete it; choose another --out")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BiocountInputError(f"{_where(out)}: {parent} is not a folder; choose another --out")
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise BiocountInputError(f"{_where(out)}: cannot write in {parent} (permission denied); choose a folder "
                                 "you can write to")
    return out


def write_file(path: Path, text: str) -> Path:
    """Replace ``path`` by ``text`` atomically: written to a new file created exclusively beside it
    (``tempfile.mkstemp``: O_CREAT | O_EXCL, so a symlink or file planted at a temporary name is never
    followed or overwritten), then renamed over ``path`` (a symlink there is replaced, not followed)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(out: Path) -> Iterator[tuple[str, Path]]:
    """Temporary folders beside ``out`` left by runs whose process is gone: ("partial" | "old", path)."""
    yield from ((kind, path) for kind, name, path in _dead_runs(out.parent) if name == out.name)


def _dead_runs(parent: Path) -> Iterator[tuple[str, str, Path]]:
    """("partial" | "old", the output's name, path) for every temporary folder in ``parent`` of a run whose
    process is gone. Only real folders: a symlink planted at such a name is never followed or removed."""
    pattern = re.compile(r"^\.(.+)\.(partial|old)-(\d+)-")
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        m = pattern.match(entry.name)
        if (m and int(m.group(3)) != os.getpid() and not _alive(int(m.group(3))) and entry.is_dir()
                and not entry.is_symlink()):
            yield m.group(2), m.group(1), entry


def recover(out: Path) -> list[str]:
    """Clean up after dead runs; put back an old folder a dead run had swapped out. Returns what was done."""
    done = []
    for kind, path in sorted(_stale(out), key=lambda x: x[0] != "old"):  # restore before deleting
        old = path / out.name
        if kind == "old" and old.is_dir() and not old.is_symlink() and not out.exists() and not out.is_symlink():
            os.rename(old, out)
            done.append(f"restored {out} from the swap of a run killed while replacing it")
        shutil.rmtree(path, ignore_errors=True)  # out complete (the swap had finished): the old copy goes
    return done


def recover_beside(out: Path) -> list[str]:
    """At the start of any run: put back every result in ``out``'s folder that a run killed in the middle of
    its --overwrite swap left only in ``.NAME.old-PID-*/NAME`` (whatever --out this run writes), under the
    folder's lock. Returns one line per folder restored."""
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        return []
    names = sorted({name for kind, name, _ in _dead_runs(parent) if kind == "old"})
    done: list[str] = []
    if not names:
        return done
    with _lock(parent / names[0]):  # the lock is on the folder itself
        for name in names:
            done += recover(parent / name)
    return done


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the parent folder itself (flock on a directory: no lock file is left behind)."""
    import fcntl

    fd = os.open(out.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT / SIGTERM / SIGHUP for a few renames: they are recorded and delivered right after.

    A Python-level handler, not a signal mask: with other threads alive (torch, BLAS, loky) a masked
    signal would be taken by another thread and still interrupt this one. Off the main thread Python
    cannot install handlers, and the renames run unprotected.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if received:
            signal.raise_signal(received[0])


def write_folder(out: str | Path, fill: Callable[[Path], None], *, overwrite: bool) -> Path:
    """Build the folder with ``fill(tmp)`` and move it to ``out`` atomically (see the module docstring)."""
    out = Path(out)
    check(out, overwrite=overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-"
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{tag}", dir=out.parent))
    except OSError as exc:
        raise BiocountInputError(f"{_where(out)}: cannot create it ({exc.strerror}); choose a folder you can "
                                 "write to") from None
    try:
        fill(tmp)
        (tmp / MARKER).write_text(json.dumps({"written_by": "biocount", "pid": os.getpid()}) + "\n")
        with _lock(out):
            recover(out)
            check(out, overwrite=overwrite)  # again, under the lock: another run may have finished meanwhile
            with _signals_held():
                trash = None
                if out.exists():
                    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{tag}", dir=out.parent))
                    os.rename(out, trash / out.name)
                try:
                    os.rename(tmp, out)
                except BaseException:
                    if trash is not None:
                        os.rename(trash / out.name, out)  # roll back: the old result stays
                        shutil.rmtree(trash, ignore_errors=True)
                    raise
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BiocountInputError(f"{_where(out)}: could not write the results ({exc.strerror or exc}); nothing was "
                                 "changed: free some space or choose another --out") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
