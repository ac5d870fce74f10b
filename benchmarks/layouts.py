"""The runner's two layouts on this machine: one paper experiment run with ``--layout vmap`` and with ``--layout
per-core`` (and, asked for, ``per-core@ray``: per-core seeds on a Ray instance of this machine, ``--backend ray``),
each from a cold compilation cache in a fresh process; prints one JSON line.

What it answers: which layout a CPU should use (``experiments.layout``). Both runs compute the same experiment
(the same seeds, budgets and units), so their wall times compare directly; their numbers differ in float
rounding, which is why a run directory keeps its layout. Never part of CI.

Usage::

    python benchmarks/layouts.py                                   # fig4b, quick preset, its 10 seeds
    python benchmarks/layouts.py --experiment fig7 --seeds 4 --fraction 0.25
    python benchmarks/layouts.py --processes 4 --layouts per-core   # one layout only
    python benchmarks/layouts.py --layouts per-core,per-core@ray    # the local backend against Ray
    python benchmarks/layouts.py --smoke                           # a tiny learner: a check of the script

Keys of the JSON line: ``experiment``, ``preset``, ``seeds``, ``fraction``, ``cpus`` (cores this process may
use), ``processes`` (per-core workers), ``env_steps`` (every environment step of every learner), and per layout
``wall_s`` (the whole run from a cold cache: compiles, training, ISR, evaluation, writing) and
``env_steps_per_s`` (``env_steps`` / ``wall_s``; ``per-core@ray`` includes starting Ray and its workers);
``speedup`` = vmap wall / per-core wall when both ran; ``ray_overhead`` = per-core@ray wall / per-core wall when
both ran; ``smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_paper_preset import env_steps, scaled, smoke  # noqa: E402 - a sibling script, on sys.path from the line above
from internalize.xla_cache import cache_settings  # noqa: E402 - first-party, after the sibling import above


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="fig4b", help="a paper experiment: fig4a, fig3, fig4b, fig5, ...")
    parser.add_argument("--preset", default="quick", help="quick (default) or paper")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    parser.add_argument("--fraction", type=float, default=1.0, help="scale every phase's budget (0 < f <= 1)")
    parser.add_argument("--processes", type=int, default=None, help="per-core workers (default: one per core)")
    parser.add_argument("--layouts", default="vmap,per-core", help="comma-separated: vmap, per-core, per-core@ray")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script: the experiment with a tiny learner and ISR (gpu_paper_preset.smoke), "
                             "2 seeds unless --seeds says otherwise, compiled programs from the caller's JAX cache "
                             "when its environment names one (JAX_COMPILATION_CACHE_DIR) instead of a cold one; the "
                             "numbers mean nothing")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one layout, print seconds
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    layouts = [x for x in args.layouts.split(",") if x]
    if not layouts or set(layouts) - {"vmap", "per-core", "per-core@ray"}:
        raise SystemExit(f"--layouts: got {args.layouts!r}; allowed: vmap, per-core, per-core@ray, comma-separated.")
    args.layouts = layouts
    return args


def _experiment(args: argparse.Namespace):
    from internalize.experiments.paper import paper_experiment

    exp = paper_experiment(args.experiment, args.preset, 0)
    seeds = 2 if args.smoke and args.seeds is None else args.seeds
    exp = exp if seeds is None else exp.with_seeds(seeds)
    return scaled(smoke(exp) if args.smoke else exp, args.fraction)


def _one(args: argparse.Namespace) -> None:
    """In a child process (its own cold cache, set by the parent): run the experiment, print its wall seconds."""
    started = time.perf_counter()
    layout, _, backend = args.one.partition("@")
    executor = None
    if backend == "ray":  # started before any JAX work, as the command line does
        from internalize.experiments.backend import make_executor

        executor = make_executor("ray", processes=args.processes)
    from internalize.experiments.layout import run_with_layout

    run_with_layout(_experiment(args), args.out, layout=layout, processes=args.processes, progress=False,
                    log=lambda _: None, executor=executor)
    if executor is not None:
        executor.close()
    print(json.dumps({"wall_s": round(time.perf_counter() - started, 1)}))


def main() -> None:
    args = _parse()
    if args.one:
        return _one(args)
    from internalize.experiments.local_executor import default_processes

    exp = _experiment(args)
    steps = env_steps(exp)
    processes = args.processes or default_processes()
    result = {"experiment": exp.name, "preset": args.preset, "seeds": len(exp.seeds), "fraction": args.fraction,
              "smoke": args.smoke, "cpus": default_processes(), "processes": processes, "env_steps": steps}
    forwarded = [f"--{k}={v}" for k, v in (("experiment", args.experiment), ("preset", args.preset),
                                           ("seeds", args.seeds), ("fraction", args.fraction),
                                           ("processes", processes)) if v is not None] + ["--smoke"] * args.smoke
    # Each layout from a cold cache of its own; a --smoke check reuses the caller's when it has one (its times mean
    # nothing, and a tiny experiment's compiles are most of them).
    cold = not (args.smoke and "JAX_COMPILATION_CACHE_DIR" in os.environ)
    for layout in args.layouts:
        with tempfile.TemporaryDirectory(prefix=f"layout-{layout}-") as tmp:
            env = {**os.environ, **(cache_settings(Path(tmp) / "xla-cache") if cold else {})}
            done = subprocess.run([sys.executable, __file__, *forwarded, f"--one={layout}",
                                   f"--out={Path(tmp) / 'runs'}"], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"layout {layout} failed:\n{done.stderr[-3000:]}")
            wall = json.loads(done.stdout.strip().splitlines()[-1])["wall_s"]
        result[layout] = {"wall_s": wall, "env_steps_per_s": round(steps / wall)}
    if "vmap" in result and "per-core" in result:
        result["speedup"] = round(result["vmap"]["wall_s"] / result["per-core"]["wall_s"], 2)
    if "per-core@ray" in result and "per-core" in result:
        result["ray_overhead"] = round(result["per-core@ray"]["wall_s"] / result["per-core"]["wall_s"], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
