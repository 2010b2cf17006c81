"""Where a grid of independent jobs runs: this process, local worker processes, a Dask cluster
(``dask.distributed``) or SLURM (through submitit).

Every job of a grid is a cached computation, so a cluster needs only one thing from the user: a
cache folder that every worker can read and write (a shared file system), passed explicitly or
through $SCALING_UTILS_CACHE.  Results come back in the order of the inputs, whoever ran them,
and a grid that was interrupted resumes from the entries already written.

An executor is given as a string (a notebook parameter) or as an object:

- ``None`` or ``"serial"``: this process, one job after another (the default);
- ``"processes:N"``: N local worker processes (spawned; torch threads split among them, see
  :func:`worker_threads`);
- ``"dask"``: a Dask LocalCluster on this machine; ``"dask:ADDRESS"``: the scheduler of a
  running Dask cluster, e.g. ``dask:tcp://head:8786``;
- ``"slurm:PARTITION[:GPUS]"``: SLURM jobs through submitit, with GPUS per job (job logs in the
  cache's ``submitit/`` folder);
- a ``dask.distributed.Client``, a ``concurrent.futures.Executor`` or a submitit executor.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator

from .cache import add_counts, cache_dir, count_results, counting

EXECUTOR_KINDS = ("serial", "processes", "dask", "slurm")


class ExecutorError(ValueError):
    """An executor specification that cannot be used here, with the fix."""


def run_jobs(fn: Callable[[Any], Any], items: Iterable[Any], executor: Any = None) -> list:
    """``[fn(item) for item in items]``, computed by ``executor`` (see the module docstring).

    ``fn`` must be picklable (a module-level function, or a ``functools.partial`` of one) for
    every executor but the serial one. Inside :func:`~.cache.count_results` the workers' counts
    of cached results come back into the open block."""
    items = list(items)
    if executor is None or executor == "serial":
        return [fn(item) for item in items]
    if not counting():
        return _dispatch(fn, items, executor)
    counted = _dispatch(functools.partial(_counted_call, fn), items, executor)
    for _, counts in counted:
        add_counts(counts)
    return [result for result, _ in counted]


def _dispatch(fn: Callable[[Any], Any], items: list, executor: Any) -> list:
    if executor is None or executor == "serial":
        return [fn(item) for item in items]
    if isinstance(executor, str):
        with open_executor(executor) as opened:
            return _dispatch(fn, items, opened)
    if hasattr(executor, "gather") and hasattr(executor, "scheduler_info"):  # dask Client
        return executor.gather(executor.map(fn, items, pure=False))
    if hasattr(executor, "map_array"):  # submitit
        return [job.result() for job in executor.map_array(fn, items)]
    if isinstance(executor, concurrent.futures.Executor):
        return list(executor.map(fn, items))
    raise ExecutorError(f"cannot run jobs on {type(executor).__name__}; pass one of "
                        f"{EXECUTOR_KINDS} as a string, a dask Client, a concurrent.futures "
                        "Executor or a submitit executor.")


def _counted_call(fn, item):
    """``fn(item)`` in a worker, with the cached results it read and computed."""
    with count_results() as counts:
        result = fn(item)
    return result, counts


@contextlib.contextmanager
def open_executor(spec: str, cache: str | os.PathLike | None = None) -> Iterator[Any]:
    """The executor a string names, shut down again on exit (``None`` for ``"serial"``)."""
    kind, _, arg = spec.partition(":")
    if kind == "serial":
        yield None
    elif kind == "processes":
        workers = _positive_int(arg or str(os.cpu_count() or 1), spec)
        threads = max(1, (os.cpu_count() or 1) // workers)
        with concurrent.futures.ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_set_torch_threads, initargs=(threads,)) as pool:
            yield pool
    elif kind == "dask":
        distributed = _require("dask.distributed", "dask[distributed]", spec)
        if arg:
            with distributed.Client(arg) as client:
                yield client
        else:
            workers = os.cpu_count() or 1
            with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                          processes=True, dashboard_address=None) as cluster, \
                    distributed.Client(cluster) as client:
                yield client
    elif kind == "slurm":
        submitit = _require("submitit", "submitit", spec)
        partition, _, gpus = arg.partition(":")
        executor = submitit.AutoExecutor(folder=cache_dir(cache) / "submitit" / "%j")
        options = {"timeout_min": 240}
        if partition:
            options["slurm_partition"] = partition
        if gpus:
            options["gpus_per_node"] = _positive_int(gpus, spec)
        executor.update_parameters(**options)
        yield executor
    else:
        raise ExecutorError(f"unknown executor {spec!r}; use one of {EXECUTOR_KINDS}, e.g. "
                            "'processes:2', 'dask', 'dask:tcp://host:8786' or 'slurm:gpu:1'.")


def worker_threads(executor: Any = None) -> int:
    """The torch thread count each job of ``executor`` computes with: this process's own count
    for the serial executor and for remote ones (start remote workers with one job at a time,
    e.g. ``dask worker --nthreads 1``), and its share of the cores for local worker processes
    (``processes:N``: cores // N; ``dask``: one per worker).  Results that depend on it (CPU
    float sums) are keyed by it."""
    import torch

    own = torch.get_num_threads()
    if not isinstance(executor, str) or executor == "serial":
        return own
    kind, _, arg = executor.partition(":")
    cores = os.cpu_count() or 1
    if kind == "processes":
        return max(1, cores // _positive_int(arg or str(cores), executor))
    if kind == "dask" and not arg:
        return 1
    return own


def _set_torch_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)


def _positive_int(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ExecutorError(f"executor {spec!r}: the worker count must be a positive integer, "
                            "e.g. 'processes:2'.")
    return int(text)


def _require(module: str, package: str, spec: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise ExecutorError(f"executor {spec!r} needs {package}: pip install -r "
                            f"requirements/cluster.txt (or pip install '{package}').") from err


# The kernel logs only critical errors: not its notice that it listens on local TCP, nor the
# socket errors it logs when an interrupted run closes its connection (cell errors still show).
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]


def execute_notebook(source: str | os.PathLike, target: str | os.PathLike, parameters: dict,
                     cwd: str | os.PathLike | None = None, timeout: int = 1800,
                     progress: bool = False) -> dict:
    """Run the MyST notebook ``source`` with papermill into ``target`` (.ipynb) and report
    ``{"seconds", "error"}``; a notebook that raises is reported, not raised, so that a build or
    a sweep goes on with the others.  ``progress`` shows papermill's bar of executed cells with
    the elapsed time (on stderr).  A job for :func:`run_jobs` (picklable, module level)."""
    import time
    from pathlib import Path

    import jupytext
    import nbformat
    import papermill

    source, target = Path(os.path.abspath(source)), Path(os.path.abspath(target))
    unsafe = [n for n in parameters if not (n.isidentifier() and not n.startswith("_"))]
    if unsafe:  # papermill writes every name into code; callers check them against NOTEBOOKS
        raise ValueError(f"parameter names must be plain identifiers, got {unsafe}: nothing ran.")
    target.parent.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)
    staged = target.with_name(f".{target.stem}.input.ipynb")
    nbformat.write(notebook, staged)
    start = time.perf_counter()
    error = None
    try:
        # the kernel starts in ``cwd`` (nbclient's resources path): papermill's own ``cwd``
        # changes the whole process's folder, which races when notebooks run side by side in
        # threads (a kernel could start in the folder another run had just restored)
        papermill.execute_notebook(staged, target, parameters=parameters, kernel_name="python3",
                                   execution_timeout=timeout, progress_bar=progress,
                                   extra_arguments=KERNEL_ARGUMENTS, resources={
                                       "metadata": {"path": os.path.abspath(cwd or source.parent)}})
    except papermill.PapermillExecutionError as err:
        error = f"{err.ename}: {err.evalue}"
    except Exception as err:  # a cell timeout, a dead kernel: report it
        error = f"{type(err).__name__}: {err}"
    except KeyboardInterrupt:  # no half-executed notebook is left to be mistaken for a result
        target.unlink(missing_ok=True)
        raise
    finally:
        staged.unlink(missing_ok=True)
    if error is None and not target.exists():
        error = "papermill wrote no output notebook"
    if error is None and nbformat.read(target, 4).metadata.get("papermill", {}).get("exception"):
        error = "papermill recorded an exception"
    return {"seconds": round(time.perf_counter() - start, 1), "error": error}
