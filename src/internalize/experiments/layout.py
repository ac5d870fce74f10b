"""Where an experiment's seeds run: one vmapped program in this process, or one worker process per core.

* ``vmap`` (the default): every unit runs all seeds (and the conditions that share a world) as one vmapped program
  in this process, with XLA's own threading (:class:`~internalize.experiments.runner.Runner`). On an accelerator
  this is the layout to use.
* ``per-core``: each seed is its own run of the experiment (a one-seed sub-experiment, with every unit, checkpoint,
  resume and shared unit of a normal run) in ``OUT/.per-core/seed-<s>/``, and ``processes`` worker processes (one
  per core by default) take the seeds in turn, each with XLA single-threaded. When every seed is done the rows are
  gathered into ``OUT/<name>/results.parquet`` as usual. Whether it is faster than ``vmap`` depends on the machine
  and the learner (``benchmarks/layouts.py`` measures it): a 1-env learner's training vectorizes poorly across
  seeds (``python benchmarks/parallel.py``), but each worker compiles its programs and runs the ISR and
  evaluation alone; on a 2-core CPU the quick preset ran faster under ``vmap``.

A seed's numbers under ``per-core`` depend neither on the number of processes nor on which worker ran it: its
sub-experiment is the same program, started from the keys of its seed alone, in a process with the same flags.
They do differ, in the last bits and then by the chaos of learning, from the same seed under ``vmap`` (another
program, other threading) -- as they would on another machine -- so a directory keeps the layout it was started
with (:meth:`ResultsStore.claim <internalize.experiments.results.ResultsStore.claim>`). Workers compile each program
once and share compiled programs through JAX's persistent cache, which the command line enables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.experiments.executor import Executor, Finished, Task, count_steps
from internalize.experiments.local_executor import LocalExecutor, default_processes
from internalize.experiments.progress import Progress
from internalize.experiments.results import ResultsStore, RunLocked
from internalize.experiments.runner import Runner
from internalize.experiments.scratch import Shipped, run_elsewhere, unpack
from internalize.experiments.spec import Experiment

LAYOUTS = ("vmap", "per-core")
PER_CORE_DIR = ".per-core"
#: How long a retried seed waits for the seed's lock held by its previous attempt (a worker on a lost node may
#: outlive the node's loss by a few seconds).
LOCK_WAIT_S = 120.0

__all__ = ["LAYOUTS", "default_processes", "run_all", "run_per_core", "run_with_layout", "trained"]


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
class _Counted(Progress):
    """A worker's progress: no display of its own, every environment step added to the run's counter
    (``executor.count_steps``; an ISR's updates are not environment steps: not counted)."""

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
        count_steps(n)


def _run_seed(exp: Experiment, root: str, force: bool, checkpoint_seconds: float) -> float:
    """In a worker: seed ``exp.seeds[0]``'s run into ``root`` (resuming from its checkpoints); returns its wall
    seconds. A seed whose lock is still held (by a previous attempt) is waited for up to :data:`LOCK_WAIT_S`."""
    started = time.perf_counter()
    seed = exp.seeds[0]

    def log(line: str) -> None:
        print(f"[seed {seed}] {line}", file=sys.stderr, flush=True)

    while True:
        try:
            Runner(exp, root, force=force, progress=_Counted(), checkpoint_seconds=checkpoint_seconds, log=log).run()
            return time.perf_counter() - started
        except RunLocked:
            if time.perf_counter() - started > LOCK_WAIT_S:
                raise
            time.sleep(1.0)


def _run_whole(exp: Experiment, out: str, force: bool, checkpoint_seconds: float) -> float:
    """In a worker: the whole ``vmap`` experiment ``exp`` into ``out``; returns its wall seconds."""
    started = time.perf_counter()
    Runner(exp, out, force=force, checkpoint_seconds=checkpoint_seconds, progress=Progress(enabled=False),
           log=lambda line: print(line, file=sys.stderr, flush=True)).run()
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------ parent side
@dataclasses.dataclass
class _Planned:
    """A per-core experiment whose seeds are to run: its store (locked) and its seeds' tasks."""

    exp: Experiment
    out: Path
    store: ResultsStore
    seeds: list[int]  # the seeds sent out, in the order of ``tasks``
    tasks: list[Task]
    started: float


def _task(key: str, run: Callable[..., float], exp: Experiment, out: Path, force: bool, checkpoint_seconds: float,
          executor: Executor) -> Task:
    """``run(exp, out, ...)`` as a task; where the workers do not see ``out``, in their node's scratch space."""
    journal = out / f".{exp.name}.attempts"
    if executor.shared_fs:
        return Task(key, run, (exp, str(out), force, checkpoint_seconds), journal)
    return Task(key, run_elsewhere, (run, exp, force, checkpoint_seconds, executor.return_states), None)


def _plan(exp: Experiment, out: Path, force: bool, log: Callable[[str], None], checkpoint_seconds: float,
          executor: Executor) -> _Planned | pd.DataFrame:
    """Claim ``exp``'s directory for ``per-core`` (its lock held by the caller); its table if complete. Without a
    shared filesystem a seed already complete here is not sent out again."""
    store = ResultsStore(out, exp.name, warn=log)
    store.claim(exp.to_dict(), force=force, layout="per-core", identify=Experiment.identity_of)
    if store.is_complete():
        log(f"{exp.name}: complete in {store.dir}, skipped (use --force to recompute)")
        return store.read_table()
    seeds = [s for s in exp.seeds if executor.shared_fs or force
             or not ResultsStore(seed_root(out, s), exp.name, warn=log).is_complete()]
    tasks = [_task(f"{out.name}/{exp.name}/seed-{s}", _run_seed, one_seed(exp, s), seed_root(out, s), force,
                   checkpoint_seconds, executor) for s in seeds]
    return _Planned(exp, out, store, seeds, tasks, time.perf_counter())


def _gather(p: _Planned, done: dict[str, Finished], executor: Executor, log: Callable[[str], None],
            gifs: bool, batch: list[str]) -> pd.DataFrame:
    """Every seed's table into ``OUT/<name>/results.parquet``, with where and how long each seed ran (``batch``:
    the experiments whose seeds were submitted together, so shared the wall clock)."""
    exp, out = p.exp, p.out
    by_seed = {s: done[t.key] for s, t in zip(p.seeds, p.tasks, strict=True)}
    for seed, f in by_seed.items():
        if isinstance(f.value, Shipped):
            unpack(f.value, seed_root(out, seed))
    frames, timings = [], {}
    for seed in exp.seeds:
        sub = ResultsStore(seed_root(out, seed), exp.name, warn=log)
        sub.attach(one_seed(exp, seed).to_dict(), Experiment.identity_of)
        frames.append(sub.read_table())
        for unit, seconds in (sub.read_manifest() or {}).get("timings", {}).items():
            timings[unit] = round(timings.get(unit, 0.0) + seconds, 3)
    extra = {"timings": timings, "processes": getattr(executor, "processes", None),
             "wall_s": round(time.perf_counter() - p.started, 1),
             "seed_wall_s": {str(s): round(_wall(f), 1) for s, f in by_seed.items()},
             "shared_fs": executor.shared_fs,
             "backend": executor.backend, "address": executor.address, "where": executor.describe(),
             "ran_with": [n for n in batch if n != exp.name],
             "seed_node": {str(s): f.node for s, f in by_seed.items()},
             "seed_attempts": {str(s): f.attempts for s, f in by_seed.items()}}
    df = p.store.finish([], frames, extra)
    if gifs and exp.autonomy_worlds and _states_here(executor, log, exp.name):
        from internalize.experiments.gifs import learner_gifs

        learner_gifs(one_seed(exp, exp.seeds[0]), trained(exp, out), p.store.dir / "gifs")
    log(f"{exp.name}: {len(df)} rows -> {p.store.table_path} ({len(exp.seeds)} seeds on {executor.describe()})")
    return df


def run_all(runs: Sequence[tuple[Experiment, str | Path]], *, layout: str = "vmap", executor: Executor | None = None,
            processes: int | None = None, force: bool = False, progress: bool = True,
            log: Callable[[str], None] = print, gifs: bool = False, label: str | None = None,
            checkpoint_seconds: float = 30.0) -> list[pd.DataFrame]:
    """Run every ``(experiment, out)`` of ``runs`` with ``layout``; returns their tables in order.

    On ``executor`` (default: ``processes`` local worker processes) all the runs' tasks are submitted at once: one
    per seed under ``per-core``, one per experiment under ``vmap`` -- except on the local backend, where a ``vmap``
    experiment runs in this process, one after another, with XLA's own threading."""
    check_layout(layout)
    executor = executor or LocalExecutor(processes)
    label = label or ", ".join(e.name for e, _ in runs)
    if layout == "vmap":
        if isinstance(executor, LocalExecutor):
            return [Runner(e, o, force=force, progress=progress, log=log, gifs=gifs).run() for e, o in runs]
        tasks = [_task(f"{Path(o).name}/{e.name}", _run_whole, e, Path(o), force, checkpoint_seconds, executor)
                 for e, o in runs]
        done = executor.run(tasks, label=label, progress=progress, log=log, cache_dir=Path(runs[0][1]) /
                            PER_CORE_DIR / "xla-cache", what="experiments", single_thread=False)
        tables = []
        for (e, o), t in zip(runs, tasks, strict=True):
            if isinstance(done[t.key].value, Shipped):
                unpack(done[t.key].value, o)
            tables.append(ResultsStore(o, e.name, warn=log).read_table())
            if gifs and e.autonomy_worlds and _states_here(executor, log, e.name):
                from internalize.experiments.gifs import learner_gifs

                learner_gifs(e, trained(e, o), ResultsStore(o, e.name).dir / "gifs")
        return tables
    with contextlib.ExitStack() as locks:
        planned: list[_Planned | pd.DataFrame] = []
        for e, o in runs:
            locks.enter_context(ResultsStore(o, e.name, warn=log).lock())
            planned.append(_plan(e, Path(o), force, log, checkpoint_seconds, executor))
        tasks = [t for p in planned if isinstance(p, _Planned) for t in p.tasks]
        done = executor.run(tasks, label=label, progress=progress, log=log,
                            cache_dir=Path(runs[0][1]) / PER_CORE_DIR / "xla-cache") if tasks else {}
        batch = [p.exp.name for p in planned if isinstance(p, _Planned)]
        return [_gather(p, done, executor, log, gifs, batch) if isinstance(p, _Planned) else p for p in planned]


def _wall(f: Finished) -> float:
    return f.value.wall_s if isinstance(f.value, Shipped) else float(f.value)


def _states_here(executor: Executor, log: Callable[[str], None], name: str) -> bool:
    """Whether the trained states are in the output directory (for the GIFs); says so when not."""
    if executor.shared_fs or executor.return_states:
        return True
    log(f"{name}: no GIFs: the trained states stayed on the workers (--no-shared-fs without --return-states)")
    return False


def run_per_core(exp: Experiment, out: str | Path, *, processes: int | None = None, force: bool = False,
                 progress: bool = True, log: Callable[[str], None] = print, gifs: bool = False,
                 checkpoint_seconds: float = 30.0, executor: Executor | None = None) -> pd.DataFrame:
    """Run ``exp`` with the ``per-core`` layout (see the module docstring) into ``out/<name>/``, its seeds on
    ``executor`` (default: ``processes`` local worker processes)."""
    return run_all([(exp, out)], layout="per-core", executor=executor, processes=processes, force=force,
                   progress=progress, log=log, gifs=gifs, checkpoint_seconds=checkpoint_seconds)[0]


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
                    gifs: bool = False, executor: Executor | None = None) -> pd.DataFrame:
    """Run ``exp`` into ``out/<name>/`` with ``layout`` (one of :data:`LAYOUTS`) on ``executor`` (default: this
    machine; :func:`run_all`)."""
    return run_all([(exp, out)], layout=layout, executor=executor, processes=processes, force=force,
                   progress=progress, log=log, gifs=gifs)[0]
