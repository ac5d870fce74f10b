"""Our JAX PPO against Stable-Baselines3 PPO on the same navigation world: throughput, FLOP ceiling, learning parity.

Both sides train the paper's agent (docs/paper-vs-reference.md, 'Policy and PPO') on the 3-random-block navigation
world with the same hyper-parameters: n_steps 2048, one env, batch 64, 10 epochs, lr 1e-4, SB3's other
defaults; the policy is the minigrid CNN (``cnn``) or SB3's ``MlpPolicy`` layout (``mlp``). SB3 runs in its own
virtual environment (``benchmarks/setup_sb3_env.sh``, created on first use) through ``benchmarks/sb3_peer.py``,
which drives our Gymnasium adapter; see ``benchmarks/README.md``.

What it measures, for each policy:

* **SB3**: env steps/s of one seed in one process (one torch thread), timed over ``--sb3-rollouts`` rollouts,
  setup excluded. SB3 gets the whole machine for 10 seeds too: one process per core, *estimated* as the
  per-process rate × min(10, cores) (perfect scaling, an upper bound for SB3).
* **ours, 1 seed**: ``jax.jit(learner.run)`` compiled for a chunk of ``--rollouts`` rollouts (compile time
  reported apart), then the chunk run ``--repeats`` times; the best run gives the steady-state rate.
* **ours, 10 seeds** (``--seeds``) on the whole machine, each layout measured (``--layouts``): ``sequential``
  (one program in this process, seeds one after another, XLA's default threading), ``vmap`` (all seeds in one
  vmapped program in this process), ``procs`` (one worker process per core, seeds one
  after another, ``run_seeds`` of ``benchmarks/parallel.py``), ``procs-vmap`` (one worker per core, its seeds
  vmapped). Each seed runs ``--seed-rollouts`` rollouts (default: enough for about ``--layout-seconds`` of
  running). Steady-state rate = seeds × steps / run time (compile apart); the best layout is the headline.
* **FLOP ceiling**: the network's multiply-adds counted from its layers, × (1 rollout forward + n_epochs ×
  (forward + backward ≈ 3 forwards)) = FLOPs per env step; this CPU's float32 matmul rate measured with jitted
  matmuls (best of a few sizes and repeats, read before and after our runs, the higher reading kept);
  ``cnn_flop_fraction`` = our best 10-seed FLOP rate / that ceiling.
* **learning parity** (``--parity``, on by default): goals per episode after the same number of steps, SB3 vs
  ours, ``--parity-seeds`` seeds × ``--parity-rollouts`` rollouts of ``--parity-torso`` at ``--parity-lr`` (both
  sides); each seed's value is the
  mean of the last ``--parity-window`` rollouts' goals per episode; ours is "inside" when our seed mean lies in
  SB3's seed spread (the wider of min..max and mean ± 2 sd).

Prints progress on stderr and ONE JSON line on stdout at the end. Usage::

    .venv/bin/python benchmarks/ppo_vs_sb3.py            # full: ~8 min on 2 cores
    .venv/bin/python benchmarks/ppo_vs_sb3.py --quick    # every piece on small budgets, a few minutes
    .venv/bin/python benchmarks/ppo_vs_sb3.py --smoke    # a check of the script: the MLP only, tiny budgets
    .venv/bin/python benchmarks/ppo_vs_sb3.py --no-parity --torsos cnn
    .venv/bin/python benchmarks/ppo_vs_sb3.py --no-sb3   # our side only: no SB3 environment, no ratios, no parity

Main keys: ``cnn_ratio_10_seeds_vs_sb3``, ``mlp_ratio_10_seeds_vs_sb3`` (ours / SB3 estimate, 10 seeds),
``cnn_flop_fraction``, ``sb3_{cnn,mlp}_steps_per_s``, ``ours_{cnn,mlp}_1_seed_steps_per_s``,
``ours_{cnn,mlp}_10_seeds_steps_per_s`` (best layout, named in ``ours_*_10_seeds_layout``), compile times,
``cpu_count``, ``versions``, ``parity_sb3_goals``, ``parity_ours_goals``, ``parity_inside_spread``,
``total_wall_s``, ``quick``, ``smoke``, ``sb3`` (whether the SB3 side ran). The ``details`` entry holds every
layout's numbers.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
N_STEPS = 2048  # SB3's default, the paper's setting (--n-steps changes it on both sides, for smoke runs only)
N_EPOCHS = 10
BATCH = 64
LR = 1e-4
T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[ppo_vs_sb3 {time.perf_counter() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def make_learner(torso: str, n_blocks: int, n_steps: int = N_STEPS, learning_rate: float = LR):
    """The paper's PPO phase on the navigation world (picklable through functools.partial for worker processes)."""
    from internalize.agents.ppo import PPOConfig, make_train
    from internalize.worlds.navigation import Navigation, make_params

    config = PPOConfig(learning_rate=learning_rate, n_steps=n_steps, n_envs=1, batch_size=BATCH, n_epochs=N_EPOCHS,
                       torso=torso)
    return make_train(config, Navigation(), make_params(n_blocks=n_blocks))


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ----------------------------------------------------------------------------------------------------- SB3 side

