"""The whole paper preset's time on this machine, extrapolated from measured per-unit rates; one JSON line.

The paper preset (one environment per learner, SB3's CNN, 59 rollouts of 2,048 steps per phase, a batch-1 ISR
for one epoch, 10 seeds) takes hours on a CPU, so this runs one experiment of it (default fig4a, all its seeds)
three times with every phase cut to a few whole rollouts, as the runner runs it (``--layout vmap``: each unit's
seeds, and an autonomy unit's conditions, in one program):

1. ``--short`` rollouts per phase (default 1), with an empty compilation cache (the cold run: compiles included);
2. the same again, loading every program from that cache (warm);
3. ``--long`` rollouts per phase (default 4), warm.

Runs 2 and 3 differ by ``long - short`` rollouts per phase, so each unit's seconds per rollout, and the ISR's
seconds per update, are differences of warm runs, free of compile time (a single rollout's difference drowns in
the few seconds by which a unit's loading and tracing vary); what a warm unit takes beyond them is its fixed cost.
The paper preset's chunks are one rollout (59 is prime), as here, so each rollout is one call of the same program.

The extrapolation then walks every experiment of the paper preset (units shared between experiments, such as
Figures 4b and 5's socialization, counted once, as ``reproduce`` computes them once):

* a training unit costs its rollouts x its batch (seeds x conditions) x the measured seconds per
  seed-rollout: socialization's rate for a batch of seeds, autonomy's for a batch of conditions x seeds
  (cost taken as proportional to the batch, which on a saturated CPU it about is);
* an ISR unit costs its updates (one epoch of batch 1 over each data size's training transitions, Figure 3's five
  smaller sizes included) x the measured seconds per update of all seeds;
* evaluation its (condition, world, seed) learners x episodes x the measured seconds per episode;
* and each unit its measured fixed cost (the warm unit's time beyond its rollouts or updates).

Compile time is reported beside the estimate, not in it (a warm cache, as on a second run, skips it). Worlds differ
a little in step cost (the prosocial world steps at about 0.8x navigation's rate alone); the learner's CNN
update dominates a rollout, so one rate is used for all.

Usage::

    python benchmarks/paper_preset_cpu.py                      # fig4a, 10 seeds: about 15 min on 2 cores
    python benchmarks/paper_preset_cpu.py --seeds 2 --long 2   # a check of the script (minutes)
    python benchmarks/paper_preset_cpu.py --smoke              # a tiny learner: a check of the script
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_paper_preset import smoke  # noqa: E402 - a sibling script, on sys.path from the line above


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="fig4a", help="the paper experiment to measure (default fig4a)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's 10)")
    parser.add_argument("--short", type=int, default=1, help="rollouts per phase of the cold and the short warm run")
    parser.add_argument("--long", type=int, default=None, help="rollouts per phase of the long warm run (default 4)")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script: the experiment with a tiny learner and ISR "
                             "(gpu_paper_preset.smoke), 2 seeds and --long 2 unless given, compiled programs from the "
                             "caller's JAX cache when its environment names one (JAX_COMPILATION_CACHE_DIR) instead of "
                             "an empty one; the numbers mean nothing")
    args = parser.parse_args()
    if args.long is None:
        args.long = 2 if args.smoke else 4
    if args.smoke and args.seeds is None:
        args.seeds = 2
    return args


def with_rollouts(exp, rollouts: int):
    """``exp`` with every phase ``rollouts`` whole rollouts long and one-rollout chunks (Figure 3's smaller data
    sizes dropped: they no longer fit in the socialization)."""
    steps = rollouts * exp.learner.rollout_steps
    sizes = tuple(n for n in exp.isr.data_sizes if n < steps)
    return dataclasses.replace(exp, socialization_steps=steps, autonomy_steps=steps if exp.autonomy_steps else 0,
                               chunk_rollouts=1, isr=dataclasses.replace(exp.isr, data_sizes=sizes))


def isr_updates(exp, n_data: int | None) -> int:
    """Updates of one seed's ISR on the first ``n_data`` socialization transitions (all when None)."""
    from internalize.experiments import phases

    n_stored = exp.learner.phase_steps(exp.socialization_steps)
    n_train = int((1 - exp.isr.holdout_fraction) * (n_stored if n_data is None else n_data))
    if n_data is None:
        return phases.isr_config(exp, None, n_train).n_updates
    n_full = int((1 - exp.isr.holdout_fraction) * n_stored)
    return phases.isr_size_config(exp, n_data, n_train, n_full).n_updates


def timed_run(exp, out: Path) -> dict[str, float]:
    """Seconds per unit of one run of ``exp`` into ``out`` (the manifest's timings)."""
    from internalize.experiments.runner import run_experiment
    from internalize.storage import read_json_verified

    run_experiment(exp, out, progress=False, log=lambda _: None)
    return read_json_verified(out / exp.name / "manifest.json")["timings"]


def evaluated(exp) -> int:
    """The (condition, autonomy world, seed) learners the evaluation unit runs."""
    return len(exp.conditions) * len(exp.autonomy_worlds) * len(exp.seeds)


