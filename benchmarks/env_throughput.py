"""World throughput: random-action env steps per second of each world, vmapped in JAX and through the Gymnasium adapter.

Prints one JSON line. For each world (navigation, prosocial, peer) and for 1, 64 and 4,096 environments stepped
together (``vmap`` over envs, ``lax.scan`` over steps, auto-reset after each 20-step episode, all in one jitted
program) it reports the compile time apart from the steady-state run time (best of ``--repeats`` runs of the
compiled program), and throughput both as total env-steps per second and as steps per second of each env. It then
times the Gymnasium adapter (one env, a Python loop of ``env.step`` with random actions, the way Stable-Baselines3
drives it).

Usage::

    python benchmarks/env_throughput.py                      # CPU (default), all worlds, a few minutes on 2 cores
    python benchmarks/env_throughput.py --worlds prosocial   # one world
    python benchmarks/env_throughput.py --platform gpu
    python benchmarks/env_throughput.py --smoke              # a check of the script (numbers meaningless)

Keys of the JSON line: ``worlds``, one entry per world: ``world`` (what was stepped), ``vmapped`` (one entry
per env count: ``n_envs``, ``n_steps`` per env, ``compile_s``, ``run_s``, ``env_steps_per_s``,
``env_steps_per_s_per_env``), ``gym`` (``n_steps``, ``first_call_s``, ``run_s``, ``env_steps_per_s``,
``us_per_step``) and ``vs_navigation_64`` (navigation's rate at 64 envs over this world's, when both ran);
plus the platform, device, JAX version, CPU count and ``smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# (n_envs, steps per env): sized to keep the whole script under a minute on a 2-core CPU.
CONFIGS = ((1, 2000), (64, 500), (4096, 20))
GYM_STEPS = 2000
# --smoke: every piece of the script on budgets too small to mean anything (tests/test_benchmarks.py runs it).
SMOKE_CONFIGS = ((1, 20), (64, 5))
SMOKE_GYM_STEPS = 50


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="cpu", help="JAX platform to run on: cpu (default), gpu, ...")
    parser.add_argument("--repeats", type=int, default=3, help="steady-state runs per config; the best is kept")
    parser.add_argument("--blocks", type=int, default=3, help="random blocks per navigation layout")
    parser.add_argument("--worlds", default="navigation,prosocial,peer",
                        help="comma-separated worlds to measure (navigation, prosocial, peer)")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script: 1 and 64 envs for a few steps, 50 adapter steps, one run "
                             "each (the numbers mean nothing)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats: must be at least 1, got {args.repeats}")
    if args.smoke:
        args.repeats = 1
    return args


def _world(name: str, blocks: int):
    """(world, params, Gymnasium env, description) of one world, each with its defaults."""
    from internalize.worlds import gym, navigation, peer, prosocial

    if name == "navigation":
        return (navigation.Navigation(), navigation.make_params(n_blocks=blocks), gym.NavigationEnv(n_blocks=blocks),
                f"navigation, {blocks} random blocks, random actions")
    if name == "prosocial":
        return (prosocial.Prosocial(), prosocial.make_params(), gym.ProsocialEnv(),
                "prosocial, 7-wall tree bank, helped agent on shortest paths, random actions")
    if name == "peer":
        return (peer.PeerNavigation(), peer.make_params(), gym.PeerEnv(),
                "peer, 2 random blocks, scripted peer (20% random), egocentric, random actions")
    raise SystemExit(f"--worlds: unknown world {name!r}; allowed: navigation, prosocial, peer")


def main() -> None:
    args = _parse()
    os.environ["JAX_PLATFORMS"] = args.platform  # before JAX is imported
    import jax
    import jax.numpy as jnp

    from internalize.worlds.base import step_autoreset

    def measure(name: str) -> dict:
        world, params, env, description = _world(name, args.blocks)

        def make_run(n_envs: int, n_steps: int):
            def run(key: jax.Array) -> jax.Array:
                key_reset, key_run = jax.random.split(key)
                _, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(key_reset, n_envs), params)

                def body(carry, key):
                    state, goals = carry
                    key_act, key_step = jax.random.split(key)
                    actions = jax.random.randint(key_act, (n_envs,), 0, world.num_actions)
                    out = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0, None))(
                        world, jax.random.split(key_step, n_envs), state, actions, params
                    )
                    # Summing an output keeps XLA from dropping any of the work.
                    return (out.state, goals + out.channels.event.sum()), None

                (_, goals), _ = jax.lax.scan(body, (state, jnp.int32(0)), jax.random.split(key_run, n_steps))
                return goals

            return run

        vmapped = []
        for n_envs, n_steps in SMOKE_CONFIGS if args.smoke else CONFIGS:
            print(f"{name}: {n_envs} envs", file=sys.stderr)
            start = time.perf_counter()
            compiled = jax.jit(make_run(n_envs, n_steps)).lower(jax.random.key(0)).compile()
            compile_s = time.perf_counter() - start
            times = []
            for r in range(args.repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(jax.random.key(r + 1)))
                times.append(time.perf_counter() - start)
            run_s = min(times)
            vmapped.append({
                "n_envs": n_envs,
                "n_steps": n_steps,
                "compile_s": round(compile_s, 3),
                "run_s": round(run_s, 4),
                "env_steps_per_s": round(n_envs * n_steps / run_s),
                "env_steps_per_s_per_env": round(n_steps / run_s),
            })

        gym_steps = SMOKE_GYM_STEPS if args.smoke else GYM_STEPS
        env.action_space.seed(0)
        start = time.perf_counter()
        env.reset(seed=0)
        env.step(env.action_space.sample())  # compiles (or fetches) the jitted reset and step
        first_call_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(gym_steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        run_s = time.perf_counter() - start
        return {
            "world": description,
            "vmapped": vmapped,
            "gym": {
                "n_steps": gym_steps,
                "first_call_s": round(first_call_s, 3),
                "run_s": round(run_s, 3),
                "env_steps_per_s": round(gym_steps / run_s),
                "us_per_step": round(1e6 * run_s / gym_steps, 1),
            },
        }

    worlds = {name: measure(name) for name in args.worlds.split(",")}
    if "navigation" in worlds:
        rate = {name: next(v["env_steps_per_s"] for v in w["vmapped"] if v["n_envs"] == 64)
                for name, w in worlds.items()}
        for name, w in worlds.items():
            w["vs_navigation_64"] = round(rate["navigation"] / rate[name], 2)

    print(json.dumps({
        "benchmark": "env_throughput",
        "smoke": args.smoke,
        "platform": args.platform,
        "device": str(jax.devices()[0]),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "worlds": worlds,
    }))


if __name__ == "__main__":
    sys.exit(main())
