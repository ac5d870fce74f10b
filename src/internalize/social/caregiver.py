"""The caregiver as data: what it pays for, how much, how reliably, and when it is there.

A world reports, on every step, whether the event its caregiver rewards happened (``Channels.event``: the
learner reaching the goal in navigation; the helped agent reaching its goal, or the boulder being lifted, in
the prosocial world) and the caregiver's noise-free reward for it (``Channels.social`` = R_s, the hidden true
reward that curves are judged by). A :class:`Caregiver` says how much that reward is and how it is actually
*paid* to a learner while the caregiver is present:

* ``reward``: R_s on the rewarded event (the paper: 0.4); :meth:`Caregiver.world_params` puts it into the
  world's parameters, so the world's ``social`` channel and every logged ``social_return`` are this caregiver's;
* ``miss``: probability that a deserved reward is not paid (an inattentive caregiver);
* ``false_reward``: probability, on each step *without* the event, that a reward is paid anyway;
* ``noise``: standard deviation of Gaussian noise added to every reward that is paid (so a missed reward is
  a clean 0, and noise never turns a step without payment into a payment);
* ``presence``: the schedule P(step) of the socialization phase (``social.presence``); the autonomous phase's
  schedule belongs to each condition (``social.conditions``);
* ``event``: which of the world's events it pays for (``World.events``: navigation ``goal``; prosocial
  ``helped_goal`` and ``boulder_lift``; peer ``goal`` and ``peer_goal``); empty = the world's own rewarded event.

With ``miss = false_reward = noise = 0`` (the paper) the paid reward *is* the world's R_s and no random numbers
are drawn, so the paper's runs are unchanged by this module.

Several caregivers
------------------
An experiment may list several caregivers, each with its own event, reward, reliability and socialization
schedule; each is present or absent independently, and a learner is paid the sum of what the present ones pay.
The hidden true R_s (``Channels.social``, every logged ``social_return``) is then the sum of their noise-free
rewards: :class:`CaregivenWorld` recomputes the world's social channel from its ``events``. In the autonomous
phase every caregiver follows the condition's schedule (they stay or leave together).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from internalize.config_error import ConfigError
from internalize.social.presence import Presence
from internalize.worlds.base import Channels


def _number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Caregiver:
    """Who pays R_s, how much and how reliably; see the module docstring."""

    reward: float = field(default=0.4, metadata={"help": "R_s paid on the rewarded event (paper: 0.4)."})
    noise: float = field(
        default=0.0, metadata={"help": "standard deviation of Gaussian noise added to every reward paid (>= 0)."}
    )
    miss: float = field(
        default=0.0, metadata={"help": "probability that a deserved reward is not paid, in [0, 1]."}
    )
    false_reward: float = field(
        default=0.0,
        metadata={"help": "probability, on each step without the rewarded event, of paying anyway, in [0, 1]."},
    )
    presence: Presence = field(
        default_factory=Presence,
        metadata={"help": "presence schedule during socialization (a [caregiver.presence] table; default always)."},
    )
    event: str = field(default="", metadata={"help": (
        "the world's event this caregiver pays for; empty = the world's own rewarded event. navigation: goal; "
        "prosocial: helped_goal, boulder_lift; peer: goal, peer_goal.")})

    def __post_init__(self) -> None:
        if not _number(self.reward):
            raise ConfigError.got("caregiver.reward", self.reward, "a finite number")
        if not (_number(self.noise) and self.noise >= 0):
            raise ConfigError.got("caregiver.noise", self.noise, "a finite number >= 0")
        for name in ("miss", "false_reward"):
            value = getattr(self, name)
            if not (_number(value) and 0 <= value <= 1):
                raise ConfigError.got(f"caregiver.{name}", value, "a probability in [0, 1]")
        if not isinstance(self.presence, Presence):
            raise ConfigError.got("caregiver.presence", self.presence, "a Presence schedule")
        if not isinstance(self.event, str):
            raise ConfigError.got("caregiver.event", self.event, "an event name of the world, or empty")

    @property
    def exact(self) -> bool:
        """True when the caregiver pays exactly the world's R_s (no misses, false rewards or noise)."""
        return self.noise == 0 and self.miss == 0 and self.false_reward == 0

    def world_params(self, params: Any) -> Any:
        """``params`` of any world (they all carry ``goal_reward``, the R_s of the rewarded event) with this
        caregiver's ``reward``."""
        return params.replace(goal_reward=jnp.asarray(self.reward, jnp.float32))


