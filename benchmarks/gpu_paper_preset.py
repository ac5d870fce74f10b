"""One paper-preset experiment on the default JAX backend: every seed (and every condition of an autonomy unit)
vmapped in one program per unit, as the runner does; prints steps per second and wall time as one JSON line.

Written for an accelerator: with ``jax[cuda]`` installed it runs unchanged on the GPU. On a CPU it runs too,
slowly (the paper preset of fig4a takes hours on 2 cores); ``--fraction`` scales every phase's budget down for a
quick check of the script itself, and the JSON line says so. Never part of CI.

Usage::

    python benchmarks/gpu_paper_preset.py                          # fig4a, paper preset, 10 seeds
    python benchmarks/gpu_paper_preset.py --experiment fig5 --seeds 10
    python benchmarks/gpu_paper_preset.py --fraction 0.02 --seeds 2 # a CPU check of the script (minutes)
    python benchmarks/gpu_paper_preset.py --smoke                  # a tiny learner: a check of the script

Keys of the JSON line: ``experiment``, ``preset``, ``seeds``, ``fraction``, ``smoke``, ``backend``, ``device``,
``jax_version``, ``wall_s`` (the whole run, compiles included), ``units`` (seconds per unit, as the manifest
records them), ``env_steps`` (every environment step of every learner: socialization for each seed, each
autonomy unit for each of its condition x seed runs), ``env_steps_per_s`` (``env_steps`` / the training units'
seconds) and ``out`` (where the results went).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="fig4a",
                        help="a paper experiment: fig4a, fig3, fig4b, fig5, fig6, fig7")
    parser.add_argument("--preset", default="paper", help="paper (default) or quick")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="scale every phase's budget by this (0 < f <= 1) for a quick check; 1 = the preset")
    parser.add_argument("--out", default=None, help="output directory (default: a temporary one, removed)")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script: the experiment with a tiny learner and ISR (see smoke()), "
                             "2 seeds unless --seeds says otherwise; the numbers mean nothing")
    return parser.parse_args()


def smoke(exp):
    """``exp`` shrunk until a run is mostly compiling, for a check of a script (``--smoke``): a tiny learner (an MLP
    on 16 envs x 32 steps, one epoch) and ISR (an MLP, batch 32), 2 rollouts a phase, one-rollout chunks, at most 4
    evaluation episodes. Its worlds, conditions and units are the experiment's; its numbers mean nothing. A rollout
    of 512 steps holds a few of the caregiver's rewards even for an untrained learner (the ISR refuses data without
    any; 128 steps had none)."""
    learner = dataclasses.replace(exp.learner, torso="mlp", n_envs=16, n_steps=32, batch_size=64, n_epochs=1)
    steps = 2 * learner.rollout_steps
    isr = dataclasses.replace(exp.isr, network="mlp", encoding="onehot", batch_size=32,
                              data_sizes=tuple(n for n in exp.isr.data_sizes if n < steps))
    return dataclasses.replace(exp, learner=learner, isr=isr, socialization_steps=steps,
                               autonomy_steps=steps if exp.autonomy_steps else 0, chunk_rollouts=1,
                               evaluation_episodes=min(exp.evaluation_episodes, 4))


def scaled(exp, fraction: float):
    """``exp`` with every phase's budget scaled by ``fraction`` (at least one rollout per phase)."""
    if not 0 < fraction <= 1:
        raise SystemExit(f"--fraction: got {fraction}; allowed: a number in (0, 1].")
    if fraction == 1:
        return exp
    rollout = exp.learner.rollout_steps
    scale = lambda steps: max(rollout, int(steps * fraction))  # noqa: E731 - a local one-line scaling
    socialization = scale(exp.socialization_steps)
    sizes = tuple(n for n in exp.isr.data_sizes if n < socialization)  # Fig 3b's sizes that still fit
    return dataclasses.replace(exp, socialization_steps=socialization,
                               autonomy_steps=scale(exp.autonomy_steps) if exp.autonomy_steps else 0,
                               isr=dataclasses.replace(exp.isr, data_sizes=sizes))


def env_steps(exp) -> int:
    """Environment steps of every learner of ``exp``: the socialization of each seed, then each autonomy unit's
    condition x seed runs."""
    from internalize.experiments import phases

    seeds = len(exp.seeds)
    total = exp.learner.phase_steps(exp.socialization_steps) * seeds
    for _, _, _, conditions in phases.autonomy_groups(exp):
        total += exp.learner.phase_steps(exp.autonomy_steps) * seeds * len(conditions)
    return total


def main() -> None:
    args = _parse()
    import jax

    from internalize.experiments.paper import paper_experiment
    from internalize.experiments.runner import run_experiment
    from internalize.storage import read_json_verified

    exp = paper_experiment(args.experiment, args.preset)
    seeds = 2 if args.smoke and args.seeds is None else args.seeds
    if seeds is not None:
        exp = exp.with_seeds(seeds)
    exp = scaled(smoke(exp) if args.smoke else exp, args.fraction)
    with tempfile.TemporaryDirectory(prefix="gpu-paper-preset-") as tmp:
        out = Path(args.out or tmp)
        started = time.perf_counter()
        run_experiment(exp, out, progress=False, log=lambda _: None)
        wall = time.perf_counter() - started
        timings = read_json_verified(out / exp.name / "manifest.json").get("timings", {})
    training = sum(s for unit, s in timings.items() if unit == "socialization" or unit.startswith("autonomy"))
    steps = env_steps(exp)
    device = jax.devices()[0]
    print(json.dumps({
        "experiment": exp.name, "preset": args.preset, "seeds": len(exp.seeds), "fraction": args.fraction,
        "smoke": args.smoke, "backend": jax.default_backend(), "device": getattr(device, "device_kind", str(device)),
        "jax_version": jax.__version__, "wall_s": round(wall, 1),
        "units": {unit: round(s, 1) for unit, s in timings.items()}, "env_steps": steps,
        "env_steps_per_s": round(steps / training) if training else None,
        "out": str(out) if args.out else None,
    }))


if __name__ == "__main__":
    main()
