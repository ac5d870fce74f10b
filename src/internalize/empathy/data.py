"""The empathy instrument's data source: a scripted learner that reaches the goal often, in the peer world.

Why scripted: the probe asks what a *reward model* makes of another agent's goal reaching, so its training data
must hold many rewarded transitions in a view where self and other can look alike. A PPO learner in the
allocentric peer world reaches 0.00-0.01 goals per episode within a quick budget on 2 cores; an epsilon-greedy
shortest-path learner reaches one every few steps. The data are what a caregiver would see and pay for while
this learner acts; which learner produced them does not enter the question.

Per step of ``n_envs`` parallel worlds (auto-reset at truncation) one observation ``obs`` (the learner's, pre-step)
yields two samples:

* the **learner sample**: its action, marked at the learner's cell, paid ``goal_reward`` when the learner enters
  the goal (the caregiver of the paper);
* the **peer sample**: the peer's action in the same step (read off the state change: a turn changes its
  heading, anything else was a forward), marked at the peer's cell; ``peer_reached`` says whether the peer
  entered the goal. Only the instrument's controls train on peer samples: paid (the positive control: a
  caregiver who also pays for the peer's goals) or unpaid (the negative control: explicit negatives with the
  mark on the peer). The peer acts after the learner, on the state the learner left; the peer sample shows the
  state before both moved, which differs from the peer's own pre-action state only in the learner's pose (and
  in the goal, on the rare steps where the learner took it first).

Arms: ``exposed`` (the peer walks to the goal and takes it, unpaid, in view) and ``naive`` (a peer that walks at
random and can never enter the goal: ``peer_noise = 1``, ``peer_enters_goal = False``) set by the world params.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from internalize.agents.scripted import shortest_path_step
from internalize.worlds import grid
from internalize.worlds.peer import PeerNavigation, PeerParams, PeerState
from internalize.worlds.prosocial import distance_map


class Samples(NamedTuple):
    """Transitions of one seed in step-major order (N = n_steps * n_envs); the leading axes of a vmapped call first.

    Attributes:
      obs: (N, H, W, C) uint8, the learner's observation before the step; ``next_obs`` the one after it.
      action: (N,) int32, the learner's action; ``peer_action`` (N,) int32 the peer's.
      mark: (N, H, W) bool, the learner's cell; ``peer_mark`` (N, H, W) bool the peer's.
      paid: (N,) float32, the caregiver's payment for the learner's goal (``goal_reward`` or 0).
      peer_reached: (N,) bool, the peer entered the goal on this step.
    """

    obs: jax.Array
    action: jax.Array
    mark: jax.Array
    paid: jax.Array
    next_obs: jax.Array
    peer_action: jax.Array
    peer_mark: jax.Array
    peer_reached: jax.Array


def learner_action(key: jax.Array, state: PeerState, epsilon: jax.Array) -> jax.Array:
    """The epsilon-greedy shortest-path learner: with probability ``epsilon`` a uniform action in {left, right,
    forward}, else the first action of a shortest path to the goal over non-block cells; () int32."""
    k_explore, k_action = jax.random.split(key)
    ys, xs = jnp.indices(state.walls.shape)
    goal = (xs == state.goal_pos[0]) & (ys == state.goal_pos[1])
    plan = shortest_path_step(distance_map(~state.walls & ~goal, goal), state.agent_pos, state.agent_dir)
    explore = jax.random.uniform(k_explore) < epsilon
    return jnp.where(explore, jax.random.randint(k_action, (), 0, 3, dtype=jnp.int32), plan)


def _peer_action(before: PeerState, after: PeerState) -> jax.Array:
    """The peer's action, read off its heading: left or right turned it, a forward (moved or blocked) did not."""
    left = after.peer_dir == grid.turn(before.peer_dir, jnp.int32(grid.LEFT))
    right = after.peer_dir == grid.turn(before.peer_dir, jnp.int32(grid.RIGHT))
    return jnp.where(left, grid.LEFT, jnp.where(right, grid.RIGHT, grid.FORWARD)).astype(jnp.int32)


def collect(params: PeerParams, key: jax.Array, n_envs: int, n_steps: int, epsilon: float = 0.2) -> Samples:
    """``n_steps`` steps of ``n_envs`` worlds under the scripted learner (jit-able with ``n_envs``, ``n_steps``
    static; vmap it over keys for a seed axis)."""
    world = PeerNavigation()
    eps = jnp.asarray(epsilon, jnp.float32)
    k_reset, k_run = jax.random.split(key)
    _, states = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs), params)

    def one(state: PeerState, key: jax.Array):
        k_act, k_step, k_reset = jax.random.split(key, 3)
        obs, mark = world.observe_marked(state, params, state.agent_pos)
        _, peer_mark = world.observe_marked(state, params, state.peer_pos)
        action = learner_action(k_act, state, eps)
        next_obs, after, channels, truncated = world.step(k_step, state, action, params)
        sample = (obs, action, mark, channels.social, next_obs, _peer_action(state, after), peer_mark,
                  channels.events["peer_goal"])
        _, fresh = world.reset(k_reset, params)
        after = jax.tree.map(lambda new, old: jnp.where(truncated, new, old), fresh, after)
        return after, sample

    def step(states: PeerState, key: jax.Array):
        return jax.vmap(one)(states, jax.random.split(key, n_envs))

    _, out = jax.lax.scan(step, states, jax.random.split(k_run, n_steps))
    flat = [x.reshape((n_steps * n_envs, *x.shape[2:])) for x in out]
    return Samples(flat[0], flat[1].astype(jnp.int32), flat[2], flat[3].astype(jnp.float32), *flat[4:])
