"""The paper's goal-reaching world (docs/paper-vs-reference.md, 'Navigation world'), as pure JAX functions.

Navigation
==========
A ``size`` x ``size`` grid (7 in the paper) whose outer ring is wall, so the agent moves on a 5x5 interior.
Grey blocks stand on some interior cells: either ``n_blocks`` drawn at random for every layout, or the walls of
a fixed ASCII map (``layouts.PAPER_MAPS`` or the user's own), or both. A green goal and the red agent are
placed on free cells.

Layout sampling (every reset and after every goal), in the paper's order: blocks uniformly on free interior
cells; the goal uniformly on the remaining free cells; the agent uniformly on the cells still free (never on
the goal); the direction uniformly in {east, south, west, north}. With ``check_reachable`` (default on) a
layout whose goal the agent cannot reach is drawn again; the reference code has no such check (option off).

What the agent sees
-------------------
An egocentric ``view`` x ``view`` x 4 uint8 crop, ``view = 2 * size - 5`` (9), centred on the agent, which
faces up (row 0 is 4 cells ahead, column 0 is 4 cells to the left). Channels: minigrid object code
(unseen 0, empty 1, wall 2, goal 8, agent 10), colour (red 0, green 1, grey 5), state (the agent's
*absolute* direction on its own cell, else 0) and ``is_goal``. The whole interior is always in view.

Actions
-------
``0`` turn left, ``1`` turn right, ``2`` move forward (into the front cell unless it is a wall or block).

Rewards (channels, never mixed)
-------------------------------
* extrinsic R_e: ``-step_cost`` (0.9 / max_steps = 0.045) for every forward, blocked ones included; turns 0.
* social R_s: ``goal_reward`` (0.4) on the step that enters the goal; that step's cost is replaced, not added,
  so a caregiver-present learner nets +0.4 on it, as in the reference.
* event: True on the step that enters the goal; ``events`` names it ``goal``.

Termination
-----------
Reaching the goal draws a fresh layout and the episode *goes on* with the same step counter. The episode never
terminates; it is truncated at ``max_steps`` (20 = 4 * 25 // 5), which a learner must bootstrap.

Social reward
-------------
The goal caregiver pays R_s on goal steps while present. Whether it is present, and what replaces it when it
is not, belongs to ``internalize.social``: this world reports what it *would* pay on every step.

Caregiver schedule
------------------
None here: presence is a property of the training phase (``internalize.social.caregiver``), not of the world.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.config_error import ConfigError
from internalize.worlds import grid
from internalize.worlds.base import Channels
from internalize.worlds.layouts import parse_map

MAX_BLOCKS = 8


@struct.dataclass
class NavParams:
    """Everything that defines a navigation world, as data (one compiled program serves many maps).

    Attributes:
      fixed_walls: (size, size) bool [y, x]; the border ring plus the walls of a fixed map.
      n_blocks: () int32, random blocks added to every layout on free interior cells.
      check_reachable: () bool, redraw layouts whose goal is unreachable from the agent.
      max_steps: () int32, steps per episode before truncation.
      step_cost: () float32, cost of every forward action (positive number, subtracted).
      goal_reward: () float32, social reward for entering the goal.
    """

    fixed_walls: jax.Array
    n_blocks: jax.Array
    check_reachable: jax.Array
    max_steps: jax.Array
    step_cost: jax.Array
    goal_reward: jax.Array

    @property
    def size(self) -> int:
        return self.fixed_walls.shape[-1]


@struct.dataclass
class NavState:
    """State of one navigation world. Positions are ``(x, y)`` int32; ``walls`` (size, size) bool [y, x]."""

    walls: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    step_count: jax.Array


def make_params(
    n_blocks: int = 3,
    map: str | Sequence[str] | None = None,
    *,
    size: int = 7,
    check_reachable: bool = True,
    max_steps: int | None = None,
    goal_reward: float = 0.4,
    step_cost: float | None = None,
    objects: int = 2,
) -> NavParams:
    """Validated parameters for the navigation world.

    Args:
      n_blocks: random blocks per layout, 0..8 (the paper uses 3, or 1 for training and 5 for testing).
      map: a built-in map name (``plus``, ``x``, ``U``, ``T``, ``four_rooms``), an ASCII map, or None for an
        open interior. Random blocks, if any, are added on the map's free cells.
      size: side of the grid including its border walls (7 in the paper).
      check_reachable: redraw layouts with an unreachable goal (off = the reference's behaviour).
      max_steps: episode length; default ``4 * (size - 2) ** 2 // 5`` (20).
      goal_reward: social reward for reaching the goal (0.4).
      step_cost: cost of a forward action; default ``0.9 / max_steps`` (0.045).
      objects: cells every layout needs besides blocks (the goal and the agent; the two-goal world's three), kept
        free: ``n_blocks`` is at most the free cells minus this.

    Raises:
      ConfigError (a ValueError): its key the parameter, with the value and what is allowed.
    """
    if not isinstance(size, int) or not 5 <= size <= 15:
        raise ConfigError.must("size", "an integer in 5..15 (border walls included)", size)
    if map is None:
        walls = np.zeros((size, size), dtype=bool)
        walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    else:
        walls = parse_map(map, size=size, field="map")
    free = int((~walls).sum())
    limit = min(MAX_BLOCKS, free - objects)
    if not isinstance(n_blocks, (int, np.integer)) or isinstance(n_blocks, bool) or not 0 <= n_blocks <= limit:
        leaving = "the goal and the agent" if objects == 2 else f"its {objects} objects"
        raise ConfigError.must(
            "n_blocks", f"an integer in 0..{limit} (at most {MAX_BLOCKS}, leaving {leaving} a cell each)", n_blocks,
        )
    if max_steps is None:
        max_steps = 4 * (size - 2) ** 2 // 5
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ConfigError.must("max_steps", "a positive integer", max_steps)
    if step_cost is None:
        step_cost = 0.9 / max_steps
    for name, value in (("goal_reward", goal_reward), ("step_cost", step_cost)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError.must(name, "a finite number", value)
    return NavParams(
        fixed_walls=jnp.asarray(walls),
        n_blocks=jnp.asarray(n_blocks, jnp.int32),
        check_reachable=jnp.asarray(check_reachable, bool),
        max_steps=jnp.asarray(max_steps, jnp.int32),
        step_cost=jnp.asarray(step_cost, jnp.float32),
        goal_reward=jnp.asarray(goal_reward, jnp.float32),
    )


def _pick_cell(u: jax.Array, allowed: jax.Array) -> jax.Array:
    """The ``floor(u * n)``-th of the n True cells of a (H, W) bool mask (row-major), as ``(x, y)``.

    With ``u`` uniform in [0, 1) this is a uniformly random allowed cell, from one random number.
    """
    width = allowed.shape[1]
    flat = allowed.reshape(-1)
    count = jnp.cumsum(flat)
    k = jnp.minimum(jnp.floor(u * count[-1]).astype(jnp.int32), count[-1] - 1)
    index = jnp.argmax(count > k)
    return jnp.stack([index % width, index // width]).astype(jnp.int32)


def add_blocks(u: jax.Array, fixed_walls: jax.Array, n_blocks: jax.Array) -> jax.Array:
    """``fixed_walls`` plus ``n_blocks`` blocks on a uniformly random subset of its free cells, from ``u`` (one
    uniform number per cell, row-major): the n largest of i.i.d. uniform scores (the same distribution as the
    reference's one-block-at-a-time rejection sampling); ties broken by cell index. (H, W) bool."""
    free = ~fixed_walls
    cells = free.size
    scores = jnp.where(free.reshape(-1), u[:cells], -1.0)
    index = jnp.arange(cells)
    tie = (scores[None, :] == scores[:, None]) & (index[None, :] < index[:, None])
    above = (scores[None, :] > scores[:, None]) | tie
    rank = above.sum(axis=1)
    return fixed_walls | (free & (rank < n_blocks).reshape(free.shape))


def _draw_layout(key: jax.Array, params: NavParams) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One layout, no reachability check: (walls, goal_pos, agent_pos, agent_dir)."""
    cells = params.fixed_walls.size
    # One call to the generator for everything (threefry dominates the cost of a reset on CPU).
    u = jax.random.uniform(key, (cells + 3,))
    walls = add_blocks(u, params.fixed_walls, params.n_blocks)
    goal = _pick_cell(u[cells], ~walls)
    not_goal = jnp.ones_like(walls).at[goal[1], goal[0]].set(False)
    agent = _pick_cell(u[cells + 1], ~walls & not_goal)
    direction = jnp.minimum(jnp.floor(u[cells + 2] * 4), 3).astype(jnp.int32)
    return walls, goal, agent, direction


def _goal_reachable(layout: tuple[jax.Array, ...]) -> jax.Array:
    walls, goal, agent, _ = layout
    return grid.reachable(~walls, agent)[goal[1], goal[0]]


def sample_layout(key: jax.Array, params: NavParams) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """A layout drawn in the paper's order, redrawn while its goal is unreachable if ``check_reachable``."""
    blank = (params.fixed_walls, jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int32), jnp.zeros((), jnp.int32))

    def draw(carry):
        key, _, _ = carry
        key, sub = jax.random.split(key)
        layout = _draw_layout(sub, params)
        return key, layout, ~params.check_reachable | _goal_reachable(layout)

    # The draw sits only in the loop body so it is compiled once; the loop runs at least once.
    _, layout, _ = jax.lax.while_loop(lambda c: ~c[2], draw, (key, blank, jnp.array(False)))
    return layout


def encode_cells(walls: jax.Array, goals: Sequence[tuple[jax.Array, int]], agent_pos: jax.Array,
                 agent_dir: jax.Array) -> jax.Array:
    """Full-grid minigrid encoding (size, size, 3) uint8 [y, x]: walls, each goal ``(pos, colour code)`` and the
    agent with its direction."""
    obj = jnp.where(walls, grid.WALL, grid.EMPTY)
    colour = jnp.where(walls, grid.GREY, grid.RED)
    enc = jnp.stack([obj, colour, jnp.zeros(walls.shape, jnp.int32)], axis=-1)
    for pos, code in goals:
        enc = enc.at[pos[1], pos[0]].set(jnp.array([grid.GOAL, code, 0]))
    agent = jnp.stack([jnp.int32(grid.AGENT), jnp.int32(grid.RED), agent_dir.astype(jnp.int32)])
    enc = enc.at[agent_pos[1], agent_pos[0]].set(agent)
    return enc.astype(jnp.uint8)


def encode(state: NavState) -> jax.Array:
    """Full-grid minigrid encoding (size, size, 3) uint8 [y, x]: walls, goal and the agent with its direction."""
    return encode_cells(state.walls, ((state.goal_pos, grid.GREEN),), state.agent_pos, state.agent_dir)


class Navigation:
    """The navigation world; see the module docstring. Methods are pure and jit/vmap-able.

    Example::

        world = Navigation()
        params = make_params(n_blocks=3)
        obs, state = world.reset(key, params)           # obs: (9, 9, 4) uint8
        obs, state, channels, truncated = world.step(key, state, action, params)
    """

    num_actions = 3
    action_names = ("left", "right", "forward")
    events = ("goal",)
    obs_scale = 1.0 / 255.0  # SB3 normalizes the (9, 9, 4) uint8 image Box

    def observation_shape(self, params: NavParams) -> tuple[int, int, int]:
        v = grid.view_size(params.size)
        return (v, v, 4)

    def observe(self, state: NavState) -> jax.Array:
        """The egocentric (view, view, 4) uint8 observation of ``state``."""
        view = grid.view_size(state.walls.shape[-1])
        return grid.egocentric_view(encode(state), state.agent_pos, state.agent_dir, view)

    def reset(self, key: jax.Array, params: NavParams) -> tuple[jax.Array, NavState]:
        walls, goal, agent, direction = sample_layout(key, params)
        state = NavState(walls, goal, agent, direction, jnp.zeros((), jnp.int32))
        return self.observe(state), state

    def step(
        self, key: jax.Array, state: NavState, action: jax.Array, params: NavParams
    ) -> tuple[jax.Array, NavState, Channels, jax.Array]:
        """Apply ``action``; returns (obs, state, channels, truncated). Out-of-range actions do nothing."""
        action = jnp.asarray(action, jnp.int32)
        forward = action == grid.FORWARD
        front = grid.front_cell(state.agent_pos, state.agent_dir)
        blocked = state.walls[front[1], front[0]]
        at_goal = forward & jnp.all(front == state.goal_pos)
        moved = NavState(
            walls=state.walls,
            goal_pos=state.goal_pos,
            agent_pos=jnp.where(forward & ~blocked, front, state.agent_pos),
            agent_dir=grid.turn(state.agent_dir, action),
            step_count=state.step_count + 1,
        )
        # Entering the goal: a fresh layout, same step counter, the episode goes on, as in the paper. The cond
        # skips the sampler on the other steps of an unbatched world (under vmap it becomes a select).
        def fresh(_):
            walls, goal, agent, direction = sample_layout(key, params)
            return NavState(walls, goal, agent, direction, moved.step_count)

        next_state = jax.lax.cond(at_goal, fresh, lambda _: moved, None)
        channels = Channels(
            extrinsic=jnp.where(forward & ~at_goal, -params.step_cost, 0.0).astype(jnp.float32),
            social=jnp.where(at_goal, params.goal_reward, 0.0).astype(jnp.float32),
            event=at_goal,
            events={"goal": at_goal},
        )
        truncated = next_state.step_count >= params.max_steps
        return self.observe(next_state), next_state, channels, truncated
