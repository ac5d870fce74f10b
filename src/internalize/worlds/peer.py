"""Two-agent navigation: the learner and a scripted peer that walks to the same goal on its own.

Peer navigation
===============
A ``size`` x ``size`` grid (7) whose outer ring is wall, ``n_blocks`` grey blocks (2) drawn on interior cells
for every episode, one green goal, the red learner and a *peer*. The peer is scripted: it walks to the goal by
itself, and the caregiver never pays for its success. The world is the *empathy probe*: does a learnt reward
model (ISR), trained only on the learner's own goal reaching, also reward the peer's goal reaching, and does
that depend on how much the peer looks like the learner (``similarity``)?

Layout sampling (every reset): blocks uniformly on free interior cells; the goal uniformly on the remaining
free cells; the learner, then the peer, uniformly on the cells still free (distinct, never on the goal); each
direction uniformly in {east, south, west, north}. A layout whose goal is not reachable (4-connected over
non-block cells) from both agents is drawn again.

What the agent sees
-------------------
A uint8 image with 5 channels: 0 minigrid object (unseen 0, empty 1, wall 2, ball 6, goal 8, agent 10),
1 colour (red 0, green 1, blue 2, grey 5), 2 state (an agent's absolute direction on its cell, else 0),
3 ``is_goal`` and 4 ``is_self`` (1 on the learner's own cell, :data:`SELF_CHANNEL`; ``peer_self``, 0 by
default, on the peer's). With ``colours = "rgb"`` (static) colour and heading are vectors instead of codes, in
12 channels: channel 1 is 0, channels 5, 6, 7 hold red, green and blue intensities 0..10 (red agent 10/0/0, green
goal 0/10/0, grey wall 5/5/5, the peer ``peer_rgb``), so colours lie at distances from each other and a peer's
colour can be interpolated, and channels 8..11 a heading one-hot on each agent's cell (10 = facing east, south,
west, north), so "facing the goal" is a local pattern. ``view`` (static):

* ``"egocentric"``: the paper's ``view`` x ``view`` crop (``view = 2 * size - 5``, 9) centred on the learner,
  which faces up, exactly as in ``navigation``: channels 0..3 mean what they mean there, ``is_self`` is 1 at
  the centre only.
* ``"allocentric"``: the full ``size`` x ``size`` grid indexed [y, x], border included, not rotated, so the
  learner's own cell is known only from ``is_self``.

Learners scale the image by ``obs_scale`` = 1/10 (the largest code is 10), not SB3's 1/255: in the allocentric
view an agent's heading is only its state code 0..3, which 1/255 would shrink below 0.012.

The peer's look is set by ``similarity`` (data, not static): ``"identical"`` (agent, red) like the learner,
``"colour"`` (agent, blue), ``"kind"`` (ball, blue; its state channel is 0). ``observe_values`` gives the same
observation in float32 before rounding, so probe stimuli can place a peer at fractional colours or self-marker
values (``peer_rgb``, ``peer_self``) that the uint8 image cannot hold.

Actions
-------
The learner's: ``0`` turn left, ``1`` turn right, ``2`` forward (into the front cell unless it is a wall, a
block or the peer's cell). Other action values do nothing.

Order within a step: the learner acts, then the peer. With probability ``peer_noise`` (0.2) the peer takes a
uniformly random action in {left, right, forward}; otherwise the first action of a shortest path to the goal
over non-block cells, planned ignoring the learner: forward if the front cell is one step closer, else the
cheaper turn toward a closer neighbour (right for 180 degrees); with no path it turns left. A peer forward into
a wall or the learner's cell fails; ``peer_blocked`` counts the failures caused by the learner. With
``peer_enters_goal = False`` a peer forward into the goal fails too (a peer that never reaches it).

Rewards (channels, never mixed)
-------------------------------
* extrinsic R_e: ``-step_cost`` (0.9 / max_steps = 0.045) for every learner forward, blocked ones included,
  except on the step whose forward enters the goal (cost replaced, as in navigation).
* social R_s: ``goal_reward`` (0.4) on the step the *learner* enters the goal.
* event: True on the step the learner enters the goal.
* events: ``goal`` (that event) and ``peer_goal`` (the peer entered the goal), for caregivers that pay for either.

The peer's goal pays nothing in the world's own channels; it is counted in the state (``peer_goals``).

Termination
-----------
When either agent enters the goal, the goal moves to a uniformly random free cell, reachable from the agents
and not occupied by either; blocks and agents stay and the episode goes on. The episode never terminates; it is
truncated at ``max_steps`` (20 = 4 * 25 // 5), like navigation.

Social reward
-------------
The goal caregiver pays R_s only for the learner's own goal reaching, while present: the peer's success is
never rewarded, so any reward a learnt model gives it is generalisation. Presence belongs to
``internalize.social``; this world reports what a caregiver *would* pay on every step.

Caregiver schedule
------------------
None here: presence is a property of the training phase (``internalize.social.caregiver``), not of the world.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from internalize.config_error import ConfigError
from internalize.worlds import grid
from internalize.worlds.base import Channels
from internalize.worlds.navigation import _pick_cell
from internalize.worlds.prosocial import UNREACHABLE, distance_map

MAX_BLOCKS = 6
SELF_CHANNEL = 4
SIMILARITIES = ("identical", "colour", "kind")
VIEWS = ("egocentric", "allocentric")
COLOURS = ("code", "rgb")
#: Colour code -> (red, green, blue) intensity 0..10 of the ``rgb`` encoding.
RGB = {grid.RED: (10.0, 0.0, 0.0), grid.GREEN: (0.0, 10.0, 0.0), grid.BLUE: (0.0, 0.0, 10.0),
       grid.GREY: (5.0, 5.0, 5.0)}
PEER_CODES = {"identical": (grid.AGENT, grid.RED), "colour": (grid.AGENT, grid.BLUE), "kind": (grid.BALL, grid.BLUE)}
"""(object, colour) minigrid codes of the peer for each similarity level."""


@struct.dataclass
class PeerParams:
    """Everything that defines a peer world; all data except ``view`` (it changes the observation's shape).

    Attributes:
      fixed_walls: (size, size) bool [y, x], the border ring.
      n_blocks: () int32, random blocks per episode on interior cells.
      max_steps: () int32, steps per episode before truncation.
      step_cost: () float32, cost of every learner forward (positive number, subtracted).
      goal_reward: () float32, social reward for the learner entering the goal.
      peer_object, peer_colour: () int32 minigrid codes the peer is drawn with.
      peer_noise: () float32, probability that the peer takes a random action.
      peer_rgb: (3,) float32, the peer's red, green, blue intensities 0..10 in the ``rgb`` encoding.
      peer_self: () float32, the ``is_self`` value on the peer's cell (0: only the learner carries the marker).
      peer_enters_goal: () bool, False = the peer's forward into the goal fails (it never reaches it).
      view: ``"egocentric"`` or ``"allocentric"`` (static).
      colours: ``"code"`` (one colour-code channel) or ``"rgb"`` (three intensity channels 5..7; static).
    """

    fixed_walls: jax.Array
    n_blocks: jax.Array
    max_steps: jax.Array
    step_cost: jax.Array
    goal_reward: jax.Array
    peer_object: jax.Array
    peer_colour: jax.Array
    peer_noise: jax.Array
    peer_rgb: jax.Array
    peer_self: jax.Array
    peer_enters_goal: jax.Array
    view: str = struct.field(pytree_node=False, default="egocentric")
    colours: str = struct.field(pytree_node=False, default="code")

    @property
    def size(self) -> int:
        return self.fixed_walls.shape[-1]


@struct.dataclass
class PeerState:
    """One peer world. Positions ``(x, y)`` (2,) int32, directions () int32, ``walls`` (size, size) bool [y, x].

    ``peer_goals`` and ``peer_blocked`` count this episode's peer goals and peer forwards blocked by the learner.
    """

    walls: jax.Array
    goal_pos: jax.Array
    agent_pos: jax.Array
    agent_dir: jax.Array
    peer_pos: jax.Array
    peer_dir: jax.Array
    step_count: jax.Array
    peer_goals: jax.Array
    peer_blocked: jax.Array


def border_walls(size: int = 7) -> np.ndarray:
    """(size, size) bool [y, x]: True on the outer ring only."""
    walls = np.zeros((size, size), dtype=bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    return walls


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    return numeric and bool(np.isfinite(value))


def make_params(
    n_blocks: int = 2,
    *,
    similarity: str = "identical",
    view: str = "egocentric",
    peer_noise: float = 0.2,
    size: int = 7,
    max_steps: int | None = None,
    goal_reward: float = 0.4,
    step_cost: float | None = None,
    colours: str = "code",
    peer_rgb: tuple[float, float, float] | None = None,
    peer_self: float = 0.0,
    peer_enters_goal: bool = True,
) -> PeerParams:
    """Validated parameters for the peer world.

    Args:
      n_blocks: random blocks per episode, 0..6.
      similarity: the peer's look, one of :data:`SIMILARITIES` (``identical`` = exactly like the learner).
      view: ``"egocentric"`` (9 x 9 x 5 crop) or ``"allocentric"`` (size x size x 5 grid).
      peer_noise: probability in [0, 1] that the peer acts at random on a step.
      size: side of the grid including its border walls, 5..15.
      max_steps: episode length; default ``4 * (size - 2) ** 2 // 5`` (20).
      goal_reward: social reward for the learner reaching the goal (0.4).
      step_cost: cost of a learner forward; default ``0.9 / max_steps`` (0.045).
      colours: ``"code"`` or ``"rgb"`` (see the module docstring).
      peer_rgb: the peer's (red, green, blue) in [0, 10] for the ``rgb`` encoding; default its similarity's colour.
      peer_self: the ``is_self`` value on the peer's cell, in [0, 1].
      peer_enters_goal: False = the peer can never step onto the goal.

    Raises:
      ConfigError (a ValueError): its key the parameter, with the value and what is allowed.
    """
    if not _is_int(size) or not 5 <= size <= 15:
        raise ConfigError.must("size", "an integer in 5..15 (border walls included)", size)
    if not _is_int(n_blocks) or not 0 <= n_blocks <= MAX_BLOCKS:
        raise ConfigError.must("n_blocks", f"an integer in 0..{MAX_BLOCKS}", n_blocks)
    if similarity not in SIMILARITIES:
        raise ConfigError.must("similarity", f"one of {', '.join(SIMILARITIES)}", similarity)
    if view not in VIEWS:
        raise ConfigError.must("view", f"one of {', '.join(VIEWS)}", view)
    if not _is_number(peer_noise) or not 0.0 <= peer_noise <= 1.0:
        raise ConfigError.must("peer_noise", "a probability in [0, 1]", peer_noise)
    if colours not in COLOURS:
        raise ConfigError.must("colours", f"one of {', '.join(COLOURS)}", colours)
    obj, colour = PEER_CODES[similarity]
    rgb = RGB[colour] if peer_rgb is None else peer_rgb
    if not isinstance(rgb, (tuple, list)) or len(rgb) != 3 or not all(_is_number(v) and 0 <= v <= 10 for v in rgb):
        raise ConfigError.must("peer_rgb", "three numbers in [0, 10] (red, green, blue)", peer_rgb)
    if not _is_number(peer_self) or not 0.0 <= peer_self <= 1.0:
        raise ConfigError.must("peer_self", "a number in [0, 1]", peer_self)
    if not isinstance(peer_enters_goal, (bool, np.bool_)):
        raise ConfigError.must("peer_enters_goal", "true or false", peer_enters_goal)
    if max_steps is None:
        max_steps = 4 * (size - 2) ** 2 // 5
    if not _is_int(max_steps) or max_steps < 1:
        raise ConfigError.must("max_steps", "a positive integer", max_steps)
    if step_cost is None:
        step_cost = 0.9 / max_steps
    for name, value in (("goal_reward", goal_reward), ("step_cost", step_cost)):
        if not _is_number(value):
            raise ConfigError.must(name, "a finite number", value)
    return PeerParams(
        fixed_walls=jnp.asarray(border_walls(size)),
        n_blocks=jnp.asarray(n_blocks, jnp.int32),
        max_steps=jnp.asarray(max_steps, jnp.int32),
        step_cost=jnp.asarray(step_cost, jnp.float32),
        goal_reward=jnp.asarray(goal_reward, jnp.float32),
        peer_object=jnp.asarray(obj, jnp.int32),
        peer_colour=jnp.asarray(colour, jnp.int32),
        peer_noise=jnp.asarray(peer_noise, jnp.float32),
        peer_rgb=jnp.asarray(rgb, jnp.float32),
        peer_self=jnp.asarray(peer_self, jnp.float32),
        peer_enters_goal=jnp.asarray(bool(peer_enters_goal)),
        view=view,
        colours=colours,
    )


def make_state(
    walls: jax.Array | np.ndarray, goal: object, agent: object, agent_dir: int | jax.Array, peer: object,
    peer_dir: int | jax.Array, *, step_count: int = 0, peer_goals: int = 0, peer_blocked: int = 0,
) -> PeerState:
    """A state from explicit positions: ``walls`` (size, size) bool [y, x]; ``goal``, ``agent``, ``peer`` (x, y).

    Nothing is checked (tests and stimulus builders place agents where they need them).
    """
    def i32(value: object) -> jax.Array:
        return jnp.asarray(value, jnp.int32)

    return PeerState(
        walls=jnp.asarray(walls, bool), goal_pos=i32(goal), agent_pos=i32(agent), agent_dir=i32(agent_dir),
        peer_pos=i32(peer), peer_dir=i32(peer_dir), step_count=i32(step_count), peer_goals=i32(peer_goals),
        peer_blocked=i32(peer_blocked),
    )


def _cell(pos: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """(H, W) bool, True at ``pos`` (x, y) only; all False if ``pos`` is outside (no index wrap-around)."""
    ys, xs = jnp.indices(shape)
    return (xs == pos[0]) & (ys == pos[1])


def _draw_layout(key: jax.Array, params: PeerParams) -> tuple[jax.Array, ...]:
    """One layout, no reachability check: (walls, goal, agent, agent_dir, peer, peer_dir)."""
    free = ~params.fixed_walls
    cells = free.size
    u = jax.random.uniform(key, (cells + 5,))
    # A uniformly random n-subset of the free cells: the n largest of i.i.d. scores (as navigation).
    scores = jnp.where(free.reshape(-1), u[:cells], -1.0)
    index = jnp.arange(cells)
    tie = (scores[None, :] == scores[:, None]) & (index[None, :] < index[:, None])
    above = (scores[None, :] > scores[:, None]) | tie
    walls = params.fixed_walls | (free & (above.sum(axis=1) < params.n_blocks).reshape(free.shape))
    goal = _pick_cell(u[cells], ~walls)
    agent = _pick_cell(u[cells + 1], ~walls & ~_cell(goal, walls.shape))
    peer = _pick_cell(u[cells + 2], ~walls & ~_cell(goal, walls.shape) & ~_cell(agent, walls.shape))
    dirs = jnp.minimum(jnp.floor(u[cells + 3:] * 4), 3).astype(jnp.int32)
    return walls, goal, agent, dirs[0], peer, dirs[1]


def sample_layout(key: jax.Array, params: PeerParams) -> tuple[jax.Array, ...]:
    """A layout whose goal both agents can reach: (walls, goal, agent, agent_dir, peer, peer_dir)."""
    zero2, zero = jnp.zeros(2, jnp.int32), jnp.zeros((), jnp.int32)
    blank = (params.fixed_walls, zero2, zero2, zero, zero2, zero)

    def draw(carry):
        key, _, _ = carry
        key, sub = jax.random.split(key)
        layout = _draw_layout(sub, params)
        walls, goal, agent, _, peer, _ = layout
        from_goal = grid.reachable(~walls, goal)
        return key, layout, from_goal[agent[1], agent[0]] & from_goal[peer[1], peer[0]]

    _, layout, _ = jax.lax.while_loop(lambda c: ~c[2], draw, (key, blank, jnp.array(False)))
    return layout


def _relocate_goal(key: jax.Array, state: PeerState) -> PeerState:
    """The goal moved to a uniformly random free cell reachable from the learner and occupied by neither agent."""
    shape = state.walls.shape
    allowed = grid.reachable(~state.walls, state.agent_pos) & ~_cell(state.agent_pos, shape) & ~_cell(
        state.peer_pos, shape
    )
    return state.replace(goal_pos=_pick_cell(jax.random.uniform(key), allowed))


def peer_plan(state: PeerState) -> jax.Array:
    """The noiseless peer's action in ``state`` (shortest path over non-block cells, learner ignored); () int32."""
    goal = _cell(state.goal_pos, state.walls.shape)
    dist = distance_map(~state.walls & ~goal, goal)
    size = state.walls.shape[0]
    nb = jnp.clip(state.peer_pos[None, :] + grid.DIR_TO_VEC, 0, size - 1)
    here = dist[state.peer_pos[1], state.peer_pos[0]]
    closer = (dist[nb[:, 1], nb[:, 0]] < here) & (here < UNREACHABLE)
    relative = (jnp.arange(4) - state.peer_dir) % 4  # 0 ahead, 1 right, 2 behind, 3 left
    target = jnp.argmin(jnp.where(closer, jnp.array([0, 1, 2, 1])[relative], 99))
    rel = relative[target]
    action = jnp.where(rel == 0, grid.FORWARD, jnp.where(rel == 3, grid.LEFT, grid.RIGHT))
    return jnp.where(jnp.any(closer), action, grid.LEFT).astype(jnp.int32)


def encode(state: PeerState, params: PeerParams) -> jax.Array:
    """Full-grid encoding (size, size, 7) float32 [y, x]: (object, colour, state, is_self, red, green, blue) of
    every cell; the intensities follow :data:`RGB` and ``peer_rgb``, ``is_self`` is ``peer_self`` on the peer."""
    shape = state.walls.shape
    zeros = jnp.zeros(shape, jnp.float32)
    grey = jnp.where(state.walls, 5.0, 0.0)
    enc = jnp.stack([jnp.where(state.walls, grid.WALL, grid.EMPTY).astype(jnp.float32),
                     jnp.where(state.walls, grid.GREY, grid.RED).astype(jnp.float32), zeros, zeros,
                     grey, grey, grey], axis=-1)
    goal = jnp.array([grid.GOAL, grid.GREEN, 0, 0, *RGB[grid.GREEN]], jnp.float32)
    enc = enc.at[state.goal_pos[1], state.goal_pos[0]].set(goal)
    peer_state = jnp.where(params.peer_object == grid.AGENT, state.peer_dir, 0)
    peer = jnp.concatenate([jnp.stack([params.peer_object, params.peer_colour, peer_state]).astype(jnp.float32),
                            params.peer_self[None], params.peer_rgb])
    enc = enc.at[state.peer_pos[1], state.peer_pos[0]].set(peer)
    agent = jnp.concatenate([jnp.stack([jnp.int32(grid.AGENT), jnp.int32(grid.RED),
                                        state.agent_dir.astype(jnp.int32), jnp.int32(1)]).astype(jnp.float32),
                             jnp.asarray(RGB[grid.RED], jnp.float32)])
    return enc.at[state.agent_pos[1], state.agent_pos[0]].set(agent)


class PeerNavigation:
    """The peer world; see the module docstring. Methods are pure and jit/vmap-able.

    Example::

        world = PeerNavigation()
        params = make_params(similarity="colour")
        obs, state = world.reset(key, params)           # obs: (9, 9, 5) uint8
        obs, state, channels, truncated = world.step(key, state, action, params)
    """

    num_actions = 3
    action_names = ("left", "right", "forward")
    events = ("goal", "peer_goal")
    obs_scale = 0.1  # see the module docstring: keeps the direction codes visible
    self_channel = SELF_CHANNEL

    def observation_shape(self, params: PeerParams) -> tuple[int, int, int]:
        side = grid.view_size(params.size) if params.view == "egocentric" else params.size
        return (side, side, 12 if params.colours == "rgb" else 5)

    def observe_values(self, state: PeerState, params: PeerParams, cell: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The observation in float32 before rounding and a (H, W) bool mask, True at the observation cell showing
        grid cell ``cell`` (x, y).

        The mask is an extra channel of the encoded grid that goes through the same crop, so it follows the view;
        it is all False when ``cell`` is outside the grid or out of view.
        """
        enc = encode(state, params)
        mark = _cell(jnp.asarray(cell, jnp.int32), state.walls.shape).astype(jnp.float32)
        enc = jnp.concatenate([enc, mark[..., None]], axis=-1)  # (obj, colour, state, self, r, g, b, mark)
        if params.view == "egocentric":
            enc = grid.egocentric_view(enc, state.agent_pos, state.agent_dir, grid.view_size(params.size))
        else:
            enc = jnp.concatenate([enc, (enc[..., :1] == grid.GOAL).astype(jnp.float32)], axis=-1)
        # enc: (obj, colour, state, self, r, g, b, mark, is_goal)
        if params.colours == "rgb":
            # Headings as a one-hot too (10 = facing that way), so "facing the goal" is a local pattern, not a
            # comparison of a scalar code with the goal's side.
            heading = jax.nn.one_hot(enc[..., 2].astype(jnp.int32), 4) * 10.0 * (enc[..., :1] == grid.AGENT)
            obs = jnp.concatenate([jnp.stack([enc[..., 0], jnp.zeros_like(enc[..., 0]), enc[..., 2], enc[..., 8],
                                              enc[..., 3], enc[..., 4], enc[..., 5], enc[..., 6]], axis=-1), heading],
                                  axis=-1)
        else:
            obs = enc[..., jnp.array([0, 1, 2, 8, 3])]
        return obs, enc[..., 7] == 1

    def observe_marked(self, state: PeerState, params: PeerParams, cell: jax.Array) -> tuple[jax.Array, jax.Array]:
        """:meth:`observe_values` rounded to the uint8 image, and its mask."""
        obs, mark = self.observe_values(state, params, cell)
        return jnp.round(obs).astype(jnp.uint8), mark

    def observe(self, state: PeerState, params: PeerParams) -> jax.Array:
        """The learner's uint8 observation: (view, view, C) egocentric or (size, size, C) allocentric, C = 5 or 8."""
        return self.observe_marked(state, params, jnp.array([-1, -1], jnp.int32))[0]

    def reset(self, key: jax.Array, params: PeerParams) -> tuple[jax.Array, PeerState]:
        walls, goal, agent, agent_dir, peer, peer_dir = sample_layout(key, params)
        zero = jnp.zeros((), jnp.int32)
        state = PeerState(walls, goal, agent, agent_dir, peer, peer_dir, zero, zero, zero)
        return self.observe(state, params), state

    def step(
        self, key: jax.Array, state: PeerState, action: jax.Array, params: PeerParams
    ) -> tuple[jax.Array, PeerState, Channels, jax.Array]:
        """Apply the learner's ``action``, then the peer's; returns (obs, state, channels, truncated)."""
        key_goal, key_noise, key_act, key_peer_goal = jax.random.split(key, 4)
        action = jnp.asarray(action, jnp.int32)
        forward = action == grid.FORWARD
        front = grid.front_cell(state.agent_pos, state.agent_dir)
        blocked = state.walls[front[1], front[0]] | jnp.all(front == state.peer_pos)
        at_goal = forward & jnp.all(front == state.goal_pos)
        s = state.replace(
            agent_pos=jnp.where(forward & ~blocked, front, state.agent_pos),
            agent_dir=grid.turn(state.agent_dir, action),
            step_count=state.step_count + 1,
        )
        # The goal moves on; the cond skips the sampler on other steps of an unbatched world (as navigation).
        s = jax.lax.cond(at_goal, lambda x: _relocate_goal(key_goal, x), lambda x: x, s)
        # Then the peer acts on the state the learner left.
        noisy = jax.random.uniform(key_noise) < params.peer_noise
        p_action = jnp.where(noisy, jax.random.randint(key_act, (), 0, 3, dtype=jnp.int32), peer_plan(s))
        p_forward = p_action == grid.FORWARD
        p_front = grid.front_cell(s.peer_pos, s.peer_dir)
        by_learner = p_forward & jnp.all(p_front == s.agent_pos)
        into_goal = jnp.all(p_front == s.goal_pos)
        p_moves = p_forward & ~s.walls[p_front[1], p_front[0]] & ~by_learner & (params.peer_enters_goal | ~into_goal)
        reached = p_moves & into_goal
        s = s.replace(
            peer_pos=jnp.where(p_moves, p_front, s.peer_pos),
            peer_dir=grid.turn(s.peer_dir, p_action),
            peer_goals=s.peer_goals + reached,
            peer_blocked=s.peer_blocked + by_learner,
        )
        next_state = jax.lax.cond(reached, lambda x: _relocate_goal(key_peer_goal, x), lambda x: x, s)
        channels = Channels(
            extrinsic=jnp.where(forward & ~at_goal, -params.step_cost, 0.0).astype(jnp.float32),
            social=jnp.where(at_goal, params.goal_reward, 0.0).astype(jnp.float32),
            event=at_goal,
            events={"goal": at_goal, "peer_goal": reached},
        )
        truncated = next_state.step_count >= params.max_steps
        return self.observe(next_state, params), next_state, channels, truncated

    def episode_stats(self, state: PeerState) -> dict[str, jax.Array]:
        """Per-episode peer counters of ``state`` (call it on the state at truncation), float32 scalars."""
        return {
            "peer_goals_per_episode": state.peer_goals.astype(jnp.float32),
            "peer_blocked_per_episode": state.peer_blocked.astype(jnp.float32),
        }
