"""Navigation with two goals, one per caregiver: a world for studying two caregivers who want different things.

Two-goal navigation
===================
The navigation world's grid (``internalize.worlds.navigation``): ``size`` x ``size`` (7), a wall ring, random grey
blocks and/or a fixed ASCII map. Every layout holds two goals on distinct free cells, a green one and a blue one,
and the red agent on a third. Which goal is "right" is not the world's business: it reports both, and each
caregiver (``internalize.social``) pays for its own colour.

Layout sampling (every reset and after every goal), from one draw of the generator: ``n_blocks`` blocks uniformly
on free interior cells; the green goal uniformly on the remaining free cells; the blue goal on those still free;
the agent on those still free (never on a goal); the direction uniformly in {east, south, west, north}. With
``check_reachable`` (default on) a layout is drawn again while either goal is unreachable from the agent (a path
may cross the other goal, which would end it there).

What the agent sees
-------------------
An egocentric ``view`` x ``view`` x 5 uint8 crop, ``view = 2 * size - 5`` (9), centred on the agent, which faces
up (row 0 is 4 cells ahead, column 0 is 4 cells to the left); the whole interior is always in view. Channels:
minigrid object code (unseen 0, empty 1, wall 2, goal 8, agent 10), colour (red 0, green 1 for the green goal,
blue 2 for the blue goal, grey 5), state (the agent's *absolute* direction on its own cell, else 0),
``is_green_goal`` and ``is_blue_goal``.

Actions
-------
``0`` turn left, ``1`` turn right, ``2`` move forward (into the front cell unless it is a wall or block).

Rewards (channels, never mixed)
-------------------------------
* extrinsic R_e: ``-step_cost`` (0.9 / max_steps = 0.045) for every forward, blocked ones included, except one
  that enters a goal (its cost is replaced, as in navigation); turns 0.
* social R_s: ``goal_reward`` (0.4) on a step that enters either goal.
* event: a goal (either) was entered. ``events``: ``goal`` (either), ``goal_green``, ``goal_blue``; a caregiver
  that cares for one colour pays on its own event.

Termination
-----------
Entering either goal draws a fresh layout (blocks, both goals, agent) and the episode *goes on* with the same
step counter. Never terminates; truncated at ``max_steps`` (20 = 4 * 25 // 5), which a learner must bootstrap.

Per episode, the state counts green and blue goals (``green_goals``, ``blue_goals``, kept across the redraws);
``episode_stats`` and the training rollouts (``episode_counts``) report ``green_goals_per_episode`` and
``blue_goals_per_episode``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.agents.scripted import distance_to_goal, shortest_path_step
from internalize.config_error import ConfigError
from internalize.worlds import grid, navigation
from internalize.worlds.base import Channels
from internalize.worlds.layouts import largest_component
from internalize.worlds.navigation import NavParams, _pick_cell, add_blocks

COLOURS = ("green", "blue")


#: Everything that defines a two-goal world, as data: navigation's parameters (``NavParams``), three objects kept free.
TwoGoalParams = NavParams


@struct.dataclass
class TwoGoalState:
    """One two-goal world. Positions ``(x, y)`` (2,) int32, ``walls`` (size, size) bool [y, x].

    ``green_goals`` / ``blue_goals`` count this episode's goals of each colour; ``goal_green`` / ``goal_blue`` say
    whether that goal was entered on the step that led here (False after a reset).
    """

    walls: jax.Array
    green_pos: jax.Array
    blue_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    step_count: jax.Array
    green_goals: jax.Array
    blue_goals: jax.Array
    goal_green: jax.Array
    goal_blue: jax.Array


def make_params(
    n_blocks: int = 1,
    map: str | Sequence[str] | None = None,
    *,
    size: int = 7,
    check_reachable: bool = True,
    max_steps: int | None = None,
    goal_reward: float = 0.4,
    step_cost: float | None = None,
) -> TwoGoalParams:
    """Validated parameters; the arguments are navigation's (``navigation.make_params``), but ``n_blocks`` leaves
    three free cells (two goals and the agent) and defaults to 1.

    Raises:
      ConfigError (a ValueError): its key the parameter, with the value and what is allowed.
    """
    params = navigation.make_params(n_blocks, map, size=size, check_reachable=check_reachable, max_steps=max_steps,
                                    goal_reward=goal_reward, step_cost=step_cost, objects=3)
    # Otherwise the redraw loop could never find a layout with both goals reachable.
    if map is not None and check_reachable and largest_component(~np.asarray(params.fixed_walls)) < 3:
        raise ConfigError.must("map", "a map with three free cells connected to each other (two goals, the agent) "
                               "when check_reachable is on", map)
    return params


Layout = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]  # walls, green, blue, agent, direction


def _cell(shape: tuple[int, ...], pos: jax.Array) -> jax.Array:
    return jnp.zeros(shape, bool).at[pos[1], pos[0]].set(True)


def _draw_layout(key: jax.Array, params: TwoGoalParams) -> Layout:
    """One layout, no reachability check, drawn as navigation's ``_draw_layout`` with a second goal."""
    cells = params.fixed_walls.size
    u = jax.random.uniform(key, (cells + 4,))  # one generator call: threefry dominates a reset's cost on CPU
    walls = add_blocks(u, params.fixed_walls, params.n_blocks)
    green = _pick_cell(u[cells], ~walls)
    taken = walls | _cell(walls.shape, green)
    blue = _pick_cell(u[cells + 1], ~taken)
    agent = _pick_cell(u[cells + 2], ~(taken | _cell(walls.shape, blue)))
    direction = jnp.minimum(jnp.floor(u[cells + 3] * 4), 3).astype(jnp.int32)
    return walls, green, blue, agent, direction


