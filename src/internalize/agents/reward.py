"""The learner's reward, as a plug-in of the PPO learner.

The world returns reward *channels* (extrinsic R_e, social R_s, event); what the learner maximises, its
utility U, is computed from them by a reward module. The default is a caregiver who is always there
(U = R_e + R_s). An internalized social reward model (ISR) is another module with the same interface: it
keeps its own state (network parameters, presence flags, a data buffer) and may learn from every rollout.

A reward module is a :class:`Reward` bundle of three pure functions:

``init_state(key, n_envs) -> rstate``
    The module's initial state: any pytree of arrays (``()`` when it needs none).

``reward_fn(rstate, obs, action, channels, next_obs, new_episode, step, key) -> (utility, rstate, info)``
    Called once per vector step inside the rollout ``lax.scan`` with the whole batch of ``n_envs`` envs:
    ``obs`` (n_envs, *obs_shape) uint8 is what the learner acted on, ``action`` (n_envs,) int32,
    ``channels`` a :class:`~internalize.worlds.base.Channels` of (n_envs,) arrays, ``next_obs`` the
    observation the action led to (before any auto-reset; (n_envs, *obs_shape)), ``new_episode`` (n_envs,)
    bool marks the first step of an episode (so a module can draw per-episode presence), ``step`` () int32
    is this seed's global env-step count before the step (it grows by ``n_envs`` per vector step), ``key``
    a fresh PRNG key. Returns ``utility`` (n_envs,) float32 (before any bootstrapping), the new state, and
    ``info``: a dict of (n_envs,) float arrays (e.g. ``"internal"``, ``"presence"``) that the learner sums
    per episode and reports as ``<name>_return``. The keys of ``info`` must not depend on the data.

``update_fn(rstate, rollout, key) -> (rstate, metrics)`` (optional)
    Called once after each rollout with the whole :class:`~internalize.agents.rollout.Rollout`
    (time-major (n_steps, n_envs, ...) arrays), e.g. to train an ISR on the rollout's transitions while the
    caregiver is present. ``metrics`` is a dict of scalars, reported per rollout as ``reward_<name>``.

Everything must be jit/vmap-able: the learner vmaps over seeds, with one ``rstate`` per seed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from internalize.worlds.base import Channels


class RewardFn(Protocol):
    """Per-step utility of a batch of envs; see the module docstring for shapes."""

    def __call__(
        self,
        rstate: Any,
        obs: jax.Array,
        action: jax.Array,
        channels: Channels,
        next_obs: jax.Array,
        new_episode: jax.Array,
        step: jax.Array,
        key: jax.Array,
    ) -> tuple[jax.Array, Any, dict[str, jax.Array]]: ...


class UpdateFn(Protocol):
    """Once-per-rollout update of the reward module's state; see the module docstring."""

    def __call__(self, rstate: Any, rollout: Any, key: jax.Array) -> tuple[Any, dict[str, jax.Array]]: ...


class Reward(NamedTuple):
    """A reward module: ``init_state(key, n_envs)``, ``reward_fn`` and an optional ``update_fn``."""

    init_state: Callable[[jax.Array, int], Any]
    reward_fn: RewardFn
    update_fn: UpdateFn | None = None


def _no_state(key: jax.Array, n_envs: int) -> tuple:
    del key, n_envs
    return ()


def _extrinsic_plus_social(rstate, obs, action, channels, next_obs, new_episode, step, key):
    """U = R_e + R_s: the caregiver is present on every step."""
    del obs, action, next_obs, new_episode, step, key
    utility = channels.extrinsic.astype(jnp.float32) + channels.social.astype(jnp.float32)
    return utility, rstate, {}


def caregiver_present() -> Reward:
    """The default reward: a caregiver who never leaves, U = R_e + R_s (the paper's "oracle")."""
    return Reward(_no_state, _extrinsic_plus_social, None)