def rates(exp, short: int, long: int, cold: dict, warm_short: dict, warm_long: dict) -> dict:
    """Per-unit rates from the warm runs of ``short`` and ``long`` rollouts per phase."""
    from internalize.experiments import phases

    seeds = len(exp.seeds)
    groups = phases.autonomy_groups(exp)
    batch = {"socialization": seeds} | {name: seeds * len(conds) for name, _, _, conds in groups}
    # Seconds per rollout of one run (a seed, or a condition x seed): the unit's time over its batch.
    per_run_rollout = {u: (warm_long[u] - warm_short[u]) / (b * (long - short)) for u, b in batch.items()}
    fixed = {u: warm_short[u] - per_run_rollout[u] * b * short for u, b in batch.items()}
    updates = {r: isr_updates(with_rollouts(exp, r), None) for r in (short, long)}
    per_update = (warm_long["isr"] - warm_short["isr"]) / (updates[long] - updates[short])
    isr_fixed = warm_short["isr"] - per_update * updates[short]
    return {
        "socialization_s_per_seed_rollout": per_run_rollout["socialization"],
        "autonomy_s_per_run_rollout": sum(per_run_rollout[n] for n, *_ in groups) / len(groups),
        "isr_s_per_update_all_seeds": per_update, "seeds": seeds,
        "evaluation_s_per_episode": warm_short["evaluation"] / (evaluated(exp) * exp.evaluation_episodes),
        "fixed_s_per_unit": (sum(fixed.values()) + isr_fixed) / (len(fixed) + 1),
        "compile_s": sum(cold.values()) - sum(warm_short.values()),
    }


def extrapolate(rate: dict) -> dict:
    """Seconds each paper-preset experiment would take (its own seeds: 10, Figure 6 one), shared units counted
    once. An ISR update's cost is taken as proportional to the seeds it trains at once (Figure 7's ISR, batch 10
    for 10 epochs, is charged as batch 1: its updates are latency-bound too)."""
    from internalize.experiments import phases
    from internalize.experiments.paper import EXPERIMENTS, paper_experiment
    from internalize.experiments.shared import unit_key

    done, per_experiment = set(), {}
    for name in EXPERIMENTS:
        exp = paper_experiment(name, "paper")
        seeds = len(exp.seeds)
        isr_rate = rate["isr_s_per_update_all_seeds"] * seeds / rate["seeds"]
        total, units = 0.0, 0
        if ("socialization", unit_key(exp, "socialization")) not in done:
            done.add(("socialization", unit_key(exp, "socialization")))
            total += exp.learner.rollouts(exp.socialization_steps) * seeds * rate["socialization_s_per_seed_rollout"]
            units += 1
        needs_isr = any(exp.condition(c).isr for c in exp.conditions) or exp.isr.data_sizes or exp.probes
        if needs_isr and ("isr", unit_key(exp, "isr")) not in done:
            done.add(("isr", unit_key(exp, "isr")))
            n_stored = exp.learner.phase_steps(exp.socialization_steps)
            sizes = [None] + list(phases.isr_data_sizes(exp, n_stored))
            total += sum(isr_updates(exp, n) for n in sizes) * isr_rate
            units += 1
        for _, _, _, conds in phases.autonomy_groups(exp) if exp.autonomy_steps else ():
            total += exp.learner.rollouts(exp.autonomy_steps) * seeds * len(conds) * rate["autonomy_s_per_run_rollout"]
            units += 1
        if exp.evaluation_episodes and exp.autonomy_worlds:
            total += evaluated(exp) * exp.evaluation_episodes * rate["evaluation_s_per_episode"]
            units += 1
        per_experiment[name] = round(total + units * rate["fixed_s_per_unit"])
    return per_experiment


def main() -> None:
    args = _parse()
    if not (args.smoke and "JAX_COMPILATION_CACHE_DIR" in os.environ):
        cache = tempfile.mkdtemp(prefix="paper-preset-xla-")
        # Before JAX is imported: every run of this process compiles into, and then loads from, this empty cache.
        os.environ.update({"JAX_COMPILATION_CACHE_DIR": cache, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    import jax

    from internalize.experiments.paper import paper_experiment

    exp = paper_experiment(args.experiment, "paper")
    if args.seeds is not None:
        exp = exp.with_seeds(args.seeds)
    if args.smoke:
        exp = smoke(exp)
    short, long = args.short, args.long
    if not 1 <= short < long:
        raise SystemExit(f"--short {short}, --long {long}: allowed: 1 <= short < long.")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paper-preset-cpu-") as tmp:
        cold = timed_run(with_rollouts(exp, short), Path(tmp) / "cold")
        warm_short = timed_run(with_rollouts(exp, short), Path(tmp) / "short")
        warm_long = timed_run(with_rollouts(exp, long), Path(tmp) / "long")
    rate = rates(exp, short, long, cold, warm_short, warm_long)
    per_experiment = extrapolate(rate)
    device = jax.devices()[0]
    print(json.dumps({
        "measured": exp.name, "seeds": len(exp.seeds), "rollouts": [short, long], "smoke": args.smoke,
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)), "cpus": os.cpu_count(), "jax_version": jax.__version__,
        "wall_s": round(time.perf_counter() - started, 1),
        "units_s": {"cold": cold, "warm_short": warm_short, "warm_long": warm_long},
        "rates": {k: round(v, 4) for k, v in rate.items()},
        "paper_preset_s": per_experiment, "paper_preset_total_h": round(sum(per_experiment.values()) / 3600, 2),
    }))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
