"""Gymnasium adapters for the navigation, prosocial, peer and two-goal worlds: one environment, NumPy in and out.

Lets any Gymnasium-speaking library (Stable-Baselines3, CleanRL scripts, ...) drive the pure-JAX world::

    import gymnasium
    import internalize  # registers the ids below (internalize.worlds.gym_registry)

    env = gymnasium.make("internalize/Navigation-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=0)          # obs: (9, 9, 4) uint8
    obs, reward, terminated, truncated, info = env.step(2)

Without any import, Gymnasium's module prefix imports (and so registers) on the fly::

    env = gymnasium.make("internalize:internalize/Navigation-v0")

Registered ids
--------------
* ``internalize/Navigation-v0``: 3 random blocks per layout (the paper's Figure 1b/4a world).
* ``internalize/NavigationMap-v0``: a fixed map, default ``"T"``; pass ``map=`` (a built-in name or an ASCII
  map) to choose another.
* ``internalize/Prosocial-v0``: the Figure 7 world (:class:`ProsocialEnv`; observations (9, 9, 7), actions 0..4
  = left, right, forward, pick up, drop); keyword arguments go to ``internalize.worlds.prosocial.make_params``.
  Its reward is R_e + R_s (-0.009 per forward, +0.4 when the helped agent reaches its goal); ``info`` has
  ``extrinsic``, ``social``, ``event``, ``helped_goal`` and ``lifted``. No PettingZoo view: the helped agent is
  scripted inside the world, so there is a single learner.
* ``internalize/Peer-v0``: the empathy probe's two-agent world (:class:`PeerEnv`; a scripted peer walks to the
  goal too; observations (9, 9, 5) uint8, actions left, right, forward); keyword arguments (``n_blocks``,
  ``similarity``, ``view``, ``peer_noise``, ...) go to ``internalize.worlds.peer.make_params``. ``info`` has
  ``extrinsic``, ``social``, ``goal_reached``, ``peer_goals`` and ``peer_blocked`` (this episode's counts). Its
  frames draw the peer as the learner sees it, marked with a white dot.
* ``internalize/TwoGoal-v0``: navigation with a green and a blue goal (:class:`TwoGoalEnv`; observations (9, 9, 5)
  uint8, the last two channels marking each goal; actions left, right, forward); keyword arguments go to
  ``internalize.worlds.two_goal.make_params``. ``info`` has ``extrinsic``, ``social`` (paid for either goal),
  ``goal_reached``, ``goal_green`` and ``goal_blue`` (what happened on this step).

Any keyword argument of :func:`internalize.worlds.navigation.make_params` (``n_blocks``, ``map``, ``size``,
``check_reachable``, ``max_steps``, ``goal_reward``, ``step_cost``) passes through ``gymnasium.make`` or the
constructor.

Reward
------
The scalar reward is what a learner gets while the caregiver is present: R_e + R_s, i.e. -0.045 for every
forward (blocked ones too), +0.4 on the step that enters the goal (its cost is replaced), 0 for turns. The
channels stay separate in ``info``: ``extrinsic`` (R_e), ``social`` (R_s) and ``goal_reached``. Episodes never
terminate (``terminated`` is always False); they are truncated after ``max_steps`` (20) steps.

Randomness
----------
All randomness is a JAX key chain: ``reset(seed=s)`` starts it from ``s``; a ``reset()`` without a seed goes
on along the chain (on the very first reset it is started from the environment's own ``np_random``, as
Gymnasium seeds it). The global NumPy generator is never used.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces

from internalize.worlds import peer, prosocial, two_goal
from internalize.worlds.gym_registry import register
from internalize.worlds.navigation import Navigation, make_params
from internalize.worlds.render import render_frame, render_peer_frame, render_prosocial_frame, render_two_goal_frame


def _reset(world: Any, key: jax.Array, params: Any) -> tuple[jax.Array, jax.Array, Any]:
    key, sub = jax.random.split(key)
    obs, state = world.reset(sub, params)
    return key, obs, state


def _step(world: Any, events: Any, key: jax.Array, state: Any, action: jax.Array, params: Any):
    key, sub = jax.random.split(key)
    obs, state, channels, truncated = world.step(sub, state, action, params)
    # One small float vector instead of several scalars: a single device-to-host transfer per step.
    scalars = jnp.stack(
        [channels.extrinsic, channels.social, channels.event.astype(jnp.float32), truncated.astype(jnp.float32),
         *(e.astype(jnp.float32) for e in events(state))]
    )
    return key, obs, state, scalars


# Compiled once per world and parameter shape (params are traced data), so every instance with the same grid
# size shares one program and a new instance costs no compile.
_reset_jit = jax.jit(_reset, static_argnums=0)
_step_jit = jax.jit(_step, static_argnums=(0, 1))


def _key_from_seed(seed: int) -> jax.Array:
    """A JAX key from a non-negative integer of any size (``jax.random.key`` alone keeps only 32 bits)."""
    key = jax.random.key(seed & 0xFFFFFFFF)
    seed >>= 32
    while seed:
        key = jax.random.fold_in(key, seed & 0xFFFFFFFF)
        seed >>= 32
    return key


def _no_events(state: Any) -> tuple:
    return ()


def _prosocial_events(state: prosocial.ProsocialState) -> tuple[jax.Array, jax.Array]:
    return state.helped_goal, state.lifted


def _peer_events(state: peer.PeerState) -> tuple[jax.Array, jax.Array]:
    return state.peer_goals, state.peer_blocked


def _two_goal_events(state: two_goal.TwoGoalState) -> tuple[jax.Array, jax.Array]:
    return state.goal_green, state.goal_blue


class _GridEnv(gymnasium.Env):
    """A pure-JAX grid world as a single Gymnasium environment; subclasses name the world and its pieces.

    Args:
      render_mode: None or ``"rgb_array"`` (``render()`` returns a (size * tile_size, size * tile_size, 3)
        uint8 frame).
      tile_size: pixels per grid cell in rendered frames.
      **params: passed to the world's ``make_params``.

    Attributes:
      params: the world's parameters; state: the current world state (JAX arrays), or None before reset.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}
    world: Any
    make_params: Any
    render_state: Any
    events: Any = staticmethod(_no_events)
    event_names: tuple[str, ...] = ()
    kind = "grid"

    def __init__(self, render_mode: str | None = None, tile_size: int = 32, **params: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            allowed = " or ".join(["None", *map(repr, self.metadata["render_modes"])])
            raise ValueError(f"render_mode: must be {allowed} for the {self.kind} world, got {render_mode!r}.")
        names = tuple(inspect.signature(self.make_params).parameters)
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a {self.kind} parameter (got {unknown}); allowed: render_mode, tile_size, "
                f"{', '.join(names)}."
            )
        if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or not 4 <= tile_size <= 256:
            raise ValueError(f"tile_size: must be an integer in 4..256 (pixels per cell), got {tile_size!r}.")
        self.params = self.make_params(**params)
        self.render_mode = render_mode
        self.tile_size = int(tile_size)
        self.observation_space = spaces.Box(0, 255, self.world.observation_shape(self.params), np.uint8)
        self.action_space = spaces.Discrete(self.world.num_actions)
        self.state: Any = None
        self._key: jax.Array | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; returns (obs (view, view, channels) uint8, info {})."""
        super().reset(seed=seed)
        if seed is not None:
            self._key = _key_from_seed(int(seed))
        elif self._key is None:
            self._key = _key_from_seed(int(self.np_random.integers(2**63)))
        self._key, obs, self.state = _reset_jit(self.world, self._key, self.params)
        return np.array(obs), {}

    def _check_action(self, action: Any) -> int:
        """The action as a Python int in range, or a ValueError saying what is allowed."""
        names = self.world.action_names
        value = action
        if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
            value = value.reshape(()).item()
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer))
                or not 0 <= value < len(names)):
            allowed = ", ".join(f"{i} ({n})" for i, n in enumerate(names))
            raise ValueError(f"action: must be an integer {allowed}, got {action!r}.")
        return int(value)

    def _info(self, scalars: np.ndarray) -> dict[str, Any]:
        return {"extrinsic": float(scalars[0]), "social": float(scalars[1])}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action``. Returns obs; reward R_e + R_s (float); terminated (always False); truncated (True on
        step ``max_steps`` of the episode); info with the reward channels (see the subclass)."""
        act = self._check_action(action)
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.step called before reset(); call reset() first.")
        self._key, obs, self.state, scalars = _step_jit(self.world, self.events, self._key, self.state,
                                                        np.int32(act), self.params)
        obs, scalars = jax.device_get((obs, scalars))
        info = self._info(scalars)
        return np.array(obs), info["extrinsic"] + info["social"], False, bool(scalars[3]), info

    def render(self) -> np.ndarray | None:
        """The current state as an RGB frame when ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.render called before reset(); call reset() first.")
        return self._frame()

    def _frame(self) -> np.ndarray:
        return type(self).render_state(self.state, self.tile_size)


class NavigationEnv(_GridEnv):
    """The navigation world as a single Gymnasium environment (see the module docstring).

    ``**params`` go to :func:`internalize.worlds.navigation.make_params` (``n_blocks``, ``map``, ...); ``params``
    is a :class:`NavParams`, ``state`` a :class:`NavState`. Observations (view, view, 4) uint8; actions 0 left,
    1 right, 2 forward; ``info`` has ``extrinsic``, ``social`` (floats) and ``goal_reached``.
    """

    world = Navigation()
    make_params = staticmethod(make_params)
    render_state = staticmethod(render_frame)
    kind = "navigation"

    def _info(self, scalars: np.ndarray) -> dict[str, Any]:
        return {**super()._info(scalars), "goal_reached": bool(scalars[2])}


class ProsocialEnv(_GridEnv):
    """The prosocial world (Figure 7) as a single Gymnasium environment, NumPy in and out.

    ``**params`` go to :func:`internalize.worlds.prosocial.make_params` (``n_walls``, ``layout``, ``drop``,
    ``helper``, ``rewarded_event``, ...). Observations (9, 9, 7) uint8; actions 0 left, 1 right, 2 forward,
    3 pick up, 4 drop; ``info`` has ``extrinsic``, ``social`` (floats), ``event`` (the rewarded event),
    ``helped_goal`` and ``lifted`` (what happened on this step, rewarded or not).
    """

    world = prosocial.Prosocial()
    make_params = staticmethod(prosocial.make_params)
    render_state = staticmethod(render_prosocial_frame)
    events = staticmethod(_prosocial_events)
    kind = "prosocial"

    def _info(self, scalars: np.ndarray) -> dict[str, Any]:
        return {**super()._info(scalars), "event": bool(scalars[2]), "helped_goal": bool(scalars[4]),
                "lifted": bool(scalars[5])}


class PeerEnv(_GridEnv):
    """The empathy probe's two-agent navigation world as a single Gymnasium environment (see the module docstring).

    ``**params`` go to :func:`internalize.worlds.peer.make_params`. Observations (view, view, 5) uint8 (the fifth
    channel marks the learner's own cell); actions 0 left, 1 right, 2 forward; ``info`` has ``extrinsic``,
    ``social``, ``goal_reached`` (the learner's), ``peer_goals`` and ``peer_blocked`` (counts so far this episode).
    """

    world = peer.PeerNavigation()
    make_params = staticmethod(peer.make_params)
    render_state = staticmethod(render_peer_frame)
    events = staticmethod(_peer_events)
    kind = "peer"

    def _info(self, scalars: np.ndarray) -> dict[str, Any]:
        return {**super()._info(scalars), "goal_reached": bool(scalars[2]), "peer_goals": int(scalars[4]),
                "peer_blocked": int(scalars[5])}

    def _frame(self) -> np.ndarray:
        return render_peer_frame(self.state, self.tile_size, self.params)  # the peer's look is a parameter


class TwoGoalEnv(_GridEnv):
    """The two-goal navigation world as a single Gymnasium environment (see the module docstring).

    ``**params`` go to :func:`internalize.worlds.two_goal.make_params` (``n_blocks``, ``map``, ...). Observations
    (view, view, 5) uint8 (channels 3 and 4 mark the green and the blue goal); actions 0 left, 1 right, 2 forward;
    ``info`` has ``extrinsic``, ``social``, ``goal_reached`` (either goal), ``goal_green`` and ``goal_blue``.
    """

    world = two_goal.TwoGoal()
    make_params = staticmethod(two_goal.make_params)
    render_state = staticmethod(render_two_goal_frame)
    events = staticmethod(_two_goal_events)
    kind = "two-goal"

    def _info(self, scalars: np.ndarray) -> dict[str, Any]:
        return {**super()._info(scalars), "goal_reached": bool(scalars[2]), "goal_green": bool(scalars[4]),
                "goal_blue": bool(scalars[5])}


# The ids are registered by ``import internalize`` (internalize.worlds.gym_registry); importing this module
# directly registers them too, since it imports the package first.
register()
