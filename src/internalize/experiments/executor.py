"""Where independent tasks run: this machine's worker processes (``local``) or a Ray cluster (``ray``).

A task is one self-contained piece of an experiment that writes its results to files -- today one seed of a
``per-core`` experiment (``experiments.layout``) -- so it can run on any worker, be retried after its worker died,
and resume there from its last checkpoint. An executor runs a list of tasks, reports progress, and returns, per
task, its value, the node it ran on and how many times it was started. The first task that fails with an error
stops the run with that error; the others are cancelled.

* ``local`` (:class:`LocalExecutor`): ``processes`` spawned worker processes on this machine, XLA single-threaded in
  each; they die with the run (a killed run leaves no orphan writing its directories). Progress counts the
  environment steps of all workers.
* ``ray`` (:class:`RayExecutor`, ``pip install 'internalize[ray]'``): each task is a Ray task with
  ``cpus_per_task``/``gpus_per_task`` resources; a task whose worker or node died is retried (``max_retries``)
  and resumes from its checkpoint; an error raised by the task itself (a bad config, a NaN) is not retried. XLA's
  settings reach the workers through the task's runtime environment, before they import JAX. A task refuses to
  run a different version or commit of internalize than the driver's.

The backend is not part of a directory's identity (the layout is): a run may resume under another backend.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BACKENDS = ("local", "ray")  # --backend
#: XLA flags for a worker that owns one core. The concurrency-optimised CPU scheduler is switched off
#: because it deadlocked vmapped PPO on 2-core machines with jaxlib 0.10.2.
WORKER_XLA_FLAGS = (
    "--xla_cpu_multi_thread_eigen=false --xla_cpu_enable_concurrency_optimized_scheduler=false"
)
RAY_INSTALL = "--backend ray needs Ray: pip install 'internalize[ray]' (or pip install 'ray>=2.60,<3')"


class TaskFailed(RuntimeError):
    """A task could not be run: its worker or node died more often than allowed, or a worker has other code."""


@dataclass(frozen=True)
class Task:
    """One independent piece of work: ``fn(*args)`` (``fn`` a module-level function, so it pickles by name).

    ``key`` names it (unique in a run, e.g. ``fig4a/seed-3``); ``journal`` is a file each start of the task appends
    a line to (a shared filesystem path): how the attempts of a retried task are counted."""

    key: str
    fn: Callable[..., Any]
    args: tuple
    journal: Path | None = None


@dataclass(frozen=True)
class Finished:
    """A task's result: its ``value``, the ``node`` it finished on and its number of ``attempts`` (starts)."""

    key: str
    value: Any
    node: str
    attempts: int


@contextlib.contextmanager
def worker_environment(extra_flags: str) -> Iterator[None]:
    """Spawned children copy ``os.environ`` when started; XLA reads its flags there on first use."""
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{saved or ''} {extra_flags}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("XLA_FLAGS", None)
        else:
            os.environ["XLA_FLAGS"] = saved


_step_sink: Callable[[float], None] | None = None  # in a worker: where its environment steps are counted


def set_step_sink(sink: Callable[[float], None] | None) -> None:
    """In a worker: count the environment steps of the tasks it runs with ``sink(n)`` (None: not counted)."""
    global _step_sink
    _step_sink = sink


def count_steps(n: float) -> None:
    """In a task: ``n`` more environment steps, for the run's progress line."""
    if _step_sink is not None:
        _step_sink(n)


def started(journal: Path | None, run_id: str) -> None:
    """In a task: record one start of it in ``journal`` (``run_id``, node, PID, time)."""
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        with open(journal, "a") as f:
            f.write(f"{run_id} {node_name()} {os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")


def attempts(journal: Path | None, run_id: str) -> int:
    """How many times the task of ``journal`` was started in run ``run_id`` (1 without a journal)."""
    if journal is None or not journal.exists():
        return 1
    return sum(1 for line in journal.read_text().splitlines() if line.split(" ", 1)[0] == run_id) or 1


def node_name() -> str:
    """The Ray node ID inside a Ray worker, else this machine's host name (Ray is never imported here: a local
    worker would pay for it)."""
    ray = sys.modules.get("ray")
    with contextlib.suppress(Exception):
        if ray is not None and ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    return socket.gethostname()


class Executor(ABC):
    """Runs independent :class:`Task` s; see the module docstring."""

    backend: str = ""
    address: str | None = None
    #: Whether the workers see the driver's output directory; if not, a task runs in its node's scratch space and
    #: sends its files back (``experiments.scratch``), its trained states only when ``return_states``.
    shared_fs: bool = True
    return_states: bool = False

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:12]

    @abstractmethod
    def describe(self) -> str:
        """Where the tasks run, for a log line: ``2 processes``, ``Ray at 10.0.0.1:6379 (16 CPUs)``."""

    @abstractmethod
    def run(self, tasks: Sequence[Task], *, label: str, progress: bool, log: Callable[[str], None],
            cache_dir: Path, what: str = "seeds", single_thread: bool = True) -> dict[str, Finished]:
        """Run ``tasks`` (``cache_dir``: the compiled-program cache for workers on this machine; ``what``: what a
        task is, for the progress line; ``single_thread``: XLA single-threaded in each task on a CPU, as a per-core
        worker; False keeps XLA's own threading, as the vmap layout in this process); returns each task's
        :class:`Finished` by key, or raises the first task error."""

    def close(self) -> None:  # noqa: B027 (most executors hold nothing)
        """Release what the executor started (a local Ray instance)."""