def sample_layout(key: jax.Array, params: TwoGoalParams) -> Layout:
    """A layout, redrawn while either goal is unreachable from the agent if ``check_reachable``."""
    zero2 = jnp.zeros(2, jnp.int32)
    blank = (params.fixed_walls, zero2, zero2, zero2, jnp.zeros((), jnp.int32))

    def draw(carry):
        key, _, _ = carry
        key, sub = jax.random.split(key)
        layout = _draw_layout(sub, params)
        walls, green, blue, agent, _ = layout
        reach = grid.reachable(~walls, agent)
        return key, layout, ~params.check_reachable | (reach[green[1], green[0]] & reach[blue[1], blue[0]])

    # The draw sits only in the loop body so it is compiled once; the loop runs at least once.
    _, layout, _ = jax.lax.while_loop(lambda c: ~c[2], draw, (key, blank, jnp.array(False)))
    return layout


def _fresh(key: jax.Array, params: TwoGoalParams, counters: TwoGoalState | None = None) -> TwoGoalState:
    """A new layout; step count, goal counters and this step's goal flags carried over from ``counters``."""
    walls, green, blue, agent, direction = sample_layout(key, params)
    zero, no = jnp.zeros((), jnp.int32), jnp.array(False)
    if counters is None:
        return TwoGoalState(walls, green, blue, agent, direction, zero, zero, zero, no, no)
    return counters.replace(walls=walls, green_pos=green, blue_pos=blue, agent_pos=agent, agent_dir=direction)


def encode(state: TwoGoalState) -> jax.Array:
    """Full-grid minigrid encoding (size, size, 3) uint8 [y, x]: walls, both goals and the agent."""
    goals = ((state.green_pos, grid.GREEN), (state.blue_pos, grid.BLUE))
    return navigation.encode_cells(state.walls, goals, state.agent_pos, state.agent_dir)


