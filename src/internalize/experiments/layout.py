"""Where an experiment's seeds run: one vmapped program in this process, or one worker process per core.

* ``vmap`` (the default): every unit runs all seeds (and the conditions that share a world) as one vmapped program
  in this process, with XLA's own threading (:class:`~internalize.experiments.runner.Runner`). On an accelerator
  this is the layout to use.
* ``per-core``: each seed is its own run of the experiment (a one-seed sub-experiment, with every unit, checkpoint,
  resume and shared unit of a normal run) in ``OUT/.per-core/seed-<s>/``, and ``processes`` worker processes (one
  per core by default) take the seeds in turn, each with XLA single-threaded. When every seed is done the rows are
  gathered into ``OUT/<name>/results.parquet`` as usual. Whether it is faster than ``vmap`` depends on the machine
  and the learner (``benchmarks/layouts.py`` measures it): a 1-env learner's training vectorizes poorly across
  seeds (``python -m internalize.agents.parallel``), but each worker compiles its programs and runs the ISR and
  evaluation alone; on a 2-core CPU the quick preset ran faster under ``vmap``.

A seed's numbers under ``per-core`` depend neither on the number of processes nor on which worker ran it: its
sub-experiment is the same program, started from the keys of its seed alone, in a process with the same flags.
They do differ, in the last bits and then by the chaos of learning, from the same seed under ``vmap`` (another
program, other threading) -- as they would on another machine -- so a directory keeps the layout it was started
with (:meth:`ResultsStore.claim <internalize.experiments.results.ResultsStore.claim>`). Workers compile each program
once and share compiled programs through JAX's persistent cache, which the command line enables.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import dataclasses
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.agents.parallel import WORKER_XLA_FLAGS, worker_environment
from internalize.experiments.progress import PLAIN_EVERY_S, Progress
from internalize.experiments.results import ResultsStore
from internalize.experiments.runner import Runner
from internalize.experiments.spec import Experiment
from internalize.xla_cache import missing_settings

LAYOUTS = ("vmap", "per-core")
PER_CORE_DIR = ".per-core"


def default_processes() -> int:
    """One worker per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def seed_root(out: str | Path, seed: int) -> Path:
    """The output directory of seed ``seed``'s sub-experiments (with their own shared units)."""
    return Path(out) / PER_CORE_DIR / f"seed-{seed}"


def one_seed(exp: Experiment, seed: int) -> Experiment:
    return dataclasses.replace(exp, seeds=(seed,))


def layout_of(out: str | Path, name: str) -> str:
    """The layout the experiment ``name`` under ``out`` was run with (``vmap`` if it has no manifest yet)."""
    manifest = ResultsStore(out, name).read_manifest() or {}
    return str(manifest.get("layout", "vmap"))


# ------------------------------------------------------------------------------------------------ worker side
_steps: Any = None  # the parent's shared step counter, in a worker


class _Counted(Progress):
    """A worker's progress: no display of its own, every environment step added to the parent's counter (an ISR's
    updates are not environment steps: not counted)."""

    def __init__(self) -> None:
        super().__init__(enabled=False)

    @contextlib.contextmanager
    def task(self, name: str, total: float, completed: float = 0, unit: str = "steps") -> Iterator[Any]:
        if unit == "steps":
            yield self
        else:
            with super().task(name, total, completed, unit) as bar:
                yield bar

    def advance(self, n: float) -> None:
        if _steps is not None:
            with _steps.get_lock():
                _steps.value += n


def _init_worker(steps: Any) -> None:
    """A worker dies with its parent (a killed run leaves no orphan writing its directories) and counts steps."""
    global _steps
    _steps = steps
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which stops the workers


def _run_seed(exp: Experiment, root: str, force: bool, checkpoint_seconds: float) -> float:
    """In a worker: seed ``exp.seeds[0]``'s run into ``root``; returns its wall seconds."""
    started = time.perf_counter()
    seed = exp.seeds[0]
    Runner(exp, root, force=force, progress=_Counted(), checkpoint_seconds=checkpoint_seconds,
           log=lambda line: print(f"[seed {seed}] {line}", file=sys.stderr, flush=True)).run()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------ parent side
