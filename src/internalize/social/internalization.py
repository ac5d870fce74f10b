"""The MDP with social rewards as a reward module of the PPO learner: presence, utility, ISR data and R_i.

The learner maximises U = R_e + P * R_s + (1 - P) * R_i (``social.utility`` for the reference's variants).
:func:`social_reward` builds the :class:`~internalize.agents.reward.Reward` that does this inside the rollout:

* **presence** P comes from a caregiver schedule (``social.presence.Presence``, counted from the phase's first
  step), drawn per episode for the stochastic kinds, and is switched off altogether for a run whose
  ``caregiver`` flag is False;
* **paid R_s**: what the caregiver actually pays while present (``social.caregiver.paid_reward``: the world's
  R_s, or a noisy, inconsistent version of it), logged as ``paid`` (per episode ``paid_return``; the world's
  noise-free R_s stays ``social_return``) and stored for the ISR — the learner only knows what it was paid;
  the fraction of steps with the caregiver present is reported per rollout (``presence_rate``); with several
  caregivers each one's payments, present steps and rate too (``paid_return/caregiver[i]``,
  ``presence_return/caregiver[i]``, ``presence_rate/caregiver[i]``);
* **R_i** is the ISR's prediction for the step's (pre-action observation, action), scaled by the run's
  ``isr_weight`` (0 = a learner without an ISR), and logged as the ``internal`` reward whatever P is; an ISR
  ensemble's prediction is its members' reduction, and their std on the step is logged too (per rollout, its mean
  over the rollout's steps: ``isr_disagreement``);
* **socialization data**: with ``store > 0`` every transition on which the caregiver was present is appended
  to an on-device :class:`~internalize.agents.isr_data.IsrBuffer` (observation, action, paid R_s) after each
  rollout;
* **continual internalization**: with ``isr_updates_per_rollout > 0`` the ISR also trains on that buffer after
  every rollout in which a caregiver was present — how a learner keeps internalizing under a stochastic schedule,
  or while it is weaned (a condition's ``internalizes``).

Per-run flags (``caregiver``, ``isr_weight``) and the ISR's parameters are *data* in the module's state, so
the paper's conditions share one compiled program and can be vmapped together:

========================  ===================  =============  ==========
condition                 schedule             ``caregiver``  isr_weight
========================  ===================  =============  ==========
socialization             always               True           0
caregiver ("oracle")      always               True           0
none                      always               False          0
isr                       always               False          1
========================  ===================  =============  ==========
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from internalize.agents.isr import IsrConfig, IsrState, isr_init, isr_members, isr_reward, isr_update
from internalize.agents.isr_data import IsrBuffer, isr_buffer_add, isr_buffer_init
from internalize.agents.isr_ensemble import disagreement, reduce_members
from internalize.agents.reward import Reward
from internalize.config_error import ConfigError
from internalize.social.caregiver import Caregiver, as_caregivers, paid_reward
from internalize.social.presence import Presence, update_presence
from internalize.social.utility import UtilityConfig, utility


@struct.dataclass
class SocialState:
    """The reward module's state for one run (a leading seed/run axis when vmapped).

    Attributes:
      presence: (n_envs,) bool, the schedule's draw for each env's current episode; (C, n_envs) with C > 1
        caregivers, one row per caregiver.
      caregiver: () bool, False removes the caregiver from this run whatever the schedule says.
      isr_weight: () float32, multiplies R_i (0 = no ISR in this run).
      isr: the ISR (params, optimizer state, update count), or None without one.
      buffer: the socialization transitions stored so far, or None when nothing is stored.
    """

    presence: jax.Array
    caregiver: jax.Array
    isr_weight: jax.Array
    isr: IsrState | None
    buffer: IsrBuffer | None


def social_reward(
    presence: Presence | tuple[Presence, ...],
    utility_config: UtilityConfig,
    isr_config: IsrConfig | None = None,
    *,
    store: int = 0,
    isr_updates_per_rollout: int = 0,
    obs_shape: Sequence[int] = (9, 9, 4),
    caregiver: Caregiver | tuple[Caregiver, ...] | None = None,
    phase_start: int = 0,
) -> Reward:
    """A PPO reward module for an MDP with social rewards (see the module docstring).

    Args:
      presence: the caregiver's schedule over this phase's global env steps; with several caregivers, one
        schedule each, or one that all of them follow.
      utility_config: how R_e, R_s and R_i combine (paper: additive).
      isr_config: the ISR whose output is R_i; None for a learner without one.
      store: capacity of the socialization buffer in transitions (0 = store nothing).
      isr_updates_per_rollout: ISR updates on the buffer after each rollout (needs ``store`` and an ISR).
      obs_shape: the world's observation shape.
      caregiver: what the caregiver pays while present (default: exactly the world's R_s); a tuple for several
        caregivers, each present on its own draws, the learner paid the sum of the present ones' payments
        (their events named: ``caregiver.resolve_events``). ``presence`` in the info is then "any present".
      phase_start: the global env step at which this phase began; ``presence`` is evaluated at
        ``step - phase_start`` (an autonomous phase continues the socialization's step count).

    The initial state has ``caregiver=True``, ``isr_weight=1`` (0 without an ISR), a fresh ISR and an empty
    buffer; :func:`with_run_flags` and :func:`with_isr` set them per run.
    """
    if isr_updates_per_rollout and (not store or isr_config is None):
        raise ConfigError("isr_updates_per_rollout", f"{isr_updates_per_rollout} needs an ISR and a socialization "
                          "buffer (isr_config and store > 0).", value=isr_updates_per_rollout)
    obs_shape = tuple(obs_shape)
    caregivers = as_caregivers(Caregiver() if caregiver is None else caregiver)
    schedules = presence if isinstance(presence, tuple) else (presence,) * len(caregivers)
    if len(schedules) != len(caregivers):
        raise ConfigError("presence", f"{len(schedules)} schedules for {len(caregivers)} caregivers; allowed: one "
                          "schedule, or one per caregiver.", value=presence,
                          allowed="one schedule, or one per caregiver")
    several = len(caregivers) > 1
    presence_shape = (len(caregivers),) if several else ()

    def init_state(key: jax.Array, n_envs: int) -> SocialState:
        return SocialState(
            presence=jnp.zeros((*presence_shape, n_envs), bool),
            caregiver=jnp.array(True),
            isr_weight=jnp.float32(0.0 if isr_config is None else 1.0),
            isr=None if isr_config is None else isr_init(isr_config, key, obs_shape),
            buffer=isr_buffer_init(store, obs_shape) if store else None,
        )

    def pay(rstate: SocialState, channels, new_episode, step, key):
        """(presence draws, present, paid if present, per-caregiver info) of this step, each (n_envs,); draws
        (C, n_envs) if several, and then each caregiver's presence and payment as info entries."""
        if not several:
            # An exact caregiver draws nothing: the presence draws keep the key they always had.
            k_presence, k_paid = (key, key) if caregivers[0].exact else jax.random.split(key)
            drawn = update_presence(schedules[0], k_presence, step - phase_start, new_episode, rstate.presence)
            present = drawn & rstate.caregiver
            return drawn, present, paid_reward(caregivers[0], channels, k_paid), {}
        keys = jax.random.split(key, 2 * len(caregivers))
        drawn = jnp.stack([update_presence(s, keys[2 * i], step - phase_start, new_episode, rstate.presence[i])
                           for i, s in enumerate(schedules)])
        present = drawn & rstate.caregiver
        paid = jnp.where(present, jnp.stack([paid_reward(c, channels, keys[2 * i + 1])
                                             for i, c in enumerate(caregivers)]), 0.0)
        each = {}
        for i, label in enumerate(caregiver_labels(len(caregivers))):
            each[f"paid/{label}"] = paid[i]
            each[f"presence/{label}"] = present[i].astype(jnp.float32)
        return drawn, jnp.any(present, axis=0), jnp.sum(paid, axis=0), each

    def reward_fn(rstate: SocialState, obs, action, channels, next_obs, new_episode, step, key):
        del next_obs
        drawn, present, paid, each = pay(rstate, channels, new_episode, step, key)
        if isr_config is None:
            internal = jnp.zeros(action.shape, jnp.float32)
        elif isr_config.ensemble == 1:
            internal = rstate.isr_weight * isr_reward(isr_config, rstate.isr.params, obs, action)
        else:
            members = isr_members(isr_config, rstate.isr.params, obs, action)
            internal = rstate.isr_weight * reduce_members(isr_config, members)
            # The ensemble's own uncertainty on the states it is asked about, whatever the run's ISR weight.
            each = {**each, "isr_disagreement": disagreement(members)}
        u = utility(utility_config, channels._replace(social=paid), present, internal)
        info = {"internal": internal, "presence": present.astype(jnp.float32),
                "paid": jnp.where(present, paid, 0.0), **each}
        return u, rstate.replace(presence=drawn), info

    def update_fn(rstate: SocialState, rollout, key):
        metrics: dict[str, jax.Array] = {"presence_rate": jnp.mean(rollout.info["presence"])}
        if "isr_disagreement" in rollout.info:  # the mean member std of R_i over the rollout's steps
            metrics["isr_disagreement"] = jnp.mean(rollout.info["isr_disagreement"])
        if several:
            for label in caregiver_labels(len(caregivers)):
                metrics[f"presence_rate/{label}"] = jnp.mean(rollout.info[f"presence/{label}"])
        if rstate.buffer is not None:
            present = rollout.info["presence"] > 0.5
            # The payments are the ISR's target; the world's noise-free R_s is kept beside them, to score against.
            buffer = isr_buffer_add(rstate.buffer, rollout.obs, rollout.action, rollout.info["paid"], present,
                                    true_social=rollout.channels.social)
            rstate = rstate.replace(buffer=buffer)
            metrics["stored"] = buffer.count.astype(jnp.float32)
        if isr_updates_per_rollout:
            # Internalizing goes on while a caregiver is there: a rollout without one adds nothing to learn from.
            isr, loss = isr_update(rstate.isr, rstate.buffer, key, isr_updates_per_rollout)
            present_now = jnp.any(rollout.info["presence"] > 0.5)
            isr = jax.tree.map(lambda new, old: jnp.where(present_now, new, old), isr, rstate.isr)
            rstate = rstate.replace(isr=isr)
            metrics["isr_loss"] = jnp.where(present_now, loss, jnp.nan)
        return rstate, metrics

    return Reward(init_state, reward_fn, update_fn)


def caregiver_labels(n: int) -> tuple[str, ...]:
    """How the per-caregiver metrics name several caregivers: as the experiment file does, ``caregiver[i]``
    (``paid_return/caregiver[0]``, ``presence_return/caregiver[1]``, ``presence_rate/caregiver[1]``)."""
    return tuple(f"caregiver[{i}]" for i in range(n))


def with_run_flags(state: SocialState, caregiver: Any, isr_weight: Any) -> SocialState:
    """``state`` with a run's caregiver flag and ISR weight (scalars, or arrays batched like ``state``)."""
    return state.replace(
        caregiver=jnp.asarray(caregiver, bool) & jnp.ones_like(state.caregiver),
        isr_weight=jnp.asarray(isr_weight, jnp.float32) * jnp.ones_like(state.isr_weight),
    )


def with_isr(state: SocialState, params: Any) -> SocialState:
    """``state`` whose ISR has the given (trained) parameters; the optimizer state is kept."""
    if state.isr is None:
        raise ValueError("isr: this reward module was built without an ISR (isr_config=None).")
    return state.replace(isr=state.isr.replace(params=params))


def stored_buffer(state: SocialState) -> IsrBuffer:
    """The socialization buffer of a state built with ``store > 0``."""
    if state.buffer is None:
        raise ValueError("store: this reward module stores no socialization data (store=0).")
    return state.buffer