def deserved(caregiver: Caregiver, channels: Channels) -> jax.Array:
    """Whether the caregiver's event happened (bool, shape of ``channels.event``): ``channels.event`` for the
    world's own event, else ``channels.events[caregiver.event]``."""
    if not caregiver.event:
        return jnp.asarray(channels.event, bool)
    if channels.events is None or caregiver.event not in channels.events:
        named = [] if channels.events is None else sorted(channels.events)
        raise ConfigError.got("caregiver.event", caregiver.event, " | ".join(named) or "none named")
    return jnp.asarray(channels.events[caregiver.event], bool)


def paid_reward(caregiver: Caregiver, channels: Channels, key: jax.Array) -> jax.Array:
    """The reward the caregiver pays on each step *if present* (float32, shape of ``channels.event``).

    The noise-free reward when the caregiver is exact (``channels.social`` itself for a caregiver of the world's
    own event, whose reward :meth:`Caregiver.world_params` put there); otherwise the event's reward survives a
    miss with probability ``1 - miss``, a step without the event pays ``reward`` with probability
    ``false_reward``, and every payment gets N(0, noise^2) added. One independent draw per element (env) and step.
    """
    if caregiver.exact and not caregiver.event:
        return jnp.asarray(channels.social, jnp.float32)
    event = deserved(caregiver, channels)
    if caregiver.exact:
        return jnp.where(event, jnp.float32(caregiver.reward), 0.0).astype(jnp.float32)
    k_miss, k_false, k_noise = jax.random.split(key, 3)
    shape = event.shape
    pay = jnp.where(
        event,
        jax.random.uniform(k_miss, shape) >= caregiver.miss,
        jax.random.uniform(k_false, shape) < caregiver.false_reward,
    )
    amount = jnp.float32(caregiver.reward) + jnp.float32(caregiver.noise) * jax.random.normal(k_noise, shape)
    return jnp.where(pay, amount, 0.0).astype(jnp.float32)


def as_caregivers(caregiver: Caregiver | tuple[Caregiver, ...]) -> tuple[Caregiver, ...]:
    """One caregiver or several, as a non-empty tuple (an experiment's ``caregiver`` field accepts both)."""
    caregivers = caregiver if isinstance(caregiver, tuple) else (caregiver,)
    if not caregivers or not all(isinstance(c, Caregiver) for c in caregivers):
        raise ConfigError.got("caregiver", caregiver, "a Caregiver or a non-empty tuple of them")
    return caregivers


def resolve_events(caregivers: tuple[Caregiver, ...], world_event: str,
                   events: tuple[str, ...]) -> tuple[Caregiver, ...]:
    """``caregivers`` with every event named: the world's own rewarded event (``world_event``) for an empty one;
    a name outside the world's ``events`` is refused with the allowed ones."""
    named = []
    for i, c in enumerate(caregivers):
        where = "caregiver" if len(caregivers) == 1 else f"caregiver[{i}]"
        if c.event and c.event not in events:
            raise ConfigError.got(f"{where}.event", c.event, f"{' | '.join(events)} (or empty: {world_event})")
        named.append(dataclasses.replace(c, event=c.event or world_event))
    return tuple(named)


def is_plain(caregivers: tuple[Caregiver, ...], world_event: str) -> bool:
    """True for the paper's setting: one caregiver paying for the world's own event, whose R_s the world itself
    reports (no :class:`CaregivenWorld` needed)."""
    return len(caregivers) == 1 and caregivers[0].event in ("", world_event)


@dataclass(frozen=True)
class CaregivenWorld:
    """``world`` whose social channel R_s is the caregivers' summed noise-free rewards for their events.

    ``rewards``: ((event name, R_s), ...), one pair per caregiver. Everything else (observations, R_e, the
    world's own ``event``, its ``events``, ``episode_stats``) is the wrapped world's.
    """

    world: Any
    rewards: tuple[tuple[str, float], ...]

    def __getattr__(self, name: str) -> Any:
        if name == "world":  # not set yet (e.g. while copying): never recurse
            raise AttributeError(name)
        return getattr(self.world, name)

    def step(self, key: jax.Array, state: Any, action: jax.Array, params: Any) -> tuple[Any, Any, Channels, Any]:
        obs, state, channels, truncated = self.world.step(key, state, action, params)
        social = jnp.zeros_like(jnp.asarray(channels.social, jnp.float32))
        for event, reward in self.rewards:
            social = social + jnp.where(channels.events[event], jnp.float32(reward), 0.0)
        return obs, state, channels._replace(social=social.astype(jnp.float32)), truncated


def caregiven(world: Any, caregivers: tuple[Caregiver, ...], world_event: str) -> Any:
    """The world whose R_s is what ``caregivers`` (events resolved) deserve: ``world`` itself in the plain case."""
    if is_plain(caregivers, world_event):
        return world
    return CaregivenWorld(world, tuple((c.event, float(c.reward)) for c in caregivers))