def run_per_core(exp: Experiment, out: str | Path, *, processes: int | None = None, force: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print, gifs: bool = False,
                 checkpoint_seconds: float = 30.0) -> pd.DataFrame:
    """Run ``exp`` with the ``per-core`` layout (see the module docstring) into ``out/<name>/``."""
    processes = default_processes() if processes is None else processes
    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes: must be an integer >= 1, got {processes!r}.")
    store = ResultsStore(out, exp.name, warn=log)
    with store.lock():
        store.claim(exp.to_dict(), force=force, layout="per-core", identify=Experiment.identity_of)
        if store.is_complete():
            log(f"{exp.name}: complete in {store.dir}, skipped (use --force to recompute)")
            return store.read_table()
        started = time.perf_counter()
        walls = _run_seeds(exp, out, processes, force, progress, log, checkpoint_seconds)
        frames, timings = [], {}
        for seed in exp.seeds:
            sub = ResultsStore(seed_root(out, seed), exp.name, warn=log)
            sub.attach(one_seed(exp, seed).to_dict(), Experiment.identity_of)
            frames.append(sub.read_table())
            for unit, seconds in (sub.read_manifest() or {}).get("timings", {}).items():
                timings[unit] = round(timings.get(unit, 0.0) + seconds, 3)
        extra = {"timings": timings, "processes": processes, "wall_s": round(time.perf_counter() - started, 1),
                 "seed_wall_s": {str(s): round(w, 1) for s, w in walls.items()}}
        df = store.finish([], frames, extra)
        if gifs and exp.autonomy_worlds:
            from internalize.experiments.gifs import learner_gifs

            first = one_seed(exp, exp.seeds[0])
            learner_gifs(first, trained(exp, out), store.dir / "gifs")
    log(f"{exp.name}: {len(df)} rows -> {store.table_path} ({len(exp.seeds)} seeds on {_processes(processes)})")
    return df


@contextlib.contextmanager
def _compilation_cache(out: str | Path) -> Iterator[None]:
    """Workers share compiled programs through JAX's persistent cache: the one this process was given (the command
    line's), else ``OUT/.per-core/xla-cache``."""
    added = missing_settings(Path(out) / PER_CORE_DIR / "xla-cache")
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _processes(n: int) -> str:
    return f"{n} process" + ("" if n == 1 else "es")


def _run_seeds(exp: Experiment, out: str | Path, processes: int, force: bool, progress: bool,
               log: Callable[[str], None], checkpoint_seconds: float) -> dict[int, float]:
    """Every seed's sub-experiment on the worker pool; a plain progress line at most every PLAIN_EVERY_S seconds
    with the whole machine's environment steps per second. A failed seed stops the run with its error."""
    ctx = mp.get_context("spawn")
    steps = ctx.Value("d", 0.0)
    started, last_steps, last_t = time.perf_counter(), 0.0, time.perf_counter()
    walls: dict[int, float] = {}
    with worker_environment(WORKER_XLA_FLAGS), _compilation_cache(out):  # workers copy os.environ at start
        pool = cf.ProcessPoolExecutor(max_workers=min(processes, len(exp.seeds)), mp_context=ctx,
                                      initializer=_init_worker, initargs=(steps,))
        try:
            futures = {pool.submit(_run_seed, one_seed(exp, s), str(seed_root(out, s)), force, checkpoint_seconds): s
                       for s in exp.seeds}
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=PLAIN_EVERY_S, return_when=cf.FIRST_EXCEPTION)
                for future in done:
                    walls[futures[future]] = future.result()  # re-raises a worker's error (ValueError, NaN, ...)
                now = time.perf_counter()
                if progress:
                    rate = (steps.value - last_steps) / max(now - last_t, 1e-9)
                    log(f"{exp.name}: {len(walls)}/{len(exp.seeds)} seeds done, {steps.value:,.0f} env steps, "
                        f"{rate:,.0f} steps/s on {_processes(processes)}, {now - started:.0f} s")
                last_steps, last_t = steps.value, now
        except BaseException:
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return walls


def trained(exp: Experiment, out: str | Path, worlds: tuple[str, ...] | None = None,
            log: Callable[[str], None] = lambda _: None) -> dict[tuple[str, str], Any]:
    """What :meth:`Runner.trained <internalize.experiments.runner.Runner.trained>` returns, for either layout: a
    ``per-core`` run's learners are gathered from its seeds' sub-experiments, in the order of ``exp.seeds``."""
    if layout_of(out, exp.name) != "per-core":
        return Runner(exp, out, progress=False, log=log).trained(worlds)
    import jax
    import jax.numpy as jnp

    parts = [Runner(one_seed(exp, s), seed_root(out, s), progress=False, log=log).trained(worlds) for s in exp.seeds]
    return {key: jax.tree.map(lambda *xs: jnp.concatenate(xs), *(p[key] for p in parts)) for key in parts[0]}


def check_layout(layout: str) -> None:
    """ValueError (one line, for the command line) unless ``layout`` is one of :data:`LAYOUTS`."""
    if layout not in LAYOUTS:
        raise ValueError(f"--layout: unknown layout {layout!r}; allowed: {' | '.join(LAYOUTS)}.")


def run_with_layout(exp: Experiment, out: str | Path, *, layout: str = "vmap", processes: int | None = None,
                    force: bool = False, progress: bool = True, log: Callable[[str], None] = print,
                    gifs: bool = False) -> pd.DataFrame:
    """Run ``exp`` into ``out/<name>/`` with ``layout`` (one of :data:`LAYOUTS`)."""
    check_layout(layout)
    if layout == "per-core":
        return run_per_core(exp, out, processes=processes, force=force, progress=progress, log=log, gifs=gifs)
    return Runner(exp, out, force=force, progress=progress, log=log, gifs=gifs).run()
