"""Where a command's seeds run: ``--layout``, ``--processes`` and ``--backend`` with its Ray settings.

``--layout`` says how seeds are grouped (a part of an output directory's identity: it changes float rounding);
``--backend`` says where the groups run (not part of it: a run may resume under another backend). The options are
checked before anything runs, and Ray is started before any JAX work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from internalize.experiments.executor import TaskFailed

__all__ = ["TaskFailed", "executor", "fail", "check_layout"]

Layout = Annotated[str, typer.Option(
    "--layout", help="How the seeds run: vmap (all in one vectorized program) or per-core (each seed its own "
                     "run, one single-threaded worker process per core; benchmarks/layouts.py measures which is "
                     "faster on a machine). The numbers of the two differ in float rounding, so an output "
                     "directory keeps its layout. The empathy study always runs vmap.")]
Processes = Annotated[int | None, typer.Option(
    "--processes", min=1, show_default="one per core",
    help="Worker processes of --layout per-core (with --backend ray and no cluster: the local Ray's CPUs).")]
Backend = Annotated[str, typer.Option(
    "--backend", help="Where the tasks (a seed under per-core, an experiment under vmap) run: local (this "
                      "machine's worker processes) or ray (a Ray cluster; pip install 'internalize[ray]'). All "
                      "the tasks of a reproduce or a sweep are submitted at once.")]
Address = Annotated[str | None, typer.Option(
    "--address", metavar="ADDR|auto", show_default="$RAY_ADDRESS, else a new local Ray",
    help="The Ray cluster to run on (ray start --head prints it); auto: the cluster this machine belongs to.")]
CpusPerTask = Annotated[float, typer.Option("--cpus-per-task", help="CPUs Ray reserves for each task.")]
GpusPerTask = Annotated[float, typer.Option(
    "--gpus-per-task", help="GPUs Ray reserves for each task; a fraction shares a GPU (then JAX does not "
                            "preallocate its memory).")]
MaxRetries = Annotated[int, typer.Option(
    "--max-retries", help="Times Ray reruns a task whose worker or node died (it resumes from its checkpoint); "
                          "an error of the task itself is never retried.")]

SharedFs = Annotated[bool, typer.Option(
    "--shared-fs/--no-shared-fs", help="Whether every Ray node sees --out. Without a shared filesystem a task runs "
                                       "in its node's scratch space and sends its tables back to be written here.")]
ReturnStates = Annotated[bool, typer.Option(
    "--return-states", help="With --no-shared-fs: send the trained states back too (play --from and the report's "
                            "GIFs need them).")]


def fail(error: Exception | str) -> None:
    """One ``error: ...`` line on stderr, exit 2."""
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2)


def check_layout(layout: str) -> None:
    """A bad --layout ends the command (exit 2) before anything runs."""
    from internalize.experiments.layout import check_layout as check

    try:
        check(layout)
    except ValueError as e:
        fail(e)


@contextlib.contextmanager
def executor(layout: str, processes: int | None, backend: str, address: str | None, cpus_per_task: float,
             gpus_per_task: float, max_retries: int, shared_fs: bool = True,
             return_states: bool = False) -> Iterator[Any]:
    """The command's executor (None: the local default of ``processes``), checked and started before the
    command's work, closed after it; bad settings end the command with one line (exit 2)."""
    check_layout(layout)
    from internalize.experiments.backend import check_backend, make_executor

    try:
        check_backend(backend)
        if backend == "local":
            given = [n for n, v, d in (("--address", address, None), ("--cpus-per-task", cpus_per_task, 1.0),
                                       ("--gpus-per-task", gpus_per_task, 0.0), ("--max-retries", max_retries, 3),
                                       ("--no-shared-fs", shared_fs, True), ("--return-states", return_states, False))
                     if v != d]
            if given:
                raise ValueError(f"{given[0]}: only with --backend ray (got --backend local).")
            yield None
            return
        if return_states and shared_fs:
            raise ValueError("--return-states: only with --no-shared-fs (on a shared filesystem the states are here).")
        ex = make_executor(backend, processes=processes, address=address, cpus_per_task=cpus_per_task,
                           gpus_per_task=gpus_per_task, max_retries=max_retries, shared_fs=shared_fs,
                           return_states=return_states)
    except ValueError as e:
        fail(e)
        raise  # unreachable: fail exits
    try:
        yield ex
    finally:
        ex.close()
