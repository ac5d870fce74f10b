"""Seeds on several CPU cores: one worker process per core, each compiling the phase once for all its seeds.

On a CPU, vmapping seeds inside one program gains little (the networks are small and XLA's CPU backend
batches them poorly), so the alternative is one process per core. :func:`run_seeds` splits the seeds over
``processes`` spawned workers. Each worker is pinned to one core, runs XLA single-threaded (so two workers on
two cores do not fight over threads), builds the learner from a picklable ``factory``, compiles once and runs
its seeds: one after another (``vmap=False``) or all together in one vmapped program (``vmap=True``).

A seed's results do not depend on which worker ran it: seed ``s`` always starts from
``jax.random.PRNGKey(s)``, and within a process with the same flags its run is deterministic.

Run ``python benchmarks/parallel.py --help`` to measure steps/s of the possible layouts.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from internalize.agents.ppo import Learner, make_seeds_runner
from internalize.experiments.executor import WORKER_XLA_FLAGS, worker_environment


def seed_key(seed: int) -> jax.Array:
    """The root PRNG key of seed ``seed``, the same in every process."""
    return jax.random.PRNGKey(seed)


def run_local(
    factory: Callable[[], Learner], seeds: Sequence[int], num_rollouts: int, *, vmap: bool = False
) -> dict[str, Any]:
    """Run ``seeds`` in this process with one compiled program.

    Returns a dict: ``metrics`` (name -> (S, num_rollouts) NumPy array, seeds in the given order),
    ``states`` (the final TrainStates as NumPy pytrees, one per seed), ``compile_s`` and ``run_s`` (wall
    seconds spent compiling and running).
    """
    learner = factory()
    keys = np.stack([np.asarray(seed_key(s)) for s in seeds])
    if vmap:
        # The runner's jitted program is ``run_on(states, num_rollouts, world_params)`` (``run`` is a plain function
        # that calls it); the states are not used after the run, so it may write the new ones into their buffers.
        runner = make_seeds_runner(learner, donate=True)
        start = time.perf_counter()
        compiled = runner.run_on.lower(jax.eval_shape(runner.init, keys), num_rollouts,
                                       learner.world_params).compile()
        compile_s = time.perf_counter() - start
        states = runner.init(keys)
        start = time.perf_counter()
        states, metrics = jax.block_until_ready(compiled(states, learner.world_params))
        run_s = time.perf_counter() - start
        states = jax.tree.map(np.asarray, states)
        per_seed = [jax.tree.map(lambda x, i=i: x[i], states) for i in range(len(seeds))]
        return {"metrics": jax.tree.map(np.asarray, metrics), "states": per_seed, "compile_s": compile_s,
                "run_s": run_s}
    init = jax.jit(learner.init)
    run = jax.jit(learner.run, static_argnums=1)
    start = time.perf_counter()
    compiled = run.lower(jax.eval_shape(learner.init, keys[0]), num_rollouts).compile()
    compile_s = time.perf_counter() - start
    results, run_s = [], 0.0
    for key in keys:
        state = init(key)
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(state))
        run_s += time.perf_counter() - start
        results.append(jax.tree.map(np.asarray, out))
    metrics = {k: np.stack([m[k] for _, m in results]) for k in results[0][1]}
    return {"metrics": metrics, "states": [s for s, _ in results], "compile_s": compile_s, "run_s": run_s}


def _worker(index: int, core: int | None, args: tuple, out: Any) -> None:
    """Child process: pin to ``core``, run its seeds, send ``(index, result or error text)``."""
    try:
        if core is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {core})
        out.put((index, run_local(*args[:3], vmap=args[3]), None))
    except BaseException:  # report every failure to the parent instead of dying silently
        out.put((index, None, traceback.format_exc()))


def run_seeds(
    seeds: Sequence[int],
    factory: Callable[[], Learner],
    num_rollouts: int,
    *,
    processes: int = 1,
    vmap: bool = False,
    pin: bool = True,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run ``seeds`` over ``processes`` spawned workers (``processes=0``: in this process, no spawning).

    Args:
      seeds: integer seeds; seed ``s`` starts from ``jax.random.PRNGKey(s)``.
      factory: a picklable zero-argument callable returning the :class:`Learner` (e.g.
        ``functools.partial(make_train, config, Navigation(), make_params(3))``); called once per worker.
      num_rollouts: rollouts per seed.
      processes: worker processes; seeds are dealt out in contiguous blocks, as evenly as possible.
      vmap: each worker runs its seeds in one vmapped program rather than one after another.
      pin: pin worker ``i`` to core ``i mod cpu_count``.
      timeout_s: give up (and terminate the workers) after this many seconds.

    Returns:
      ``metrics`` (name -> (S, num_rollouts), in the order of ``seeds``), ``states`` (one per seed),
      ``compile_s`` and ``run_s`` (the slowest worker's), ``wall_s`` (the whole call, spawning included).

    Raises:
      ValueError: bad arguments (before any work). RuntimeError: a worker failed, died or timed out.
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: must name at least one seed, got an empty sequence.")
    if not isinstance(processes, int) or processes < 0:
        raise ValueError(f"processes: must be an integer >= 0 (0 = in this process), got {processes!r}.")
    if not isinstance(num_rollouts, int) or num_rollouts < 1:
        raise ValueError(f"num_rollouts: must be an integer >= 1, got {num_rollouts!r}.")
    start = time.perf_counter()
    if processes == 0:
        result = run_local(factory, seeds, num_rollouts, vmap=vmap)
        return result | {"wall_s": time.perf_counter() - start}
    blocks = [list(b) for b in np.array_split(np.asarray(seeds), min(processes, len(seeds)))]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    cores = os.cpu_count() or 1
    workers = []
    with worker_environment(WORKER_XLA_FLAGS):
        for i, block in enumerate(blocks):
            core = i % cores if pin else None
            proc = ctx.Process(target=_worker, args=(i, core, (factory, block, num_rollouts, vmap), out))
            proc.start()
            workers.append(proc)
    results: dict[int, dict] = {}
    try:
        while len(results) < len(workers):
            if timeout_s is not None and time.perf_counter() - start > timeout_s:
                raise RuntimeError(f"run_seeds: workers did not finish within timeout_s={timeout_s}.")
            try:
                index, result, error = out.get(timeout=1.0)
            except queue.Empty:
                dead = [i for i, p in enumerate(workers) if i not in results and p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"run_seeds: worker(s) {dead} died (exit codes "
                                       f"{[workers[i].exitcode for i in dead]}).") from None
                continue
            if error is not None:
                raise RuntimeError(f"run_seeds: worker {index} (seeds {blocks[index]}) failed:\n{error}")
            results[index] = result
    finally:
        for proc in workers:
            if proc.is_alive() and len(results) < len(workers):
                proc.terminate()
            proc.join(timeout=10)
    ordered = [results[i] for i in range(len(workers))]
    metrics = {k: np.concatenate([r["metrics"][k] for r in ordered]) for k in ordered[0]["metrics"]}
    return {
        "metrics": metrics, "states": [s for r in ordered for s in r["states"]],
        "compile_s": max(r["compile_s"] for r in ordered), "run_s": max(r["run_s"] for r in ordered),
        "wall_s": time.perf_counter() - start,
    }


def _navigation_learner(torso: str, n_blocks: int) -> Learner:
    """The paper's phase (SB3 defaults, one env, 3-block navigation) with the given torso; picklable."""
    from internalize.agents.ppo import PPOConfig, make_train
    from internalize.worlds.navigation import Navigation, make_params

    return make_train(PPOConfig(torso=torso), Navigation(), make_params(n_blocks=n_blocks))


