"""Run independent tasks (shadow teachers) one after another, in local processes, or on Ray.

Each task is ``fn(task, shared)``: ``fn`` a module-level function (it is pickled by name),
``task`` a small picklable value, ``shared`` one read-only numpy array every task may index
(e.g. the frozen activations of all training photos). ``shared`` travels once per worker, not
once per task: a memory-mapped ``.npy`` file for local processes, one object in Ray's object
store (``ray.put``) for Ray.

Backends
--------
``serial``   in this process (debugging, tiny runs).
``process``  ``concurrent.futures.ProcessPoolExecutor`` with the ``spawn`` start method (no fork
             of a process that already runs torch threads); the default.
``ray``      Ray tasks (``pip install 'faceleaks[ray]'``): a local Ray started here, or the cluster
             at ``address`` / ``$RAY_ADDRESS`` for work that outgrows one machine.

A worker never outlives this process by more than about a second: a watchdog thread in each
worker polls ``os.getppid()`` and, once the parent is gone (even after ``kill -9``), removes the
shared temporary folder and exits. The folder's name carries this process's id, so a folder left
by a process that no longer runs is removed by the next run (``clean_stale_shared``).

Results come back to this process (``on_result`` sees each as it finishes), so the caller can
persist them (e.g. a checkpoint in its cache) even when the workers are other machines; an
interrupted run then resumes by skipping what was saved.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from faceleaks.atomic import pid_alive
from faceleaks.errors import ConfigError, TaskError
from faceleaks.progress import track

__all__ = ["BACKENDS", "run_tasks", "clean_stale_shared"]

BACKENDS = ("serial", "process", "ray")

_WORKER: dict[str, Any] = {}


_PREFIX = "faceleaks-shared-"
#: Seconds between a worker's checks that its parent still runs.
WATCH_INTERVAL = 0.5


def _watch_parent(parent: int, folder: str | None) -> None:
    """In a worker: once ``parent`` is gone, remove ``folder`` and exit at once (no cleanup of tasks)."""
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    os._exit(1)


def _init_worker(shared_path: str | None, setup: Callable[[], None] | None, parent: int | None = None) -> None:
    if parent is not None:
        folder = str(Path(shared_path).parent) if shared_path else None
        threading.Thread(target=_watch_parent, args=(parent, folder), daemon=True, name="parent-watch").start()
    _WORKER["shared"] = np.load(shared_path, mmap_mode="r") if shared_path else None
    if setup is not None:
        setup()


def clean_stale_shared(tmp_root: str | os.PathLike | None = None) -> int:
    """Remove shared temporary folders left by runs whose process is gone; returns how many."""
    removed = 0
    for folder in Path(tmp_root or tempfile.gettempdir()).glob(f"{_PREFIX}*"):
        pid = folder.name[len(_PREFIX):].split("-", 1)[0]
        if folder.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _call_in_worker(fn: Callable, task: Any) -> Any:
    return fn(task, _WORKER["shared"])


def _describe(task: Any) -> str:
    text = repr(task.get("name", task) if isinstance(task, dict) else task)
    return text if len(text) < 80 else text[:77] + "..."


def _task_error(task: Any, where: str, err: Exception) -> TaskError:
    """The error for a failed task, naming it, where it ran (``""``, ``" on Ray"`` ...) and the cause."""
    return TaskError(f"task {_describe(task)} failed{where}: {type(err).__name__}: {err}")


def run_tasks(fn: Callable[[Any, np.ndarray | None], Any], tasks: Sequence[Any], *, backend: str = "process",
              workers: int = 2, shared: np.ndarray | None = None, setup: Callable[[], None] | None = None,
              description: str = "tasks", ray_address: str | None = None,
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(task, shared) for task in tasks]``, run on ``backend``; results in task order.

    Parameters
    ----------
    fn : module-level callable (task, shared) -> picklable result
    tasks : sequence of picklable values
    backend : one of ``BACKENDS``
    workers : int >= 1, worker processes (``process``), or the CPUs of a local Ray started here
        (``ray``; each task takes one CPU, so ``workers`` run at a time; a cluster schedules by its
        own CPU count)
    shared : ndarray, read-only data passed to every task (memory-mapped in workers), or None
    setup : module-level callable run in a worker before its tasks (once per process for
        ``process``, before every task for ``ray``; e.g. set torch threads). Never run in this
        process: ``serial`` tasks inherit its settings.
    ray_address : Ray cluster address (``ray`` only); default ``$RAY_ADDRESS``, else a local Ray
    on_result : called in this process as ``on_result(index, result)`` as each task finishes (e.g.
        to save its result, so an interrupted run keeps what finished)

    Raises
    ------
    ConfigError
        Unknown backend, ``workers < 1``, or ``ray`` without Ray installed.
    TaskError
        A task raised; the message names the task, and the cause is chained. Tasks that had
        finished keep whatever they persisted.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown executor backend {backend!r}; choose one of {BACKENDS}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"executor workers must be a positive integer, got {workers!r}")
    tasks = list(tasks)
    if not tasks:
        return []
    done = on_result or (lambda i, r: None)
    if backend == "serial" or (backend == "process" and (workers == 1 or len(tasks) == 1)):
        results = []
        for i, t in enumerate(track(tasks, description)):
            results.append(_run_one(fn, t, shared))
            done(i, results[-1])
        return results
    if backend == "ray":
        return _run_ray(fn, tasks, shared, setup, workers, description, ray_address, done)
    return _run_processes(fn, tasks, shared, setup, workers, description, done)


def _run_one(fn: Callable, task: Any, shared: np.ndarray | None) -> Any:
    try:
        return fn(task, shared)
    except Exception as err:  # re-raised with the task named
        raise _task_error(task, "", err) from err


def _run_processes(fn, tasks, shared, setup, workers, description, done) -> list[Any]:
    clean_stale_shared()
    with tempfile.TemporaryDirectory(prefix=f"{_PREFIX}{os.getpid()}-") as tmp:
        path = None
        if shared is not None:
            path = str(Path(tmp) / "shared.npy")
            np.save(path, np.ascontiguousarray(shared))
        ctx = multiprocessing.get_context("spawn")
        results: list[Any] = [None] * len(tasks)
        pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                   initializer=_init_worker, initargs=(path, setup, os.getpid()))
        try:
            futures = {pool.submit(_call_in_worker, fn, t): i for i, t in enumerate(tasks)}
            for fut in track(as_completed(futures), description, total=len(tasks)):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except Exception as err:
                    raise _task_error(tasks[i], " in a worker process", err) from err
                done(i, results[i])
        except BaseException:
            # do not wait minutes for running tasks: drop queued ones, stop the workers
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            raise
        pool.shutdown(wait=True)
        return results


def _run_ray(fn, tasks, shared, setup, workers, description, address, done) -> list[Any]:
    try:
        import ray
    except ImportError as err:
        raise ConfigError("the ray executor needs Ray: pip install 'faceleaks[ray]'") from err
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        ref = ray.put(shared) if shared is not None else None
        pending = {remote.remote(fn, t, ref, setup): i for i, t in enumerate(tasks)}
        results: list[Any] = [None] * len(tasks)
        waiting = list(pending)
        try:
            for _ in track(range(len(tasks)), description):
                ready, waiting = ray.wait(waiting, num_returns=1)
                i = pending[ready[0]]
                try:
                    results[i] = ray.get(ready[0])
                except Exception as err:
                    raise _task_error(tasks[i], " on Ray", err) from err
                done(i, results[i])
        except BaseException:
            for r in waiting:
                ray.cancel(r, force=True)
            raise
        return results
    finally:
        if started:
            ray.shutdown()


def _ray_task(fn: Callable, task: Any, shared: np.ndarray | None, setup: Callable[[], None] | None) -> Any:
    # Ray resolves a top-level ObjectRef argument to the (zero-copy, read-only) array itself.
    if setup is not None:
        setup()
    return fn(task, shared)