def ensure_sb3_python(args: argparse.Namespace) -> str:
    if args.sb3_python:
        return args.sb3_python
    venv = Path(os.environ.get("SB3_VENV", HERE / ".venv-sb3"))
    log(f"SB3 environment: {venv} (created by setup_sb3_env.sh on first use)")
    subprocess.run(["bash", str(HERE / "setup_sb3_env.sh")], check=True, env=os.environ | {"SB3_VENV": str(venv)})
    return str(venv / "bin" / "python")


def peer_cmd(python: str, policy: str, rollouts: int, seed: int, blocks: int, n_steps: int, *, probe: int = 2048,
             pin: int | None = None, learning_rate: float = LR) -> list[str]:
    cmd = [python, str(HERE / "sb3_peer.py"), "--policy", policy, "--rollouts", str(rollouts), "--seed", str(seed),
           "--blocks", str(blocks), "--n-steps", str(n_steps), "--env-probe-steps", str(probe),
           "--learning-rate", repr(learning_rate)]
    if pin is not None:
        cmd += ["--pin-core", str(pin)]
    return cmd


def _peer_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env.pop("PYTHONPATH", None)
    return env


def run_peers(cmds: list[list[str]], parallel: int, timeout_s: float) -> list[dict]:
    """Run peer commands, ``parallel`` at a time; each prints one JSON line. Never leaves a child behind."""
    results: list[dict | None] = [None] * len(cmds)
    pending = list(enumerate(cmds))
    running: list[tuple[int, subprocess.Popen]] = []
    deadline = time.perf_counter() + timeout_s
    try:
        while pending or running:
            while pending and len(running) < parallel:
                i, cmd = pending.pop(0)
                running.append((i, subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=_peer_env())))
            i, proc = running.pop(0)
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.perf_counter()))
            if proc.returncode != 0:
                raise RuntimeError(f"sb3_peer failed (exit {proc.returncode}): {' '.join(cmds[i])}")
            results[i] = json.loads(out.strip().splitlines()[-1])
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------- our side

def count_macs(network, params, obs) -> dict[str, int]:
    """Multiply-adds of one forward pass on one observation, from the network's conv and dense layers."""
    import jax
    import numpy as np

    _, state = network.apply(params, obs, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    total, per_layer = 0, {}

    def walk(p, it, path):
        nonlocal total
        for name, sub in p.items():
            if name == "weight":
                # A Dense weight (out, in), maybe applied at every position of an (h, w, in) map (an im2col
                # convolution): each output element costs `in` MACs.
                fan_in = np.asarray(sub).shape[-1]
                out = it["__call__"][0].shape  # the layer's output on one observation: (1, ..., features)
                macs = int(np.prod(out[1:])) * fan_in
                per_layer["/".join(path)] = macs
                total += macs
            elif isinstance(sub, dict):
                walk(sub, it.get(name, {}), path + [name])

    walk(jax.tree.map(lambda x: x, params["params"]), inter, [])
    return {"total": total, "layers": per_layer}


def xla_forward_flops(network, params, obs) -> float | None:
    import jax

    try:
        cost = jax.jit(network.apply).lower(params, obs).compile().cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0]
        return float(cost["flops"])
    except Exception:  # cost analysis is best-effort across JAX versions
        return None