def main(argv: Sequence[str] | None = None) -> None:
    """Measure env steps/s of 1 seed, S seeds one after another, S seeds vmapped, and P worker processes."""
    import argparse
    import functools

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--torso", choices=("cnn", "mlp"), default="mlp")
    parser.add_argument("--seeds", type=int, default=4, help="seeds for the multi-seed layouts")
    parser.add_argument("--rollouts", type=int, default=4, help="rollouts (of 2048 steps) per seed")
    parser.add_argument("--processes", type=int, default=2, help="worker processes for the process layouts")
    parser.add_argument("--layouts", default="single,sequential,vmap,procs,procs-vmap")
    parser.add_argument("--single-thread", action="store_true",
                        help="run the in-process layouts like a worker: XLA single-threaded, pinned to core 0")
    args = parser.parse_args(argv)
    if args.single_thread:  # before the first computation, which is when XLA reads its flags
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {WORKER_XLA_FLAGS}".strip()
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {0})
    factory = functools.partial(_navigation_learner, args.torso, 3)
    steps_per_seed = args.rollouts * 2048
    seeds = list(range(args.seeds))
    layouts = {
        "single": dict(seeds=seeds[:1], processes=0, vmap=False),
        "sequential": dict(seeds=seeds, processes=0, vmap=False),
        "vmap": dict(seeds=seeds, processes=0, vmap=True),
        "procs": dict(seeds=seeds, processes=args.processes, vmap=False),
        "procs-vmap": dict(seeds=seeds, processes=args.processes, vmap=True),
    }
    print(f"torso={args.torso} rollouts/seed={args.rollouts} ({steps_per_seed} steps) cpus={os.cpu_count()} "
          f"in-process XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    for name in args.layouts.split(","):
        spec = layouts[name]
        result = run_seeds(spec["seeds"], factory, args.rollouts, processes=spec["processes"], vmap=spec["vmap"])
        steps = len(spec["seeds"]) * steps_per_seed
        print(f"{name:>11}: {len(spec['seeds'])} seed(s), processes={spec['processes']}: "
              f"{steps / result['run_s']:8.0f} steps/s running, {steps / result['wall_s']:8.0f} steps/s wall "
              f"(compile {result['compile_s']:.1f}s, run {result['run_s']:.1f}s, wall {result['wall_s']:.1f}s)",
              flush=True)


if __name__ == "__main__":
    main()
