"""What every world returns from a step, and the auto-reset every learner uses.

A world's step never mixes rewards: it returns its reward *channels* (docs/design.md, principle 3) and the learner's
utility is composed from them elsewhere (``internalize.social.utility``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import jax


class Channels(NamedTuple):
    """Reward channels of one step; every field is a float32/bool scalar (or batch of them).

    Attributes:
      extrinsic: R_e, the world's own reward (the step cost: -0.045 per forward in navigation).
      social: R_s, what the caregiver pays *if present* (0.4 when the rewarded event happens). Always computed,
        whether or not a caregiver is there: it is the hidden true reward curves are judged by.
      event: the event the caregiver rewards happened on this step (navigation: the learner reached the goal).
      events: every event a caregiver could reward, by name (the world's ``events``), each a bool like
        ``event``; one of them is ``event``. ``None`` in hand-made channels that name no events.
    """

    extrinsic: jax.Array
    social: jax.Array
    event: jax.Array
    events: dict[str, jax.Array] | None = None


class World(Protocol):
    """A pure, functional world in the gymnax style: all state explicit, all constants in ``params``."""

    num_actions: int
    obs_scale: float  # what a learner multiplies the uint8 observation by (SB3: 1/255 for image-shaped Boxes)
    events: tuple[str, ...]  # the names in ``Channels.events``: what a caregiver can pay for in this world

    def observation_shape(self, params: Any) -> tuple[int, ...]: ...

    def reset(self, key: jax.Array, params: Any) -> tuple[jax.Array, Any]: ...

    def step(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any
    ) -> tuple[jax.Array, Any, Channels, jax.Array]: ...


class AutoResetStep(NamedTuple):
    """One step of a world that starts a new episode after truncation.

    ``obs`` is what the learner acts on next (the new episode's first observation after a truncation);
    ``final_obs`` is the observation the ended episode stopped in, needed to bootstrap the truncated return
    with gamma * V(final_obs) as Stable-Baselines3 does. Without truncation both are the same.
    """

    obs: jax.Array
    state: Any
    channels: Channels
    truncated: jax.Array
    final_obs: jax.Array


def step_autoreset(world: World, key: jax.Array, state: Any, action: jax.Array, params: Any) -> AutoResetStep:
    """``world.step`` followed, where the episode was truncated, by ``world.reset`` (jit/vmap-able)."""
    key_step, key_reset = jax.random.split(key)
    obs, next_state, channels, truncated = world.step(key_step, state, action, params)
    # The cond runs reset only at episode ends in an unbatched world (under vmap it becomes a select).
    next_obs, next_state = jax.lax.cond(
        truncated, lambda _: world.reset(key_reset, params), lambda _: (obs, next_state), None
    )
    return AutoResetStep(next_obs, next_state, channels, truncated, obs)
