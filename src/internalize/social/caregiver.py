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
  schedule belongs to each condition (``social.conditions``).

With ``miss = false_reward = noise = 0`` (the paper) the paid reward *is* the world's R_s and no random numbers
are drawn, so the paper's runs are unchanged by this module.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

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

    def __post_init__(self) -> None:
        if not _number(self.reward):
            raise ValueError(f"caregiver.reward: got {self.reward!r}; allowed: a finite number.")
        if not (_number(self.noise) and self.noise >= 0):
            raise ValueError(f"caregiver.noise: got {self.noise!r}; allowed: a finite number >= 0.")
        for name in ("miss", "false_reward"):
            value = getattr(self, name)
            if not (_number(value) and 0 <= value <= 1):
                raise ValueError(f"caregiver.{name}: got {value!r}; allowed: a probability in [0, 1].")
        if not isinstance(self.presence, Presence):
            raise ValueError(f"caregiver.presence: got {self.presence!r}; allowed: a Presence schedule.")

    @property
    def exact(self) -> bool:
        """True when the caregiver pays exactly the world's R_s (no misses, false rewards or noise)."""
        return self.noise == 0 and self.miss == 0 and self.false_reward == 0

    def world_params(self, params: Any) -> Any:
        """``params`` of any world (they all carry ``goal_reward``, the R_s of the rewarded event) with this
        caregiver's ``reward``."""
        return params.replace(goal_reward=jnp.asarray(self.reward, jnp.float32))


def paid_reward(caregiver: Caregiver, channels: Channels, key: jax.Array) -> jax.Array:
    """The reward the caregiver pays on each step *if present* (float32, shape of ``channels.event``).

    ``channels.social`` itself when the caregiver is exact; otherwise the event's reward survives a miss with
    probability ``1 - miss``, a step without the event pays ``reward`` with probability ``false_reward``, and
    every payment gets N(0, noise^2) added. One independent draw per element (env) and step.
    """
    if caregiver.exact:
        return jnp.asarray(channels.social, jnp.float32)
    k_miss, k_false, k_noise = jax.random.split(key, 3)
    deserved = jnp.asarray(channels.event, bool)
    shape = deserved.shape
    pay = jnp.where(
        deserved,
        jax.random.uniform(k_miss, shape) >= caregiver.miss,
        jax.random.uniform(k_false, shape) < caregiver.false_reward,
    )
    amount = jnp.float32(caregiver.reward) + jnp.float32(caregiver.noise) * jax.random.normal(k_noise, shape)
    return jnp.where(pay, amount, 0.0).astype(jnp.float32)
