"""Scripted navigation agents (a shortest-path planner and a random policy) and a batched runner for any policy.

The shortest-path planner reads only ``walls``, ``goal_pos``, ``agent_pos`` and ``agent_dir``, so it also walks
the learner of the peer world (``internalize.worlds.peer``) to its goal, the peer counting as free floor.

Every policy here has the signature ``policy(key, state, params) -> action``: a pure JAX function of one
world state returning an int32 action (0 left, 1 right, 2 forward), jit- and vmap-able, so the same
:func:`run_policy` runs any of them over many environments at once. Learnt policies plug in with the same
signature.

Shortest path
-------------
:func:`distance_to_goal` computes a breadth-first distance field from the goal over free cells (number of
forward moves needed, ignoring turns). The agent then steps forward if the front cell is one closer to the
goal; otherwise it turns toward a closer neighbour, preferring one a single turn away. Each forward it takes
shortens the remaining distance by one, so it never bumps into a block. If the goal cannot be reached (only
possible with ``check_reachable=False``) it turns in place, which costs nothing, until the episode ends.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import jax
import jax.numpy as jnp

from internalize.worlds import grid
from internalize.worlds.base import Channels, World, step_autoreset
from internalize.worlds.navigation import Navigation, NavParams, NavState

Policy = Callable[[jax.Array, NavState, NavParams], jax.Array]
"""``policy(key, state, params) -> action``: one state in, one int32 action out (pure, jit/vmap-able)."""

UNREACHABLE = 10_000  # distance of walls and of cells cut off from the goal


def distance_to_goal(walls: jax.Array, goal_pos: jax.Array) -> jax.Array:
    """Breadth-first distance (in forward moves) from every cell to the goal, over free cells.

    Args:
      walls: (size, size) bool [y, x], True where the agent cannot stand.
      goal_pos: (2,) int32 ``(x, y)`` of the goal (a free cell).

    Returns:
      (size, size) int32 [y, x]: 0 at the goal, ``UNREACHABLE`` on walls and on cells with no path to it.
    """
    free = ~walls
    dist = jnp.full(walls.shape, UNREACHABLE, jnp.int32).at[goal_pos[1], goal_pos[0]].set(0)

    def relax(carry):
        dist, _ = carry
        # Distance of the best 4-neighbour; padding with UNREACHABLE keeps the border closed.
        padded = jnp.pad(dist, 1, constant_values=UNREACHABLE)
        best = jnp.minimum(
            jnp.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]), jnp.minimum(padded[1:-1, :-2], padded[1:-1, 2:])
        )
        new = jnp.where(free, jnp.minimum(dist, best + 1), UNREACHABLE)
        new = jnp.minimum(new, UNREACHABLE)
        return new, jnp.any(new != dist)

    dist, _ = jax.lax.while_loop(lambda c: c[1], relax, (dist, jnp.array(True)))
    return dist


def shortest_path_step(dist: jax.Array, agent_pos: jax.Array, agent_dir: jax.Array) -> jax.Array:
    """The planner's action on a distance field ((size, size) int32, ``UNREACHABLE`` where no path): forward if the
    front cell is one closer, else the cheapest turn toward a closer neighbour (one turn before two); a left turn,
    which is free, when none is closer (the goal is unreachable, or we stand on it). Returns () int32."""
    here = dist[agent_pos[1], agent_pos[0]]
    size = dist.shape[0]
    # Distance through the neighbour in each absolute direction 0..3 (east, south, west, north).
    neighbours = jnp.clip(agent_pos[None, :] + grid.DIR_TO_VEC, 0, size - 1)
    closer = (dist[neighbours[:, 1], neighbours[:, 0]] < here) & (here < UNREACHABLE)
    # Turns needed to face each direction: 0 ahead, 1 left or right, 2 behind.
    relative = (jnp.arange(4) - agent_dir) % 4
    turns = jnp.array([0, 1, 2, 1])[relative]
    target_relative = relative[jnp.argmin(jnp.where(closer, turns, 99))]  # first cheapest: deterministic tie-break
    # relative 3 = one left turn; 1 or 2 = right
    action = jnp.where(target_relative == 0, grid.FORWARD, jnp.where(target_relative == 3, grid.LEFT, grid.RIGHT))
    return jnp.where(jnp.any(closer), action, grid.LEFT).astype(jnp.int32)


def shortest_path_action(state: NavState, params: NavParams) -> jax.Array:
    """The planner's action in ``state``: forward along a shortest path, else the cheapest turn toward one.

    ``params`` is accepted for the common policy signature; the plan needs only the state. Returns () int32.
    """
    del params
    return shortest_path_step(distance_to_goal(state.walls, state.goal_pos), state.agent_pos, state.agent_dir)


def shortest_path_policy(key: jax.Array, state: NavState, params: NavParams) -> jax.Array:
    """:func:`shortest_path_action` with the common ``(key, state, params)`` signature (the key is unused)."""
    del key
    return shortest_path_action(state, params)


def random_policy(key: jax.Array, state: NavState, params: NavParams) -> jax.Array:
    """A uniformly random action in {left, right, forward}; () int32."""
    del state, params
    return jax.random.randint(key, (), 0, Navigation.num_actions, dtype=jnp.int32)


@lru_cache(maxsize=None)
def uniform_policy(num_actions: int) -> Policy:
    """A policy drawing each of a world's ``num_actions`` actions with equal probability (one function per
    count, so a jitted runner compiles once per world); ``uniform_policy(3)`` acts like :func:`random_policy`."""

    def policy(key: jax.Array, state: NavState, params: NavParams) -> jax.Array:
        del state, params
        return jax.random.randint(key, (), 0, num_actions, dtype=jnp.int32)

    return policy


POLICIES: dict[str, Policy] = {"random": random_policy, "shortest-path": shortest_path_policy}
"""Scripted policies by name (the names the command line accepts)."""


class Trajectory(NamedTuple):
    """A batch of trajectories; T steps of N environments.

    Attributes:
      states: ``NavState`` with leading axes (T, N): the state each action was taken in.
      actions: (T, N) int32.
      channels: ``Channels`` of (T, N) arrays: extrinsic, social (what a present caregiver pays), event.
      truncated: (T, N) bool, True on the last step of an episode (the next state is a fresh episode).
      last_state: ``NavState`` with leading axis (N,), the state after the final step.
    """

    states: NavState
    actions: jax.Array
    channels: Channels
    truncated: jax.Array
    last_state: NavState


def run_policy(policy: Policy, key: jax.Array, params: NavParams, n_envs: int, n_steps: int,
               world: World | None = None) -> Trajectory:
    """Run ``policy`` in ``n_envs`` worlds for ``n_steps`` steps each (episodes restart on truncation).

    ``world`` is the navigation world unless given (any :class:`~internalize.worlds.base.World`, with ``params``
    and ``policy`` of that world). Pure; jit it with ``static_argnames=("policy", "n_envs", "n_steps", "world")``
    (see :data:`run_policy_jit`). With ``n_steps`` a multiple of ``params.max_steps`` the episodes align: reshape
    the (T, N) arrays to (episodes, max_steps, N) to get per-episode sums.
    """
    world = Navigation() if world is None else world
    key_reset, key_run = jax.random.split(key)
    _, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(key_reset, n_envs), params)

    def one_step(state: NavState, key: jax.Array) -> tuple[NavState, tuple]:
        key_act, key_step = jax.random.split(key)
        actions = jax.vmap(policy, in_axes=(0, 0, None))(jax.random.split(key_act, n_envs), state, params)
        out = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0, None))(
            world, jax.random.split(key_step, n_envs), state, actions, params
        )
        return out.state, (state, actions, out.channels, out.truncated)

    last, (states, actions, channels, truncated) = jax.lax.scan(one_step, state, jax.random.split(key_run, n_steps))
    return Trajectory(states, actions, channels, truncated, last)


run_policy_jit = jax.jit(run_policy, static_argnames=("policy", "n_envs", "n_steps", "world"))
""":func:`run_policy`, compiled once per (policy, n_envs, n_steps, world)."""


def episode_totals(result: Trajectory, max_steps: int) -> tuple[jax.Array, jax.Array]:
    """Goals and caregiver-present return (R_e + R_s) per episode, for aligned episodes.

    Args:
      result: a trajectory whose ``n_steps`` is a multiple of ``max_steps``.
      max_steps: the episode length (``int(params.max_steps)``).

    Returns:
      (goals, returns), each (episodes_per_env * N,) float32, episodes of env 0 first.
    """
    n_steps = result.actions.shape[0]
    if n_steps % max_steps:
        raise ValueError(f"max_steps: trajectory length {n_steps} is not a multiple of the episode length {max_steps}.")

    def per_episode(x: jax.Array) -> jax.Array:
        x = x.astype(jnp.float32).reshape(n_steps // max_steps, max_steps, -1).sum(axis=1)
        return x.T.reshape(-1)

    return per_episode(result.channels.event), per_episode(result.channels.extrinsic + result.channels.social)
