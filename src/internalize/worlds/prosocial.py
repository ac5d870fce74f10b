"""The paper's Figure 7 world: move a boulder so that a second agent can reach its goal.

Where the paper and the authors' published code differ: docs/paper-vs-reference.md, 'Prosocial world'.

Prosocial
=========
A 7x7 grid whose open cells form a tree (``prosocial_layouts``). A blue boulder sits on a junction and cuts the
green *helped* agent off from its green goal; the red learner starts on the goal's side. The helped agent is
scripted: it walks to its goal whenever a path is free. The learner can pick the boulder up and put it down
elsewhere. Layouts come from a bank of generated trees (paper: 7 walls, default) or from one user layout.

What the agent sees
-------------------
The learner's egocentric 9 x 9 x 7 uint8 crop (``grid.egocentric_view``; it faces up from the centre, the whole
grid always in view). Channels: 0 minigrid object (unseen 0, empty 1, wall 2, ball 6 = boulder, goal 8, agent 10),
1 colour (red 0 learner, green 1 helped agent and goal, blue 2 boulder, grey 5 wall), 2 state (each agent's
absolute direction on its cell, else 0), 3 ``is_goal``, 4 ``is_boulder``, 5 ``is_helped_agent``, 6 ``carrying``
(1 on the learner's own cell, the crop centre, while it holds the boulder).

Actions
-------
``0`` left, ``1`` right, ``2`` forward (into a free cell: not a wall, the boulder, the goal or the helped agent),
``3`` pick up (the boulder in front, if empty-handed: the cell becomes free), ``4`` drop. ``drop="place"``
(paper) puts the boulder on the front cell if it is free; ``drop="noop"`` is the reference's drop, which does
nothing: a lifted boulder is then gone until the next layout. Other action values do nothing.

Order within a step: the learner acts, then the helped agent (the reference draws a random order each step).
The helped agent takes one minigrid-like action toward its goal along a shortest path (breadth-first over the
grid, avoiding walls, the boulder and the learner): forward if the path's first cell is ahead, else the shortest
turn toward it (a right turn for 180 degrees); with no path it stays in place (paper). ``helper="reference-dfs"``
plans through the boulder and the learner, as the reference's DFS does (walls only): it walks up
to the boulder and keeps bumping into it, and turns right while the target direction index is larger, left
while smaller. On a tree the path is unique, so the DFS's visiting order makes no difference; on a user layout
with loops we take a shortest path where the DFS may not.

Rewards (channels, never mixed)
-------------------------------
* extrinsic R_e: ``-step_cost`` (0.9 / max_steps = 0.009) for every learner forward, blocked ones included.
  It is not replaced on social steps (the reference pays 0.4 - 0.009 then).
* social R_s: ``goal_reward`` (0.4) on the step of the rewarded event, always computed.
* event: ``rewarded_event="helped_goal"`` (default) the helped agent entered its goal; ``"boulder_lift"`` the
  learner lifted the boulder. Both events are counted in the state either way (``helped_goals``, ``lifts``) and
  reported in ``events`` (``helped_goal``, ``boulder_lift``), so caregivers may pay for either or both.
* ``pointless_lift`` (also in ``events``, counted as ``pointless_lifts``): a lift that did not open a path the
  helped agent lacked, i.e. before the lift the helped agent had a path to its goal around the boulder already,
  or has none even without it. Paths here go through every cell but walls and the boulder (the learner, who
  moves, is not an obstacle). A learner paid for lifting that lifts for its own sake shows it here.

Per episode, ``episode_stats`` (held-out evaluation) and the training rollouts (``episode_counts``) report
``helped_goals_per_episode``, ``lifts_per_episode`` and ``pointless_lifts_per_episode``.

Termination
-----------
When the helped agent enters its goal, a fresh layout and placement are drawn and the episode goes on with the
same step counter. The episode is truncated at ``max_steps`` (100), like navigation; the reference ends it as
terminal instead, i.e. without bootstrapping (docs/paper-vs-reference.md, 'Prosocial world').

Social reward
-------------
The prosocial caregiver pays for the other agent's success (an end); the instrumental one for lifting the
boulder (a means), which a learner can farm by lifting and dropping. ``internalize.social.caregiver`` has both.

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
from internalize.worlds.prosocial_layouts import (
    RULES,
    SIZE,
    check_bank_args,
    layout_bank,
    parse_layout,
    sample_placement,
)

PICKUP, DROP = 3, 4
DROPS = ("place", "noop")
HELPERS = ("shortest", "reference-dfs")
EVENTS = ("helped_goal", "boulder_lift")  # what a world's own caregiver (rewarded_event) may pay for
UNREACHABLE = 1_000


@struct.dataclass
class ProsocialParams:
    """Everything that defines a prosocial world, as data.

    Attributes:
      bank: (N, 7, 7) bool [layout, y, x] wall layouts drawn from (one entry for a user layout).
      user_layout: () bool, use ``fixed`` positions instead of drawing a placement.
      fixed: (4, 2) int32 ``(x, y)`` of boulder, helped agent, goal, learner for a user layout.
      drop_places: bool, drop puts the boulder down (paper) or does nothing (reference).
      helper_shortest: bool, the helped agent avoids boulder and learner (paper) or plans through them.
      reward_lift: bool, the rewarded event is the boulder lift instead of the helped agent's goal.
      max_steps: () int32; step_cost: () float32 (positive, subtracted); goal_reward: () float32 (R_s).

    The three switches are the world's rules, static (Python bools, part of a compiled program's key): a program
    holds only the rule it runs. The rest is data: passed as an argument of a jitted function, one program
    serves every layout bank and reward size.
    """

    bank: jax.Array
    user_layout: jax.Array
    fixed: jax.Array
    drop_places: bool = struct.field(pytree_node=False)
    helper_shortest: bool = struct.field(pytree_node=False)
    reward_lift: bool = struct.field(pytree_node=False)
    max_steps: jax.Array
    step_cost: jax.Array
    goal_reward: jax.Array


@struct.dataclass
class ProsocialState:
    """One prosocial world. Positions ``(x, y)`` (2,) int32, directions () int32, ``walls`` (7, 7) bool [y, x].

    ``boulder_pos`` is meaningful while ``boulder_on_grid``; ``helped_goals``, ``lifts`` and ``pointless_lifts``
    count this episode's events of each kind; ``helped_goal`` / ``lifted`` say whether each happened on the step
    that led here.
    """

    walls: jax.Array
    layout_id: jax.Array
    boulder_pos: jax.Array
    boulder_on_grid: jax.Array
    carrying: jax.Array
    goal_pos: jax.Array
    learner_pos: jax.Array
    learner_dir: jax.Array
    helped_pos: jax.Array
    helped_dir: jax.Array
    step_count: jax.Array
    helped_goals: jax.Array
    lifts: jax.Array
    pointless_lifts: jax.Array
    helped_goal: jax.Array
    lifted: jax.Array


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError.must(name, f"one of {', '.join(map(repr, allowed))}", value)


def make_params(
    n_walls: int = 7,
    *,
    wall_rule: str = "tree",
    layout: str | Sequence[str] | None = None,
    seed: int = 0,
    attempts: int = 6000,
    dihedral: bool = True,
    drop: str = "place",
    helper: str = "shortest",
    rewarded_event: str = "helped_goal",
    max_steps: int = 100,
    goal_reward: float = 0.4,
    step_cost: float | None = None,
) -> ProsocialParams:
    """Validated parameters for the prosocial world.

    Args:
      n_walls: interior walls per layout: 7 (paper) with ``wall_rule="tree"``, 8 with ``"reference"``.
      wall_rule: ``"tree"`` (connected, acyclic) or ``"reference"`` (its 2x2 rule too); see prosocial_layouts.
      layout: a user layout in ASCII (``# . B H G L``) used for every placement, or None for the bank.
      seed, attempts, dihedral: the bank generator's arguments (``prosocial_layouts.layout_bank``).
      drop: ``"place"`` (paper) or ``"noop"`` (reference). helper: ``"shortest"`` or ``"reference-dfs"``.
      rewarded_event: ``"helped_goal"`` (prosocial caregiver) or ``"boulder_lift"`` (instrumental caregiver).
      max_steps: episode length (100). goal_reward: R_s on the rewarded event (0.4).
      step_cost: cost of a forward; default ``0.9 / max_steps`` (0.009).

    Raises:
      ConfigError (a ValueError): its key the parameter, with the value and what is allowed (user layouts: see
        ``parse_layout``).
    """
    _choice("wall_rule", wall_rule, RULES)
    check_bank_args(n_walls, wall_rule, attempts, seed)  # also with a user layout, so typos never pass silently
    _choice("drop", drop, DROPS)
    _choice("helper", helper, HELPERS)
    _choice("rewarded_event", rewarded_event, EVENTS)
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
        raise ConfigError.must("max_steps", "a positive integer", max_steps)
    step_cost = 0.9 / max_steps if step_cost is None else step_cost
    for name, value in (("goal_reward", goal_reward), ("step_cost", step_cost)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ConfigError.must(name, "a finite number", value)
    if layout is None:
        bank = layout_bank(n_walls, rule=wall_rule, seed=seed, attempts=attempts, dihedral=dihedral)
        fixed = np.zeros((4, 2), np.int32)
    else:
        user = parse_layout(layout, field="layout")
        bank = user.walls[None]
        fixed = np.array([user.boulder, user.helped, user.goal, user.learner], np.int32)
    return ProsocialParams(
        bank=jnp.asarray(bank),
        user_layout=jnp.asarray(layout is not None),
        fixed=jnp.asarray(fixed),
        drop_places=drop == "place",
        helper_shortest=helper == "shortest",
        reward_lift=rewarded_event == "boulder_lift",
        max_steps=jnp.asarray(max_steps, jnp.int32),
        step_cost=jnp.asarray(step_cost, jnp.float32),
        goal_reward=jnp.asarray(goal_reward, jnp.float32),
    )


def _at(mask: jax.Array, pos: jax.Array) -> jax.Array:
    return mask[pos[1], pos[0]]


def _cell(pos: jax.Array) -> jax.Array:
    return jnp.zeros((SIZE, SIZE), bool).at[pos[1], pos[0]].set(True)


def distance_map(passable: jax.Array, targets: jax.Array) -> jax.Array:
    """Breadth-first distance from every cell to the nearest target, moving through passable cells.

    Args: passable (H, W) bool; targets (H, W) bool (distance 0, passable or not).
    Returns: (H, W) int32 forward moves, ``UNREACHABLE`` where no path exists.
    """
    dist = jnp.where(targets, 0, UNREACHABLE).astype(jnp.int32)

    def relax(carry):
        d, _ = carry
        p = jnp.pad(d, 1, constant_values=UNREACHABLE)
        best = jnp.minimum(jnp.minimum(p[:-2, 1:-1], p[2:, 1:-1]), jnp.minimum(p[1:-1, :-2], p[1:-1, 2:]))
        new = jnp.where(passable & ~targets, jnp.minimum(d, best + 1), d)
        return new, jnp.any(new != d)

    return jax.lax.while_loop(lambda c: c[1], relax, (dist, jnp.array(True)))[0]


def toward(
    pos: jax.Array, direction: jax.Array, dist: jax.Array, numeric_turns: jax.Array | bool = False
) -> tuple[jax.Array, jax.Array]:
    """The first minigrid action along a shortest path of ``dist`` (from :func:`distance_map`).

    Returns ``(action, has_path)``: forward (2) if the neighbour ahead is one step closer, else a turn toward the
    closest neighbour (shortest rotation, right for 180 degrees; or with ``numeric_turns`` the reference's rule:
    right while the target direction index is larger, left while smaller); ``has_path`` is False when no
    neighbour is closer (no path, or already there), and the action is then meaningless.
    """
    nb = jnp.clip(pos[None, :] + grid.DIR_TO_VEC, 0, SIZE - 1)
    d = dist[nb[:, 1], nb[:, 0]]
    here = dist[pos[1], pos[0]]
    relative = (jnp.arange(4) - direction) % 4
    turns = jnp.array([0, 1, 2, 1])[relative]
    target = jnp.argmin(jnp.where(d < UNREACHABLE, d * 4 + turns, 10 * UNREACHABLE))
    rel = relative[target]
    shortest = jnp.where(rel == 0, grid.FORWARD, jnp.where(rel == 3, grid.LEFT, grid.RIGHT))
    numeric = jnp.where(target > direction, grid.RIGHT, jnp.where(target < direction, grid.LEFT, grid.FORWARD))
    action = jnp.where(numeric_turns, numeric, shortest).astype(jnp.int32)
    return action, (d[target] < here) & (d[target] < UNREACHABLE)


def encode(state: ProsocialState) -> jax.Array:
    """Full-grid minigrid encoding (7, 7, 3) uint8 [y, x]: (object, colour, state) of every cell."""
    enc = jnp.stack(
        [jnp.where(state.walls, grid.WALL, grid.EMPTY), jnp.where(state.walls, grid.GREY, grid.RED),
         jnp.zeros(state.walls.shape, jnp.int32)], axis=-1,
    )
    enc = enc.at[state.goal_pos[1], state.goal_pos[0]].set(jnp.array([grid.GOAL, grid.GREEN, 0]))
    b = state.boulder_pos
    ball = jnp.where(state.boulder_on_grid, jnp.array([grid.BALL, grid.BLUE, 0]), enc[b[1], b[0]])
    enc = enc.at[b[1], b[0]].set(ball)  # a lifted boulder is not drawn (the carrying channel shows it)
    helped = jnp.stack([jnp.int32(grid.AGENT), jnp.int32(grid.GREEN), state.helped_dir.astype(jnp.int32)])
    enc = enc.at[state.helped_pos[1], state.helped_pos[0]].set(helped)
    learner = jnp.stack([jnp.int32(grid.AGENT), jnp.int32(grid.RED), state.learner_dir.astype(jnp.int32)])
    return enc.at[state.learner_pos[1], state.learner_pos[0]].set(learner).astype(jnp.uint8)


def _fresh(key: jax.Array, params: ProsocialParams, state: ProsocialState | None = None) -> ProsocialState:
    """A new layout and placement; counters and step count carried over from ``state`` (zero if None)."""
    key_layout, key_place = jax.random.split(key)
    index = jnp.where(params.user_layout, 0, jax.random.randint(key_layout, (), 0, params.bank.shape[0]))
    walls = params.bank[index]
    p = sample_placement(key_place, walls)
    fixed = params.fixed
    pick = lambda sampled, i: jnp.where(params.user_layout, fixed[i], sampled)  # noqa: E731 - a local one-line select
    zero = jnp.zeros((), jnp.int32)
    return ProsocialState(
        walls=walls, layout_id=index.astype(jnp.int32),
        boulder_pos=pick(p.boulder, 0), boulder_on_grid=jnp.array(True), carrying=jnp.array(False),
        goal_pos=pick(p.goal, 2), learner_pos=pick(p.learner, 3),
        learner_dir=p.learner_dir, helped_pos=pick(p.helped, 1), helped_dir=p.helped_dir,
        step_count=zero if state is None else state.step_count,
        helped_goals=zero if state is None else state.helped_goals,
        lifts=zero if state is None else state.lifts,
        pointless_lifts=zero if state is None else state.pointless_lifts,
        helped_goal=jnp.array(False) if state is None else state.helped_goal,
        lifted=jnp.array(False) if state is None else state.lifted,
    )


def helped_has_path(state: ProsocialState, boulder: jax.Array) -> jax.Array:
    """() bool: the helped agent has a path to its goal through cells that are neither walls nor ``boulder``
    ((7, 7) bool, the boulder's cell or none); the learner is not an obstacle (it moves)."""
    dist = distance_map(~state.walls & ~boulder & ~_cell(state.goal_pos), _cell(state.goal_pos))
    return _at(dist, state.helped_pos) < UNREACHABLE


def helper_action(state: ProsocialState, params: ProsocialParams) -> tuple[jax.Array, jax.Array]:
    """The helped agent's (action, has_path) in ``state``; see the module docstring."""
    boulder = _cell(state.boulder_pos) & state.boulder_on_grid
    avoid = jnp.where(params.helper_shortest, boulder | _cell(state.learner_pos), False)
    passable = ~state.walls & ~avoid & ~_cell(state.goal_pos)
    dist = distance_map(passable, _cell(state.goal_pos))
    return toward(state.helped_pos, state.helped_dir, dist, not params.helper_shortest)


class Prosocial:
    """The prosocial world; see the module docstring. Methods are pure and jit/vmap-able.

    Example::

        world = Prosocial()
        params = make_params()                              # 7-wall tree bank
        obs, state = world.reset(key, params)               # obs: (9, 9, 7) uint8
        obs, state, channels, truncated = world.step(key, state, action, params)
    """

    num_actions = 5
    action_names = ("left", "right", "forward", "pickup", "drop")
    events = ("helped_goal", "boulder_lift", "pointless_lift")
    #: Per-episode counts of the training rollouts: metric stem -> event (``<stem>_per_episode``).
    episode_counts = {"helped_goals": "helped_goal", "lifts": "boulder_lift", "pointless_lifts": "pointless_lift"}
    # The reference's observation is a 4-D Box, which SB3 neither transposes nor divides by 255.
    obs_scale = 1.0

    def observation_shape(self, params: ProsocialParams) -> tuple[int, int, int]:
        return (grid.view_size(SIZE), grid.view_size(SIZE), 7)

    def observe(self, state: ProsocialState) -> jax.Array:
        """The learner's egocentric (9, 9, 7) uint8 observation of ``state``."""
        view = grid.view_size(SIZE)
        crop = grid.egocentric_view(encode(state), state.learner_pos, state.learner_dir, view)
        obj, colour = crop[..., 0], crop[..., 1]
        carrying = jnp.zeros((view, view), jnp.uint8).at[view // 2, view // 2].set(state.carrying.astype(jnp.uint8))
        extra = jnp.stack(
            [(obj == grid.BALL).astype(jnp.uint8), ((obj == grid.AGENT) & (colour == grid.GREEN)).astype(jnp.uint8),
             carrying], axis=-1,
        )
        return jnp.concatenate([crop, extra], axis=-1)

    def reset(self, key: jax.Array, params: ProsocialParams) -> tuple[jax.Array, ProsocialState]:
        state = _fresh(key, params)
        return self.observe(state), state

    def step(
        self, key: jax.Array, state: ProsocialState, action: jax.Array, params: ProsocialParams
    ) -> tuple[jax.Array, ProsocialState, Channels, jax.Array]:
        """Apply ``action``; returns (obs, state, channels, truncated). Out-of-range actions do nothing."""
        a = jnp.asarray(action, jnp.int32)
        forward = a == grid.FORWARD
        front = grid.front_cell(state.learner_pos, state.learner_dir)
        boulder_cell = _cell(state.boulder_pos) & state.boulder_on_grid
        occupied = state.walls | boulder_cell | _cell(state.goal_pos) | _cell(state.helped_pos)
        blocked = _at(occupied, front)
        lift = (a == PICKUP) & _at(boulder_cell, front) & ~state.carrying
        # A lift opens a path if the boulder cut the helped agent off and its cell was the only way through.
        opens = ~helped_has_path(state, boulder_cell) & helped_has_path(state, jnp.zeros_like(boulder_cell))
        pointless = lift & ~opens
        put = (a == DROP) & state.carrying & params.drop_places & ~blocked
        s = state.replace(
            learner_pos=jnp.where(forward & ~blocked, front, state.learner_pos),
            learner_dir=grid.turn(state.learner_dir, a),
            boulder_pos=jnp.where(put, front, state.boulder_pos),
            boulder_on_grid=(state.boulder_on_grid & ~lift) | put,
            carrying=(state.carrying | lift) & ~put,
            step_count=state.step_count + 1,
        )
        # Then the helped agent acts on the state the learner left.
        h_action, has_path = helper_action(s, params)
        h_front = grid.front_cell(s.helped_pos, s.helped_dir)
        moves = has_path & (h_action == grid.FORWARD)
        h_blocked = _at(s.walls | (_cell(s.boulder_pos) & s.boulder_on_grid) | _cell(s.learner_pos), h_front)
        reached = moves & jnp.all(h_front == s.goal_pos)
        s = s.replace(
            helped_pos=jnp.where(moves & ~h_blocked & ~reached, h_front, s.helped_pos),
            helped_dir=jnp.where(has_path, grid.turn(s.helped_dir, h_action), s.helped_dir),
            helped_goals=s.helped_goals + reached, lifts=s.lifts + lift, pointless_lifts=s.pointless_lifts + pointless,
            helped_goal=reached, lifted=lift,
        )
        # Goal reached: a fresh layout, same step counter, the episode goes on.
        next_state = jax.lax.cond(reached, lambda _: _fresh(key, params, s), lambda _: s, None)
        event = jnp.where(params.reward_lift, lift, reached)
        channels = Channels(
            extrinsic=jnp.where(forward, -params.step_cost, 0.0).astype(jnp.float32),
            social=jnp.where(event, params.goal_reward, 0.0).astype(jnp.float32),
            event=event,
            events={"helped_goal": reached, "boulder_lift": lift, "pointless_lift": pointless},
        )
        truncated = next_state.step_count >= params.max_steps
        return self.observe(next_state), next_state, channels, truncated

    def episode_stats(self, state: ProsocialState) -> dict[str, jax.Array]:
        """Per-episode counts of ``state`` (call it on the state at truncation), float32 scalars."""
        return {"helped_goals_per_episode": state.helped_goals.astype(jnp.float32),
                "lifts_per_episode": state.lifts.astype(jnp.float32),
                "pointless_lifts_per_episode": state.pointless_lifts.astype(jnp.float32)}
