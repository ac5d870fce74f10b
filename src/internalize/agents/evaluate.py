"""Held-out evaluation of a policy: N fresh episodes with the deterministic policy, scored by the caregiver.

The paper's "held-out" evaluation (docs/paper-vs-reference.md, 'Held-out evaluation') is SB3's ``evaluate_policy``
over 100 episodes with ``deterministic=True`` on freshly sampled layouts, and its metric "Reward (OOD)" is the
caregiver-present return: social reward plus step costs. Here the N episodes run side by side (one environment
per episode, vmapped), so an evaluation is one jitted program; episodes are independent either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from internalize.agents.scripted import Trajectory
from internalize.worlds.base import World, step_autoreset

#: Per-episode means :func:`evaluate` returns.
EVAL_METRICS = ("goals_per_episode", "caregiver_return", "social_return", "extrinsic_return")


def evaluate(
    apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]],
    params: Any,
    world: World,
    world_params: Any,
    key: jax.Array,
    episodes: int = 100,
    deterministic: bool = True,
    horizon: int | None = None,
    score: Callable[[jax.Array, jax.Array], dict[str, jax.Array]] | None = None,
) -> dict[str, jax.Array]:
    """Run ``episodes`` (static) whole episodes of the policy on fresh layouts; jit/vmap-able over params/keys.

    Args:
      apply_fn: the policy network's apply, ``(params, obs (..., *obs_shape)) -> (logits, value)``.
      params: the policy parameters.
      world, world_params: where to evaluate (e.g. the held-out 5-block world, or a hand-picked map).
      key: JAX key for layouts (and actions when not deterministic).
      episodes: number of held-out episodes (the paper: 100).
      horizon: steps to scan (static), the world's ``max_steps``; None reads it from ``world_params``, which must
        then be concrete. Give it when ``world_params`` are a traced argument (one program for several maps).
      deterministic: act greedily (argmax of the logits), as SB3's ``evaluate_policy`` does by default.
      score: ``(obs (episodes, *obs_shape), action (episodes,)) -> {name: (episodes,) float32}``, e.g. an ISR's
        prediction and its members' disagreement on each step taken; the result then also has ``trace``: a dict
        of (horizon, episodes) arrays, each score's values per step, ``social`` (the step's true R_s) and
        ``live`` (1 on the steps before each episode's truncation, which are the only ones that count).

    Returns:
      Means over episodes, each a () float32: ``goals_per_episode``, ``caregiver_return`` (R_e + R_s, the
      paper's "Reward (OOD)"), ``social_return`` and ``extrinsic_return``; plus, for a world with an
      ``episode_stats(state)`` method (the peer world's peer goals), the mean of each of its per-episode counts
      read from the state the episode was truncated in.
    """
    if not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes: must be a positive integer, got {episodes!r}.")
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(k_reset, episodes), world_params)
    horizon = world_params.max_steps if horizon is None else horizon

    def one_step(carry, step_key):
        obs, state, done, totals = carry
        logits, _ = apply_fn(params, obs)
        obs_before = obs
        k_act, k_env = jax.random.split(step_key)
        if deterministic:
            action = jnp.argmax(logits, axis=-1)
        else:
            action = jax.random.categorical(k_act, logits)
        obs, state, ch, truncated = jax.vmap(world.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, episodes), state, action, world_params
        )
        live = (~done).astype(jnp.float32)  # an episode's steps after its truncation are not counted
        scored = {} if score is None else {**score(obs_before, action), "social": ch.social, "live": live}
        totals = {
            "goals": totals["goals"] + live * ch.event,
            "social": totals["social"] + live * ch.social,
            "extrinsic": totals["extrinsic"] + live * ch.extrinsic,
        }
        return (obs, state, done | truncated, totals), scored

    zeros = jnp.zeros((episodes,), jnp.float32)
    init = (obs, state, jnp.zeros((episodes,), bool), {"goals": zeros, "social": zeros, "extrinsic": zeros})
    # Episodes truncate at max_steps; scanning that many steps (a traced bound is not allowed) covers them.
    steps = int(horizon) if not isinstance(horizon, jax.core.Tracer) else None
    if steps is None:
        raise ValueError("world_params.max_steps is traced: pass evaluate(..., horizon=max_steps) as a static int.")
    (_, state, done, totals), trace = jax.lax.scan(one_step, init, jax.random.split(k_run, steps))
    out = {
        "goals_per_episode": totals["goals"].mean(),
        "caregiver_return": (totals["social"] + totals["extrinsic"]).mean(),
        "social_return": totals["social"].mean(),
        "extrinsic_return": totals["extrinsic"].mean(),
    }
    # The scan ends exactly at truncation, so the final state's per-episode counters are whole-episode totals.
    stats = getattr(world, "episode_stats", None)
    if stats is not None:
        out.update({name: value.astype(jnp.float32).mean() for name, value in stats(state).items()})
    if score is not None:
        out["trace"] = trace
    return out


def policy_trajectory(
    apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]],
    params: Any,
    world: World,
    world_params: Any,
    key: jax.Array,
    n_steps: int,
    deterministic: bool = True,
) -> Trajectory:
    """One environment run by the policy for ``n_steps`` (static) steps, episodes restarting on truncation, as
    :func:`internalize.agents.scripted.run_policy` returns it (arrays ``(n_steps, 1, ...)``), for watching a
    trained learner (``internalize play --from``). Greedy actions by default, as :func:`evaluate`."""
    k_reset, k_run = jax.random.split(key)
    obs, state = world.reset(k_reset, world_params)

    def one_step(carry, step_key):
        obs, state = carry
        k_act, k_env = jax.random.split(step_key)
        logits = apply_fn(params, obs[None])[0][0]
        action = jnp.argmax(logits) if deterministic else jax.random.categorical(k_act, logits)
        action = action.astype(jnp.int32)
        out = step_autoreset(world, k_env, state, action, world_params)
        return (out.obs, out.state), (state, action, out.channels, out.truncated)

    (_, last), (states, actions, channels, truncated) = jax.lax.scan(
        one_step, (obs, state), jax.random.split(k_run, n_steps))

    def add(tree: Any) -> Any:  # one environment: N = 1
        return jax.tree.map(lambda x: x[:, None], tree)

    return Trajectory(add(states), actions[:, None], add(channels), truncated[:, None],
                      jax.tree.map(lambda x: x[None], last))
