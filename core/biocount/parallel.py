"""Where per-series work runs: in this process, over loky worker processes (``--jobs``), or on a Dask
cluster (``--dask``).

Plugins call :func:`map_series` and never import Dask: the engine enters :func:`dask_cluster` for a
run with ``--dask`` and every :func:`map_series` inside it goes to that cluster. The same pure
function runs in every mode, each worker on one BLAS thread, so results are bit-identical to the
serial run (tests/test_distributed.py). ``dask.distributed`` is the optional extra
``biocount[distributed]``, imported only when a run asks for it.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from biocount.errors import BiocountError, BiocountInputError

_CLIENT: ContextVar[Any] = ContextVar("biocount_dask_client", default=None)
# Chunks of series, not one task per tiny series (Dask costs ~1 ms per task), yet enough per worker that
# a slow series does not leave the others idle at the end: 2,000 series on 2 workers -> 100 tasks of 20.
TASKS_PER_WORKER = 50
CONNECT_TIMEOUT = "30s"  # to reach a running scheduler (--dask tcp://...)
RETRIES = 2  # a task whose worker died (or that raised) runs again this many times before the run stops
SPEC = re.compile(r"^(local(:[1-9]\d*)?|auto|(tcp|tls|ucx|inproc)://\S+)$")
_ONE_THREAD = False  # this process (a Dask worker) has its BLAS / OpenMP held to one thread
_BLAS_ONE = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def check_jobs(n: int) -> int:
    """A process count: N >= 1, or -1 for the cores available (0 runs nothing)."""
    if n == 0:
        raise ValueError("0 processes cannot run anything; use 1 (in this process), N, or -1 (all cores)")
    return n


def check_spec(spec: str) -> str:
    """``local``, ``local:N``, ``auto`` ($DASK_SCHEDULER_ADDRESS, else local) or a scheduler address."""
    if not SPEC.match(spec):
        raise ValueError(f"'{spec}' is not a Dask cluster; use local, local:N (N workers), auto "
                         "($DASK_SCHEDULER_ADDRESS, else local) or a scheduler address such as tcp://host:8786")
    return spec


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise BiocountInputError("--dask needs dask.distributed, which is not installed; install the extra: "
                                 "pip install 'biocount[distributed]'") from None
    return distributed


@contextlib.contextmanager
def dask_cluster(spec: str | None, *, log: Callable[[str], None] = lambda msg: None) -> Iterator[Any]:
    """Run the block's :func:`map_series` calls on a Dask cluster (``spec`` None: in this process).

    ``local[:N]`` starts a ``LocalCluster`` of N single-threaded worker processes (default: the cores
    available) and closes it after the block; an address (or ``auto`` with $DASK_SCHEDULER_ADDRESS)
    connects to a running cluster, whose workers need biocount and the run's plugins installed.
    """
    if spec is None:
        yield None
        return
    import logging

    distributed = _import_distributed()
    from dask.config import set as dask_config
    address = os.environ.get("DASK_SCHEDULER_ADDRESS") if spec == "auto" else None
    with contextlib.ExitStack() as stack:
        if spec.startswith("local") or (spec == "auto" and not address):
            n = _workers(spec)
            # the workers' statistical profiler samples every task's stack every 10 ms: measurably slower
            # series fits on a small machine, for a dashboard nobody watches here
            stack.enter_context(dask_config({"distributed.worker.profile.enabled": False}))
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                silence_logs=logging.ERROR))
            client = stack.enter_context(distributed.Client(cluster))
            log(f"Dask: a local cluster of {n} worker processes")
        else:
            try:
                client = stack.enter_context(distributed.Client(address or spec, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                raise BiocountInputError(f"--dask {address or spec}: no Dask scheduler answers there ({exc}); "
                                         "start one (dask scheduler) or use --dask local") from None
            except Exception as exc:  # an address Dask cannot use from here (inproc://, tls:// without credentials)
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise BiocountInputError(f"--dask {address or spec}: cannot connect ({why}); use local[:N], a "
                                         "scheduler's tcp://HOST:PORT, or auto with $DASK_SCHEDULER_ADDRESS") from None
            log(f"Dask: {len(client.scheduler_info()['workers'])} workers at {address or spec}")
        token = _CLIENT.set(client)
        try:
            yield client
        finally:
            _CLIENT.reset(token)


def _workers(spec: str) -> int:
    """N of ``local:N`` (the cores available for plain ``local`` or ``auto``)."""
    if ":" not in spec:
        return cores()
    text = spec.split(":", 1)[1]
    if not text.isdigit() or int(text) < 1:
        raise BiocountInputError(f"--dask {spec}: the number of workers must be a positive whole number, e.g. "
                                 "--dask local:4")
    return int(text)


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def active_client() -> Any:
    """The Dask client of the enclosing :func:`dask_cluster`, or None."""
    return _CLIENT.get()


def map_series(fn: Callable[..., Any], jobs: Sequence[tuple], *, n_jobs: int = 1,
               labels: Sequence[str] | None = None, shared: tuple = ()) -> list[Any]:
    """``fn(*shared, *job)`` for every job, results in the order of ``jobs``.

    Parameters
    ----------
    fn
        A module-level function (it travels to worker processes by name), pure: same job, same result.
    jobs
        Argument tuples, typically one per series; keep them small (arrays, not fitted objects).
    n_jobs
        Worker processes when no Dask cluster is active: 1 runs here, -1 uses every core (loky).
    labels
        A name per job (the series), used to say which series a failed Dask task held.
    shared
        Arguments every job needs (e.g. a study's arrays): sent to each Dask worker once, not per job.

    Returns
    -------
    ``[fn(*shared, *job) for job in jobs]``, computed on the active Dask cluster (in chunks of jobs),
    over loky processes, or in this process; each worker uses one BLAS thread, so every mode gives the
    same numbers.
    """
    jobs = list(jobs)
    client = active_client()
    if client is not None and len(jobs) > 1:
        return _dask_map(client, fn, jobs, labels, shared)
    workers = min(cores() if n_jobs == -1 else n_jobs, len(jobs))
    if workers <= 1:
        return [fn(*shared, *job) for job in jobs]
    return submit_series(fn, jobs, n_jobs=workers, shared=shared)()


def submit_series(fn: Callable[..., Any], jobs: Sequence[tuple], *, n_jobs: int,
                  shared: tuple = ()) -> Callable[[], list[Any]]:
    """Start ``fn(*shared, *job)`` for every job on ``n_jobs`` loky worker processes (one BLAS thread each)
    and return at once: the returned function waits for the results, in the order of ``jobs``. Meanwhile this
    process may work on something else, but must not change the arguments: they are pickled in a
    background thread."""
    jobs = [(*shared, *job) for job in jobs]
    from joblib.externals.loky import get_reusable_executor

    # loky restarts a worker whose memory grew by 300 MB since its first task, and warns of a "memory leak":
    # a worker whose first task was an ARIMA series grows that much once, importing torch for an LSTM member.
    # The restart is harmless (the result was returned; the new worker counts torch in from the start).
    warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor",
                            category=UserWarning)

    executor = get_reusable_executor(max_workers=n_jobs, initializer=_exit_with_parent, initargs=(os.getpid(),),
                                     env=_BLAS_ONE)
    futures = [executor.submit(fn, *job) for job in jobs]

    def results() -> list[Any]:
        try:
            return [future.result() for future in futures]
        except BaseException:  # as Executor.map does: what has not started yet never will
            for future in futures:
                future.cancel()
            raise

    return results


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple], *shared: Any) -> list[Any]:
    global _ONE_THREAD
    if not _ONE_THREAD:  # once per worker process (threadpoolctl's call costs ~0.1 s): what a Nanny's
        from threadpoolctl import threadpool_limits  # environment already asks, made sure of for any worker

        threadpool_limits(limits=1)
        _ONE_THREAD = True
    return [fn(*shared, *job) for job in chunk]


def _dask_map(client: Any, fn: Callable[..., Any], jobs: list[tuple], labels: Sequence[str] | None,
              shared: tuple) -> list[Any]:
    """Contiguous chunks, up to ``TASKS_PER_WORKER`` per worker, each retried ``RETRIES`` times; a chunk that
    still fails stops the run naming its series (nothing is dropped silently)."""
    import numpy as np

    workers = max(len(client.scheduler_info()["workers"]), 1)
    bounds = np.array_split(np.arange(len(jobs)), min(len(jobs), TASKS_PER_WORKER * workers))
    chunks = [[jobs[i] for i in b] for b in bounds]
    tag = f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex[:8]}"
    common = client.scatter(list(shared), broadcast=True) if shared else []  # once to every worker
    futures = [client.submit(_run_chunk, fn, chunk, *common, key=f"{tag}-{i}", pure=False, retries=RETRIES)
               for i, chunk in enumerate(chunks)]
    out: list[Any] = []
    for b, future in zip(bounds, futures, strict=True):
        try:
            out.extend(future.result())
        except Exception as exc:
            names = [str(labels[i]) for i in b] if labels is not None else [f"job {i}" for i in b]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            client.cancel(futures)
            raise BiocountError(f"Dask task {future.key} ({len(names)} series: {shown}) failed after {RETRIES} "
                                f"retries: {type(exc).__name__}: {exc}") from exc
    return out


def _exit_with_parent(parent: int) -> None:
    """loky worker initializer: a worker whose parent died (SIGKILL) exits within half a second instead
    of finishing a study nobody will read (loky would otherwise keep it until its task ends)."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="biocount-parent-watch").start()
