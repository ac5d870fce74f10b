"""The ``ray`` backend: tasks as Ray tasks on a cluster, or on a Ray instance of this machine (see ``executor``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from internalize.experiments.executor import (
    RAY_INSTALL,
    WORKER_XLA_FLAGS,
    Executor,
    Finished,
    Task,
    TaskFailed,
    attempts,
    node_name,
    set_step_sink,
    started,
)
from internalize.experiments.progress import PLAIN_EVERY_S
from internalize.xla_cache import cache_settings


class VersionMismatch(TaskFailed):
    """A worker has another version or commit of internalize than the driver (not retried)."""


def code_version() -> tuple[str, str | None]:
    """This process's internalize version and git commit (None outside a git checkout)."""
    from internalize import __version__
    from internalize.experiments.results import git_commit

    return __version__, git_commit()


class StepCounter:
    """A Ray actor that adds up the environment steps of a run's tasks (for the driver's progress line)."""

    def __init__(self) -> None:
        self.total = 0.0

    def add(self, n: float) -> None:
        self.total += n

    def read(self) -> float:
        return self.total


def _ray_call(task: Task, run_id: str, driver: tuple[str, str | None], counter: Any = None) -> tuple[Any, str]:
    """In a Ray worker: check the code matches the driver's, record the start, run the task (its environment steps
    counted by ``counter``, a :class:`StepCounter` actor)."""
    here = code_version()
    if here != driver:
        raise VersionMismatch(f"worker {node_name()} runs internalize {here[0]} (commit {here[1]}), the driver "
                              f"{driver[0]} (commit {driver[1]}); install the same version on every node.")
    started(task.journal, run_id)
    set_step_sink(None if counter is None else counter.add.remote)
    try:
        return task.fn(*task.args), node_name()
    finally:
        set_step_sink(None)


