"""The ``local`` backend: tasks on ``processes`` spawned worker processes of this machine (see ``executor``)."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from internalize.experiments.executor import (
    WORKER_XLA_FLAGS,
    Executor,
    Finished,
    Task,
    attempts,
    node_name,
    set_step_sink,
    started,
    worker_environment,
)
from internalize.experiments.progress import PLAIN_EVERY_S
from internalize.xla_cache import missing_settings


def default_processes() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def adder(steps: Any) -> Callable[[float], None]:
    """A step sink that adds to ``steps``, a counter shared with the parent (``multiprocessing.Value``)."""

    def add(n: float) -> None:
        with steps.get_lock():
            steps.value += n

    return add


def _init_worker(steps: Any) -> None:
    """A worker dies with its parent (a killed run leaves no orphan writing its directories) and counts its tasks'
    environment steps in the parent's shared counter ``steps``."""
    set_step_sink(adder(steps))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops the workers


def _call(task: Task, run_id: str) -> tuple[Any, str]:
    started(task.journal, run_id)
    return task.fn(*task.args), node_name()


@contextlib.contextmanager
def _compilation_cache(directory: Path) -> Iterator[None]:
    """Workers share compiled programs through JAX's persistent cache: the one this process was given (the command
    line's), else ``directory``."""
    added = missing_settings(directory)
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


class LocalExecutor(Executor):
    backend = "local"

    def __init__(self, processes: int | None = None) -> None:
        super().__init__()
        processes = default_processes() if processes is None else processes
        if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
            raise ValueError(f"processes: must be an integer >= 1, got {processes!r}.")
        self.processes = processes

    def describe(self) -> str:
        return f"{self.processes} process" + ("" if self.processes == 1 else "es")

    def run(self, tasks: Sequence[Task], *, label: str, progress: bool, log: Callable[[str], None],
            cache_dir: Path, what: str = "seeds", single_thread: bool = True) -> dict[str, Finished]:
        """Every task on the worker pool; a plain progress line at most every PLAIN_EVERY_S seconds with the whole
        machine's environment steps per second. A failed task stops the run with its error."""
        ctx = mp.get_context("spawn")
        steps = ctx.Value("d", 0.0)
        t0, last_steps, last_t = time.perf_counter(), 0.0, time.perf_counter()
        done: dict[str, Finished] = {}
        with worker_environment(WORKER_XLA_FLAGS), _compilation_cache(cache_dir):  # workers copy os.environ
            pool = cf.ProcessPoolExecutor(max_workers=min(self.processes, max(len(tasks), 1)), mp_context=ctx,
                                          initializer=_init_worker, initargs=(steps,))
            try:
                futures = {pool.submit(_call, t, self.run_id): t for t in tasks}
                pending = set(futures)
                while pending:
                    finished, pending = cf.wait(pending, timeout=PLAIN_EVERY_S, return_when=cf.FIRST_EXCEPTION)
                    for future in finished:
                        task = futures[future]
                        value, node = future.result()  # re-raises a worker's error (ValueError, NaN, ...)
                        done[task.key] = Finished(task.key, value, node, attempts(task.journal, self.run_id))
                    now = time.perf_counter()
                    if progress:
                        rate = (steps.value - last_steps) / max(now - last_t, 1e-9)
                        log(f"{label}: {len(done)}/{len(tasks)} {what} done, {steps.value:,.0f} env steps, "
                            f"{rate:,.0f} steps/s on {self.describe()}, {now - t0:.0f} s")
                    last_steps, last_t = steps.value, now
            except BaseException:
                for process in list(getattr(pool, "_processes", {}).values()):
                    with contextlib.suppress(Exception):
                        process.kill()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown()
        return done
