"""Choosing an executor by name: ``--backend local|ray`` (``experiments.executor`` describes both)."""

from __future__ import annotations

from internalize.experiments.executor import BACKENDS, RAY_INSTALL, Executor


def make_executor(backend: str = "local", *, processes: int | None = None, address: str | None = None,
                  cpus_per_task: float = 1.0, gpus_per_task: float = 0.0, max_retries: int = 3,
                  shared_fs: bool = True, return_states: bool = False) -> Executor:
    """The executor of ``backend`` (one of :data:`BACKENDS`); ``ValueError`` (one line) for a bad setting, and for
    ``ray`` without Ray installed (:data:`RAY_INSTALL`). Ray is started here, before any JAX work of the caller."""
    check_backend(backend)
    if backend == "local":
        from internalize.experiments.local_executor import LocalExecutor

        return LocalExecutor(processes)
    from internalize.experiments.ray_executor import RayExecutor  # imports Ray: only when asked for

    return RayExecutor(address=address, cpus=processes, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                       max_retries=max_retries, shared_fs=shared_fs, return_states=return_states)


def check_backend(backend: str) -> None:
    """ValueError (one line) unless ``backend`` is one of :data:`BACKENDS`, or is ``ray`` without Ray installed."""
    if backend not in BACKENDS:
        raise ValueError(f"--backend: unknown backend {backend!r}; allowed: {' | '.join(BACKENDS)}.")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ValueError(RAY_INSTALL) from None