class TwoGoal:
    """The two-goal world; see the module docstring. Methods are pure and jit/vmap-able.

    Example::

        world = TwoGoal()
        params = make_params(n_blocks=1)
        obs, state = world.reset(key, params)           # obs: (9, 9, 5) uint8
        obs, state, channels, truncated = world.step(key, state, action, params)
    """

    num_actions = 3
    action_names = ("left", "right", "forward")
    events = ("goal", "goal_green", "goal_blue")
    #: Per-episode counts of the training rollouts: metric stem -> event (``<stem>_per_episode``).
    episode_counts = {"green_goals": "goal_green", "blue_goals": "goal_blue"}
    obs_scale = 1.0 / 255.0  # an image Box, as navigation's

    def observation_shape(self, params: TwoGoalParams) -> tuple[int, int, int]:
        v = grid.view_size(params.size)
        return (v, v, 5)

    def observe(self, state: TwoGoalState) -> jax.Array:
        """The egocentric (view, view, 5) uint8 observation of ``state``."""
        view = grid.view_size(state.walls.shape[-1])
        # egocentric_view appends one is_goal channel; replace it with one per colour.
        crop = grid.egocentric_view(encode(state), state.agent_pos, state.agent_dir, view)[..., :3]
        goal = crop[..., 0] == grid.GOAL
        flags = [(goal & (crop[..., 1] == c)).astype(jnp.uint8) for c in (grid.GREEN, grid.BLUE)]
        return jnp.concatenate([crop, jnp.stack(flags, axis=-1)], axis=-1)

    def reset(self, key: jax.Array, params: TwoGoalParams) -> tuple[jax.Array, TwoGoalState]:
        state = _fresh(key, params)
        return self.observe(state), state

    def step(
        self, key: jax.Array, state: TwoGoalState, action: jax.Array, params: TwoGoalParams
    ) -> tuple[jax.Array, TwoGoalState, Channels, jax.Array]:
        """Apply ``action``; returns (obs, state, channels, truncated). Out-of-range actions do nothing."""
        action = jnp.asarray(action, jnp.int32)
        forward = action == grid.FORWARD
        front = grid.front_cell(state.agent_pos, state.agent_dir)
        blocked = state.walls[front[1], front[0]]
        green = forward & jnp.all(front == state.green_pos)
        blue = forward & jnp.all(front == state.blue_pos)
        at_goal = green | blue
        moved = state.replace(
            agent_pos=jnp.where(forward & ~blocked, front, state.agent_pos),
            agent_dir=grid.turn(state.agent_dir, action),
            step_count=state.step_count + 1,
            green_goals=state.green_goals + green, blue_goals=state.blue_goals + blue,
            goal_green=green, goal_blue=blue,
        )
        # Either goal: a fresh layout, the counters kept, the episode goes on. The cond skips the sampler on the
        # other steps of an unbatched world (under vmap it becomes a select).
        next_state = jax.lax.cond(at_goal, lambda _: _fresh(key, params, moved), lambda _: moved, None)
        channels = Channels(
            extrinsic=jnp.where(forward & ~at_goal, -params.step_cost, 0.0).astype(jnp.float32),
            social=jnp.where(at_goal, params.goal_reward, 0.0).astype(jnp.float32),
            event=at_goal,
            events={"goal": at_goal, "goal_green": green, "goal_blue": blue},
        )
        truncated = next_state.step_count >= params.max_steps
        return self.observe(next_state), next_state, channels, truncated

    def episode_stats(self, state: TwoGoalState) -> dict[str, jax.Array]:
        """Per-episode goal counts of ``state`` (call it on the state at truncation), float32 scalars."""
        return {"green_goals_per_episode": state.green_goals.astype(jnp.float32),
                "blue_goals_per_episode": state.blue_goals.astype(jnp.float32)}


# Scripted policies: ``policy(key, state, params) -> action`` like ``internalize.agents.scripted``'s.
TwoGoalPolicy = Callable[[jax.Array, TwoGoalState, TwoGoalParams], jax.Array]


def nearest_goal_policy(key: jax.Array, state: TwoGoalState, params: TwoGoalParams) -> jax.Array:
    """Walk a shortest path to the nearer goal (either ends the path); the key and params are unused."""
    del key, params
    # Each field treats the other goal as free: a path through it ends there, which the min accounts for.
    dist = jnp.minimum(distance_to_goal(state.walls, state.green_pos), distance_to_goal(state.walls, state.blue_pos))
    return shortest_path_step(dist, state.agent_pos, state.agent_dir)


@lru_cache(maxsize=None)
def goal_policy(colour: str) -> TwoGoalPolicy:
    """A policy walking a shortest path to the ``"green"`` or ``"blue"`` goal only, around the other goal (a wall
    for it, so it is never entered by accident). One function per colour, so a jitted runner compiles once."""
    if colour not in COLOURS:
        raise ConfigError.must("colour", "'green' or 'blue'", colour)
    green = colour == "green"

    def policy(key: jax.Array, state: TwoGoalState, params: TwoGoalParams) -> jax.Array:
        del key, params
        own, other = (state.green_pos, state.blue_pos) if green else (state.blue_pos, state.green_pos)
        dist = distance_to_goal(state.walls | _cell(state.walls.shape, other), own)
        return shortest_path_step(dist, state.agent_pos, state.agent_dir)

    return policy