def matmul_ceiling(repeats: int) -> dict:
    """This CPU's float32 matmul rate (FLOP/s) with jitted matmuls in this process (all cores), best of a few."""
    import jax
    import jax.numpy as jnp

    shapes = {"1024x1024x1024": (1024, 1024, 1024), "2048x2304x128": (2048, 2304, 128),
              "64x2304x128": (64, 2304, 128)}
    rates = {}
    for name, (m, k, n) in shapes.items():
        a = jax.random.normal(jax.random.key(0), (m, k), jnp.float32)
        b = jax.random.normal(jax.random.key(1), (k, n), jnp.float32)
        f = jax.jit(lambda a, b: a @ b)
        jax.block_until_ready(f(a, b))
        flops = 2.0 * m * k * n
        inner = max(1, int(2e9 // flops))  # ~2 GFLOP per timed call group
        best = math.inf
        for _ in range(repeats):
            t = time.perf_counter()
            for _ in range(inner):
                out = f(a, b)
            jax.block_until_ready(out)
            best = min(best, (time.perf_counter() - t) / inner)
        rates[name] = flops / best
    return {"flops_per_s": max(rates.values()), "by_shape_gflops": {k: round(v / 1e9, 2) for k, v in rates.items()}}


def ours_one_seed(torso: str, blocks: int, n_steps: int, rollouts: int, repeats: int) -> dict:
    import jax

    learner = make_learner(torso, blocks, n_steps)
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    run = jax.jit(learner.run, static_argnums=1)
    t = time.perf_counter()
    compiled = run.lower(state, rollouts).compile()
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        state, metrics = jax.block_until_ready(compiled(state))
        times.append(time.perf_counter() - t)
    steps = rollouts * n_steps
    return {"compile_s": round(compile_s, 2), "run_s": [round(x, 3) for x in times],
            "steps_per_s": round(steps / min(times), 1), "steps": steps}


def ours_many_seeds(torso: str, blocks: int, n_steps: int, seeds: int, rollouts: int, layout: str) -> dict:
    from parallel import run_seeds  # benchmarks/parallel.py, beside this script

    factory = functools.partial(make_learner, torso, blocks, n_steps)
    n_proc = {"sequential": 0, "vmap": 0, "procs": min(cores(), seeds), "procs-vmap": min(cores(), seeds)}[layout]
    res = run_seeds(list(range(seeds)), factory, rollouts, processes=n_proc, vmap=layout in ("vmap", "procs-vmap"))
    steps = seeds * rollouts * n_steps
    return {"layout": layout, "processes": n_proc, "compile_s": round(res["compile_s"], 2),
            "run_s": round(res["run_s"], 3), "wall_s": round(res["wall_s"], 2),
            "steps_per_s": round(steps / res["run_s"], 1), "steps_per_s_incl_compile": round(steps / res["wall_s"], 1),
            "steps": steps}


def tail_mean(curve, window: int) -> float:
    import numpy as np

    vals = np.asarray(curve, dtype=float)[-window:]
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else float("nan")


# -------------------------------------------------------------------------------------------------------- main

def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small budgets: 1 rollout everywhere, tiny parity")
    p.add_argument("--smoke", action="store_true",
                   help="a check of the script (tests/test_benchmarks.py): --quick's budgets with 64-step rollouts, "
                        "the MLP only unless --torsos says otherwise; the numbers mean nothing")
    p.add_argument("--torsos", default=None, help="policies to measure: cnn, mlp or both (default cnn,mlp)")
    p.add_argument("--blocks", type=int, default=3, help="random blocks per layout")
    p.add_argument("--n-steps", type=int, default=N_STEPS,
                   help="PPO n_steps on both sides (2048, the paper's; smaller only for smoke runs)")
    p.add_argument("--sb3-rollouts", type=int, default=4, help="rollouts SB3 is timed over")
    p.add_argument("--rollouts", type=int, default=2, help="rollouts in our 1-seed timed chunk")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of our 1-seed chunk (best kept)")
    p.add_argument("--seed-rollouts", type=int, default=0,
                   help="rollouts per seed in the multi-seed layouts (each layout runs seeds x this x n_steps steps); "
                        "0 = enough for about --layout-seconds of running, judged from the 1-seed rate")
    p.add_argument("--layout-seconds", type=float, default=5.0,
                   help="target run time of each multi-seed layout when --seed-rollouts is 0 (a run of a fraction "
                        "of a second, as 10 seeds x 1 rollout of the MLP, is mostly timing noise)")
    p.add_argument("--seeds", type=int, default=10, help="seeds for the whole-machine comparison")
    p.add_argument("--layouts", default="sequential,vmap,procs,procs-vmap",
                   help="our multi-seed layouts to measure (comma-separated)")
    p.add_argument("--parity", action=argparse.BooleanOptionalAction, default=True, help="run learning parity")
    p.add_argument("--parity-torso", choices=("cnn", "mlp"), default="mlp")
    p.add_argument("--parity-seeds", type=int, default=6,
                   help="seeds a side (with 3, seed-to-seed spread alone moved the whole-run means apart by 4 sd)")
    p.add_argument("--parity-rollouts", type=int, default=40)
    p.add_argument("--parity-window", type=int, default=5, help="last rollouts averaged into a seed's value")
    p.add_argument("--parity-lr", type=float, default=1e-3,
                   help="learning rate of both sides in the parity runs (at the paper's 1e-4 the MLP learns, on both "
                        "sides, to stop walking within 40 rollouts, so goals are a trivially equal 0)")
    p.add_argument("--matmul-repeats", type=int, default=5)
    p.add_argument("--sb3", action=argparse.BooleanOptionalAction, default=True,
                   help="run the SB3 side (--no-sb3: our side only, no SB3 environment built or run, so no ratios "
                        "and no parity)")
    p.add_argument("--sb3-python", default=None, help="python of an existing SB3 environment (skips the setup)")
    p.add_argument("--peer-timeout", type=float, default=3600.0, help="seconds before SB3 runs are killed")
    args = p.parse_args(argv)
    if args.quick or args.smoke:  # every piece runs, on budgets too small to mean anything
        args.n_steps, args.seeds = (64 if args.smoke else 256), 2
        args.sb3_rollouts, args.rollouts, args.repeats, args.seed_rollouts = 1, 1, 1, 1
        args.parity_seeds, args.parity_rollouts, args.parity_window = 2, 2, 1
        args.matmul_repeats = 2
    if args.n_steps < BATCH or args.n_steps % BATCH:
        p.error(f"--n-steps must be a multiple of the batch size {BATCH}")
    args.torsos = [t for t in (args.torsos or ("mlp" if args.smoke else "cnn,mlp")).split(",") if t]
    args.layouts = [x for x in args.layouts.split(",") if x]
    bad = [t for t in args.torsos if t not in ("cnn", "mlp")] + [
        x for x in args.layouts if x not in ("sequential", "vmap", "procs", "procs-vmap")]
    if bad or not args.torsos or not args.layouts:
        p.error(f"unknown or missing torso/layout: {bad}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import flax
    import jax
    import jax.numpy as jnp
    import jaxlib
    import numpy as np
    import optax

    ncpu = cores()
    out: dict = {"benchmark": "ppo_vs_sb3", "quick": args.quick, "smoke": args.smoke, "sb3": args.sb3,
                 "world": f"navigation, {args.blocks} random blocks, reward R_e + R_s, 20-step episodes",
                 "ppo": {"n_steps": args.n_steps, "n_envs": 1, "batch_size": BATCH, "n_epochs": N_EPOCHS,
                         "learning_rate": LR},
                 "seeds_compared": args.seeds, "cpu_count": os.cpu_count(), "cores_available": ncpu,
                 "platform": platform.platform(),
                 "cpu": _cpu_name()}
    details: dict = {}

    sb3_python = None
    if args.sb3:
        t = time.perf_counter()
        sb3_python = ensure_sb3_python(args)
        out["sb3_env_setup_s"] = round(time.perf_counter() - t, 1)

    log("matmul ceiling ...")
    ceiling = matmul_ceiling(args.matmul_repeats)
    out["matmul_ceiling_gflops"] = round(ceiling["flops_per_s"] / 1e9, 2)
    details["matmul_gflops_by_shape"] = ceiling["by_shape_gflops"]
    log(f"matmul ceiling {out['matmul_ceiling_gflops']} GFLOP/s {ceiling['by_shape_gflops']}")

    sb3_versions = None
    achieved: dict[str, tuple[float, float]] = {}  # torso -> (10-seed, 1-seed) FLOP/s
    for torso in args.torsos:
        learner = make_learner(torso, args.blocks)
        obs = jnp.zeros((1, 9, 9, 4), jnp.uint8)
        params = learner.network.init(jax.random.PRNGKey(0), obs)
        macs = count_macs(learner.network, params, obs)
        fwd_flops = 2 * macs["total"]
        step_flops = fwd_flops * (1 + 3 * N_EPOCHS)
        n_params = int(sum(np.asarray(x).size for x in jax.tree.leaves(params)))
        details[f"{torso}_network"] = {"params": n_params, "forward_macs": macs["total"],
                                       "forward_macs_by_layer": macs["layers"],
                                       "xla_forward_flops": xla_forward_flops(learner.network, params, obs),
                                       "ppo_flops_per_env_step": step_flops}
        out[f"{torso}_forward_macs"] = macs["total"]
        out[f"{torso}_ppo_mflop_per_env_step"] = round(step_flops / 1e6, 2)

        sb3 = None
        if sb3_python is not None:
            log(f"{torso}: SB3, 1 seed, {args.sb3_rollouts} rollouts ...")
            cmd = peer_cmd(sb3_python, torso, args.sb3_rollouts, 0, args.blocks, args.n_steps)
            sb3 = run_peers([cmd], 1, args.peer_timeout)[0]
            sb3_versions = sb3["versions"]
            details[f"sb3_{torso}"] = {k: sb3[k] for k in ("steps", "setup_s", "learn_s", "steps_per_s",
                                                             "env_only_steps_per_s", "policy_params",
                                                             "observation_space", "obs_scaled_by_255")}
            out[f"sb3_{torso}_steps_per_s"] = sb3["steps_per_s"]
            out[f"sb3_{torso}_policy_params"] = sb3["policy_params"]
            sb3_10 = sb3["steps_per_s"] * min(args.seeds, ncpu)
            out[f"sb3_{torso}_10_seeds_steps_per_s_est"] = round(sb3_10, 1)
            log(f"{torso}: SB3 {sb3['steps_per_s']} steps/s (world alone {sb3['env_only_steps_per_s']} steps/s)")

        log(f"{torso}: ours, 1 seed, {args.rollouts} rollouts x {args.repeats} ...")
        one = ours_one_seed(torso, args.blocks, args.n_steps, args.rollouts, args.repeats)
        details[f"ours_{torso}_1_seed"] = one
        out[f"ours_{torso}_1_seed_steps_per_s"] = one["steps_per_s"]
        out[f"ours_{torso}_1_seed_compile_s"] = one["compile_s"]
        log(f"{torso}: ours 1 seed {one['steps_per_s']} steps/s (compile {one['compile_s']} s)")

        layouts = {}
        seed_rollouts = args.seed_rollouts or max(1, math.ceil(
            args.layout_seconds * one["steps_per_s"] * ncpu / (args.seeds * args.n_steps)))
        details[f"ours_{torso}_seed_rollouts"] = seed_rollouts
        for layout in args.layouts:
            log(f"{torso}: ours, {args.seeds} seeds x {seed_rollouts} rollouts, layout {layout} ...")
            layouts[layout] = ours_many_seeds(torso, args.blocks, args.n_steps, args.seeds, seed_rollouts, layout)
            log(f"{torso}: ours {args.seeds} seeds {layout}: {layouts[layout]['steps_per_s']} steps/s "
                f"(compile {layouts[layout]['compile_s']} s)")
        details[f"ours_{torso}_{args.seeds}_seeds"] = layouts
        best = max(layouts.values(), key=lambda r: r["steps_per_s"])
        out[f"ours_{torso}_10_seeds_steps_per_s"] = best["steps_per_s"]
        out[f"ours_{torso}_10_seeds_layout"] = best["layout"]
        out[f"ours_{torso}_10_seeds_compile_s"] = best["compile_s"]
        out[f"ours_{torso}_10_seeds_by_layout_steps_per_s"] = {k: v["steps_per_s"] for k, v in layouts.items()}
        if sb3 is not None:
            out[f"{torso}_ratio_1_seed_vs_sb3"] = round(one["steps_per_s"] / sb3["steps_per_s"], 2)
            out[f"{torso}_ratio_10_seeds_vs_sb3"] = round(best["steps_per_s"] / sb3_10, 2)
        out[f"{torso}_achieved_gflops_10_seeds"] = round(best["steps_per_s"] * step_flops / 1e9, 2)
        achieved[torso] = (best["steps_per_s"] * step_flops, one["steps_per_s"] * step_flops)

    # The ceiling again, now that everything else ran: a VM's matmul rate drifts by tens of percent between
    # minutes, and the higher of the two readings (the harder one to reach) is the ceiling.
    log("matmul ceiling, second reading ...")
    again = matmul_ceiling(args.matmul_repeats)
    details["matmul_gflops_by_shape_second"] = again["by_shape_gflops"]
    details["matmul_ceiling_gflops_readings"] = [out["matmul_ceiling_gflops"], round(again["flops_per_s"] / 1e9, 2)]
    ceiling_flops = max(ceiling["flops_per_s"], again["flops_per_s"])
    out["matmul_ceiling_gflops"] = round(ceiling_flops / 1e9, 2)
    log(f"matmul ceiling {out['matmul_ceiling_gflops']} GFLOP/s (readings {details['matmul_ceiling_gflops_readings']})")
    for torso, (ten, one_seed) in achieved.items():
        out[f"{torso}_flop_fraction"] = round(ten / ceiling_flops, 4)
        out[f"{torso}_1_seed_flop_fraction"] = round(one_seed / ceiling_flops, 4)

    if sb3_python is not None:
        out["sb3_10_seeds_estimate"] = (f"SB3 per-process rate (1 seed, 1 torch thread) x min({args.seeds}, "
                                        f"{ncpu} cores) processes, one per core, assuming perfect scaling")
    out["flop_model"] = ("2 x forward multiply-adds (each output element of a conv or dense layer costs its fan-in) x "
                         f"(1 rollout forward + {N_EPOCHS} epochs x 3 for forward+backward) per env step; ceiling = "
                         "best jitted float32 matmul rate on this CPU (all cores), the higher of a reading before "
                         "and one after our runs")
    out["targets"] = {"cnn_flop_fraction": 0.5, "mlp_ratio_10_seeds_vs_sb3": 100.0}
    if "cnn_flop_fraction" in out:
        out["meets_cnn_flop_target"] = out["cnn_flop_fraction"] >= 0.5
    if "mlp_ratio_10_seeds_vs_sb3" in out:
        out["meets_mlp_ratio_target"] = out["mlp_ratio_10_seeds_vs_sb3"] >= 100.0

    if args.parity and sb3_python is not None:
        out.update(parity(args, sb3_python, ncpu, details))
    elif args.parity:
        log("parity skipped: it compares against the SB3 side, and --no-sb3 was given")

    out["versions"] = {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                       "flax": flax.__version__, "optax": optax.__version__, "numpy": np.__version__,
                       "sb3_peer": sb3_versions}
    out["details"] = details
    out["total_wall_s"] = round(time.perf_counter() - T0, 1)
    log(f"done in {out['total_wall_s']} s")
    print(json.dumps(out), flush=True)


def compare(sb3_vals: list[float], ours_vals: list[float]) -> dict:
    """Is our seed mean inside SB3's seed spread (the wider of min..max and mean ± 2 sd)? Plus Welch's t-test."""
    import numpy as np

    s_mean, o_mean = float(np.mean(sb3_vals)), float(np.mean(ours_vals))
    s_sd = float(np.std(sb3_vals, ddof=1)) if len(sb3_vals) > 1 else 0.0
    lo, hi = min(min(sb3_vals), s_mean - 2 * s_sd), max(max(sb3_vals), s_mean + 2 * s_sd)
    p = None
    if len(sb3_vals) > 1 and len(ours_vals) > 1 and (np.ptp(sb3_vals) > 0 or np.ptp(ours_vals) > 0):
        from scipy import stats

        p = round(float(stats.ttest_ind(ours_vals, sb3_vals, equal_var=False).pvalue), 4)
    return {"sb3": [round(v, 3) for v in sb3_vals], "ours": [round(v, 3) for v in ours_vals],
            "sb3_mean_sd": [round(s_mean, 3), round(s_sd, 3)], "ours_mean": round(o_mean, 3),
            "sb3_spread": [round(lo, 3), round(hi, 3)],
            "inside_minmax": bool(min(sb3_vals) <= o_mean <= max(sb3_vals)),
            "inside_spread": bool(lo <= o_mean <= hi),
            "ours_seeds_inside_spread": int(sum(lo <= v <= hi for v in ours_vals)), "welch_p": p}


def parity(args: argparse.Namespace, sb3_python: str, ncpu: int, details: dict) -> dict:
    """Learning parity: the same number of steps on both sides, several seeds each, compared seed spread to mean.

    Three per-seed values: ``goals`` (goals per episode, mean of the last ``window`` rollouts: where learning got
    to), ``goals_auc`` (mean over every rollout: how fast it got there) and ``return`` (undiscounted episode return
    R_e + R_s, last ``window`` rollouts). ``parity_inside_spread`` is the first; ``parity_all_inside_spread`` all.
    """
    import numpy as np

    from parallel import run_seeds  # benchmarks/parallel.py, beside this script

    torso, seeds, rollouts, window = args.parity_torso, args.parity_seeds, args.parity_rollouts, args.parity_window
    log(f"parity: SB3 {torso}, lr {args.parity_lr}, {seeds} seeds x {rollouts} rollouts, "
        f"{min(ncpu, seeds)} at a time ...")
    cmds = [peer_cmd(sb3_python, torso, rollouts, s, args.blocks, args.n_steps, probe=0, pin=s % ncpu,
                     learning_rate=args.parity_lr) for s in range(seeds)]
    sb3_runs = run_peers(cmds, min(ncpu, seeds), args.peer_timeout)
    sb3_goals = np.array([r["goals_per_episode"] for r in sb3_runs], dtype=float)
    sb3_returns = np.array([r["return_per_episode"] for r in sb3_runs], dtype=float)
    log(f"parity: ours {torso}, {seeds} seeds x {rollouts} rollouts ...")
    factory = functools.partial(make_learner, torso, args.blocks, args.n_steps, args.parity_lr)
    res = run_seeds(list(range(seeds)), factory, rollouts, processes=min(ncpu, seeds))
    ours_goals = np.asarray(res["metrics"]["goals_per_episode"], dtype=float)
    ours_returns = np.asarray(res["metrics"]["utility_return"], dtype=float)

    goals = compare([tail_mean(c, window) for c in sb3_goals], [tail_mean(c, window) for c in ours_goals])
    auc = compare([tail_mean(c, rollouts) for c in sb3_goals], [tail_mean(c, rollouts) for c in ours_goals])
    ret = compare([tail_mean(c, window) for c in sb3_returns], [tail_mean(c, window) for c in ours_returns])
    curve = lambda a: [round(float(x), 3) for x in np.nanmean(a, axis=0)]  # noqa: E731 - a local mean over seeds
    details["parity_goals_curves"] = {"sb3": curve(sb3_goals), "ours": curve(ours_goals)}
    details["parity_return_curves"] = {"sb3": curve(sb3_returns), "ours": curve(ours_returns)}
    details["parity_goals"], details["parity_goals_auc"], details["parity_return"] = goals, auc, ret
    log(f"parity: goals SB3 {goals['sb3']} vs ours {goals['ours']}; whole-curve goals SB3 {auc['sb3']} vs ours "
        f"{auc['ours']}; return SB3 {ret['sb3']} vs ours {ret['ours']}")
    return {
        "parity_config": {"torso": torso, "seeds": seeds, "rollouts": rollouts, "learning_rate": args.parity_lr,
                          "steps_per_seed": rollouts * args.n_steps,
                          "goals": f"goals per episode, mean of the last {window} rollout(s)",
                          "goals_auc": "goals per episode, mean over all rollouts",
                          "return": f"undiscounted episode return R_e + R_s, mean of the last {window} rollout(s)",
                          "inside_spread": "our seed mean within the wider of SB3's seed min..max and mean +- 2 sd"},
        "parity_sb3_goals": goals["sb3"],
        "parity_ours_goals": goals["ours"],
        "parity_sb3_spread": goals["sb3_spread"],
        "parity_ours_mean": goals["ours_mean"],
        "parity_inside_spread": goals["inside_spread"],
        "parity_welch_p": goals["welch_p"],
        "parity_sb3_goals_auc": auc["sb3"],
        "parity_ours_goals_auc": auc["ours"],
        "parity_goals_auc_inside_spread": auc["inside_spread"],
        "parity_sb3_return": ret["sb3"],
        "parity_ours_return": ret["ours"],
        "parity_return_inside_spread": ret["inside_spread"],
        "parity_all_inside_spread": goals["inside_spread"] and auc["inside_spread"] and ret["inside_spread"],
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