class RayExecutor(Executor):
    """Tasks on Ray: ``address`` an existing cluster (``auto``: the one this machine belongs to; default
    ``$RAY_ADDRESS``), else a new local instance with ``cpus`` CPUs (default: all cores); ``shared_fs`` False:
    the nodes do not see the output directory (``experiments.scratch``)."""

    backend = "ray"

    def __init__(self, address: str | None = None, cpus: int | None = None, cpus_per_task: float = 1.0,
                 gpus_per_task: float = 0.0, max_retries: int = 3, max_in_flight: int | None = None,
                 shared_fs: bool = True, return_states: bool = False) -> None:
        super().__init__()
        self.shared_fs, self.return_states = shared_fs, return_states
        for name, value, low in (("--cpus-per-task", cpus_per_task, 0.0), ("--gpus-per-task", gpus_per_task, 0.0)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name}: must be a number >= {low:g}, got {value!r}.")
        if cpus_per_task == 0 and gpus_per_task == 0:
            raise ValueError("--cpus-per-task: a task needs some CPU or GPU; got 0 and --gpus-per-task 0.")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ValueError(f"--max-retries: must be an integer >= 0, got {max_retries!r}.")
        try:
            import ray
        except ImportError:
            raise ValueError(RAY_INSTALL) from None
        self.cpus_per_task, self.gpus_per_task = float(cpus_per_task), float(gpus_per_task)
        self.max_retries, self.max_in_flight = max_retries, max_in_flight
        address = address or os.environ.get("RAY_ADDRESS") or None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # Ray runs its workers at nice 15: on a machine that also runs anything else (the driver, other work) a task
        # then gets a fraction of its CPU (a tiny experiment took 2-5x as long). A local instance started here runs
        # them at normal priority; a cluster's nodes take the setting from their own environment (README).
        os.environ.setdefault("RAY_worker_niceness", "0")
        self._owns = not ray.is_initialized()
        if self._owns:
            kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": True,
                                      "configure_logging": False}
            if address is None and cpus is not None:
                kwargs["num_cpus"] = cpus
            ray.init(**kwargs)
        self.address = address or "local"
        self._ray = ray

    def describe(self) -> str:
        cpus = int(self._ray.cluster_resources().get("CPU", 0))
        return f"Ray ({self.address}, {len(self._ray.nodes())} node(s), {cpus} CPUs)"

    def _env(self, cache_dir: Path, single_thread: bool) -> dict[str, str]:
        """The workers' environment, set before they import JAX: the driver's XLA flags, plus single-threaded XLA on
        a CPU task of one seed (as a local per-core worker, so its numbers are the local ones), no full-memory
        preallocation on a shared GPU, CPU only when the task has no GPU, the compiled-program cache (the driver's
        path, on each node its own disk)."""
        env = {k: v for k, v in cache_settings(cache_dir).items()}
        env.update({k: os.environ[k] for k in env if k in os.environ})
        flags = os.environ.get("XLA_FLAGS", "")
        if self.gpus_per_task == 0:
            env["JAX_PLATFORMS"] = "cpu"
            flags = f"{flags} {WORKER_XLA_FLAGS}".strip() if single_thread else flags
        if flags:
            env["XLA_FLAGS"] = flags
        if 0 < self.gpus_per_task < 1:
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return env

    def run(self, tasks: Sequence[Task], *, label: str, progress: bool, log: Callable[[str], None],
            cache_dir: Path, what: str = "seeds", single_thread: bool = True) -> dict[str, Finished]:
        """Submit ``tasks`` (at most ``max_in_flight`` at once: default twice the cluster's task slots), log
        progress every PLAIN_EVERY_S seconds, and stop at the first task error (the others are cancelled)."""
        ray = self._ray
        remote = ray.remote(_ray_call).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task, max_retries=self.max_retries,
            retry_exceptions=False, runtime_env={"env_vars": self._env(cache_dir, single_thread)})
        slots = ray.cluster_resources().get("CPU", 1) / max(self.cpus_per_task, 1e-9)
        if self.gpus_per_task:
            slots = min(slots, ray.cluster_resources().get("GPU", 0) / self.gpus_per_task)
        limit = self.max_in_flight or max(1, int(2 * slots))
        version = code_version()
        counter = ray.remote(num_cpus=0)(StepCounter).remote()
        queue = list(tasks)
        in_flight: dict[Any, Task] = {}
        done: dict[str, Finished] = {}
        t0 = last = time.perf_counter()
        last_steps = 0.0
        try:
            while queue or in_flight:
                while queue and len(in_flight) < limit:
                    task = queue.pop(0)
                    in_flight[remote.remote(task, self.run_id, version, counter)] = task
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=PLAIN_EVERY_S)
                for ref in ready:
                    task = in_flight.pop(ref)
                    value, node = self._get(ref, task)
                    done[task.key] = Finished(task.key, value, node, attempts(task.journal, self.run_id))
                now = time.perf_counter()
                if progress and (ready or now - last >= PLAIN_EVERY_S):
                    steps = ray.get(counter.read.remote())
                    rate = (steps - last_steps) / max(now - last, 1e-9)
                    last, last_steps = now, steps
                    log(f"{label}: {len(done)}/{len(tasks)} {what} done, {len(in_flight)} running, {steps:,.0f} env "
                        f"steps, {rate:,.0f} steps/s on {self.describe()}, {now - t0:.0f} s")
        except BaseException:
            for ref in in_flight:
                ray.cancel(ref, force=True)
            raise
        return done

    def _get(self, ref: Any, task: Task) -> tuple[Any, str]:
        """A finished task's value; its own error re-raised as itself (one line), a lost worker or node past
        ``max_retries`` as :class:`TaskFailed`."""
        from ray import exceptions as rex

        try:
            return self._ray.get(ref)
        except rex.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.OwnerDiedError, rex.ObjectLostError) as err:
            raise TaskFailed(f"{task.key}: its worker or node died {self.max_retries + 1} times "
                               f"({type(err).__name__}); raise --max-retries or check the cluster.") from None

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
