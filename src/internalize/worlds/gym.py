"""Gymnasium adapter for the navigation world: one environment, NumPy in and out.

Lets any Gymnasium-speaking library (Stable-Baselines3, CleanRL scripts, ...) drive the pure-JAX world::

    import gymnasium
    import internalize.worlds.gym  # registers the ids below

    env = gymnasium.make("internalize/Navigation-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=0)          # obs: (9, 9, 4) uint8
    obs, reward, terminated, truncated, info = env.step(2)

Without that import, Gymnasium's module prefix imports (and so registers) on the fly::

    env = gymnasium.make("internalize.worlds.gym:internalize/Navigation-v0")

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

from internalize.worlds import prosocial
from internalize.worlds.navigation import Navigation, NavParams, NavState, make_params
from internalize.worlds.render import render_frame, render_prosocial_frame

_WORLD = Navigation()
_PARAM_NAMES = tuple(inspect.signature(make_params).parameters)


def _reset(key: jax.Array, params: NavParams) -> tuple[jax.Array, jax.Array, NavState]:
    key, sub = jax.random.split(key)
    obs, state = _WORLD.reset(sub, params)
    return key, obs, state


def _step(
    key: jax.Array, state: NavState, action: jax.Array, params: NavParams
) -> tuple[jax.Array, jax.Array, NavState, jax.Array]:
    key, sub = jax.random.split(key)
    obs, state, channels, truncated = _WORLD.step(sub, state, action, params)
    # One small float vector instead of four scalars: a single device-to-host transfer per step.
    scalars = jnp.stack(
        [channels.extrinsic, channels.social, channels.event.astype(jnp.float32), truncated.astype(jnp.float32)]
    )
    return key, obs, state, scalars


# Compiled once per parameter shape (params are traced data), so every instance with the same grid size shares
# one program and a new instance costs no compile.
_reset_jit = jax.jit(_reset)
_step_jit = jax.jit(_step)


def _key_from_seed(seed: int) -> jax.Array:
    """A JAX key from a non-negative integer of any size (``jax.random.key`` alone keeps only 32 bits)."""
    key = jax.random.key(seed & 0xFFFFFFFF)
    seed >>= 32
    while seed:
        key = jax.random.fold_in(key, seed & 0xFFFFFFFF)
        seed >>= 32
    return key


def _check_action(action: Any) -> int:
    """The action as a Python int in {0, 1, 2}, or a ValueError saying what is allowed."""
    value = action
    if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 2:
        raise ValueError(f"action: must be an integer 0 (left), 1 (right) or 2 (forward), got {action!r}.")
    return int(value)


class NavigationEnv(gymnasium.Env):
    """The navigation world as a single Gymnasium environment (see the module docstring).

    Args:
      render_mode: None or ``"rgb_array"`` (``render()`` returns a (size * tile_size, size * tile_size, 3)
        uint8 frame).
      tile_size: pixels per grid cell in rendered frames.
      **params: passed to :func:`internalize.worlds.navigation.make_params` (``n_blocks``, ``map``, ...).

    Attributes:
      params: the world's :class:`NavParams`.
      state: the current :class:`NavState` (JAX arrays), or None before the first reset.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, tile_size: int = 32, **params: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: must be None or 'rgb_array', got {render_mode!r}.")
        unknown = sorted(set(params) - set(_PARAM_NAMES))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a navigation parameter (got {unknown}); allowed: render_mode, tile_size, "
                f"{', '.join(_PARAM_NAMES)}."
            )
        if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or not 4 <= tile_size <= 256:
            raise ValueError(f"tile_size: must be an integer in 4..256 (pixels per cell), got {tile_size!r}.")
        self.params = make_params(**params)
        self.render_mode = render_mode
        self.tile_size = int(tile_size)
        self.observation_space = spaces.Box(0, 255, _WORLD.observation_shape(self.params), np.uint8)
        self.action_space = spaces.Discrete(_WORLD.num_actions)
        self.state: NavState | None = None
        self._key: jax.Array | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; returns (obs (view, view, 4) uint8, info {})."""
        super().reset(seed=seed)
        if seed is not None:
            self._key = _key_from_seed(int(seed))
        elif self._key is None:
            self._key = _key_from_seed(int(self.np_random.integers(2**63)))
        self._key, obs, self.state = _reset_jit(self._key, self.params)
        return np.array(obs), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (0 left, 1 right, 2 forward).

        Returns:
          obs (view, view, 4) uint8; reward R_e + R_s (float); terminated (always False); truncated (True on
          step ``max_steps`` of the episode); info with ``extrinsic``, ``social`` (floats) and ``goal_reached``.
        """
        act = _check_action(action)
        if self.state is None:
            raise RuntimeError("NavigationEnv.step called before reset(); call reset() first.")
        self._key, obs, self.state, scalars = _step_jit(self._key, self.state, np.int32(act), self.params)
        obs, scalars = jax.device_get((obs, scalars))
        extrinsic, social = float(scalars[0]), float(scalars[1])
        info = {"extrinsic": extrinsic, "social": social, "goal_reached": bool(scalars[2])}
        return np.array(obs), extrinsic + social, False, bool(scalars[3]), info

    def render(self) -> np.ndarray | None:
        """The current state as an RGB frame when ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        if self.state is None:
            raise RuntimeError("NavigationEnv.render called before reset(); call reset() first.")
        return render_frame(self.state, self.tile_size)


_PROSOCIAL = prosocial.Prosocial()
_PROSOCIAL_PARAM_NAMES = tuple(inspect.signature(prosocial.make_params).parameters)


def _prosocial_reset(
    key: jax.Array, params: prosocial.ProsocialParams
) -> tuple[jax.Array, jax.Array, prosocial.ProsocialState]:
    key, sub = jax.random.split(key)
    obs, state = _PROSOCIAL.reset(sub, params)
    return key, obs, state


def _prosocial_step(
    key: jax.Array, state: prosocial.ProsocialState, action: jax.Array, params: prosocial.ProsocialParams
) -> tuple[jax.Array, jax.Array, prosocial.ProsocialState, jax.Array]:
    key, sub = jax.random.split(key)
    obs, state, channels, truncated = _PROSOCIAL.step(sub, state, action, params)
    scalars = jnp.stack(
        [channels.extrinsic, channels.social, channels.event.astype(jnp.float32), truncated.astype(jnp.float32),
         state.helped_goal.astype(jnp.float32), state.lifted.astype(jnp.float32)]
    )
    return key, obs, state, scalars


_prosocial_reset_jit = jax.jit(_prosocial_reset)
_prosocial_step_jit = jax.jit(_prosocial_step)


class ProsocialEnv(gymnasium.Env):
    """The prosocial world (Figure 7) as a single Gymnasium environment, NumPy in and out.

    Args:
      render_mode: None or ``"rgb_array"`` (``render()`` returns a (7 * tile_size, 7 * tile_size, 3) frame).
      tile_size: pixels per grid cell in rendered frames.
      **params: passed to :func:`internalize.worlds.prosocial.make_params` (``n_walls``, ``layout``, ``drop``,
        ``helper``, ``rewarded_event``, ...).

    Attributes:
      params: the world's ``ProsocialParams``; state: the current ``ProsocialState`` (None before reset).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, tile_size: int = 32, **params: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode: must be None or 'rgb_array', got {render_mode!r}.")
        unknown = sorted(set(params) - set(_PROSOCIAL_PARAM_NAMES))
        if unknown:
            raise ValueError(
                f"{unknown[0]}: not a prosocial parameter (got {unknown}); allowed: render_mode, tile_size, "
                f"{', '.join(_PROSOCIAL_PARAM_NAMES)}."
            )
        if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)) or not 4 <= tile_size <= 256:
            raise ValueError(f"tile_size: must be an integer in 4..256 (pixels per cell), got {tile_size!r}.")
        self.params = prosocial.make_params(**params)
        self.render_mode = render_mode
        self.tile_size = int(tile_size)
        self.observation_space = spaces.Box(0, 255, _PROSOCIAL.observation_shape(self.params), np.uint8)
        self.action_space = spaces.Discrete(_PROSOCIAL.num_actions)
        self.state: prosocial.ProsocialState | None = None
        self._key: jax.Array | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode; returns (obs (9, 9, 7) uint8, info {}). Seeding as in :class:`NavigationEnv`."""
        super().reset(seed=seed)
        if seed is not None:
            self._key = _key_from_seed(int(seed))
        elif self._key is None:
            self._key = _key_from_seed(int(self.np_random.integers(2**63)))
        self._key, obs, self.state = _prosocial_reset_jit(self._key, self.params)
        return np.array(obs), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (0 left, 1 right, 2 forward, 3 pick up, 4 drop).

        Returns obs (9, 9, 7) uint8; reward R_e + R_s; terminated (always False); truncated (True on step
        ``max_steps``); info with ``extrinsic``, ``social`` (floats), ``event`` (the rewarded event),
        ``helped_goal`` and ``lifted`` (bools: what happened on this step, rewarded or not).
        """
        value = action
        if isinstance(value, np.ndarray) and value.size == 1 and np.issubdtype(value.dtype, np.integer):
            value = value.reshape(()).item()
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 4:
            raise ValueError(
                f"action: must be an integer 0 (left), 1 (right), 2 (forward), 3 (pick up) or 4 (drop), got {action!r}."
            )
        if self.state is None:
            raise RuntimeError("ProsocialEnv.step called before reset(); call reset() first.")
        self._key, obs, self.state, scalars = _prosocial_step_jit(self._key, self.state, np.int32(value), self.params)
        obs, scalars = jax.device_get((obs, scalars))
        extrinsic, social = float(scalars[0]), float(scalars[1])
        info = {"extrinsic": extrinsic, "social": social, "event": bool(scalars[2]),
                "helped_goal": bool(scalars[4]), "lifted": bool(scalars[5])}
        return np.array(obs), extrinsic + social, False, bool(scalars[3]), info

    def render(self) -> np.ndarray | None:
        """The current state as an RGB frame when ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        if self.state is None:
            raise RuntimeError("ProsocialEnv.render called before reset(); call reset() first.")
        return render_prosocial_frame(self.state, self.tile_size)


def register() -> None:
    """Register the navigation and prosocial ids with Gymnasium (idempotent; runs on import of this module)."""
    ids = {
        "internalize/Navigation-v0": {"n_blocks": 3},
        "internalize/NavigationMap-v0": {"map": "T", "n_blocks": 0},
    }
    for env_id, kwargs in ids.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=f"{__name__}:NavigationEnv", kwargs=kwargs)
    if "internalize/Prosocial-v0" not in gymnasium.registry:
        gymnasium.register(id="internalize/Prosocial-v0", entry_point=f"{__name__}:ProsocialEnv")


register()
