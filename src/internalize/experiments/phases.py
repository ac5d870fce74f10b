"""The pieces of an experiment's phases, built from its spec: PPO configs, reward modules, ISR configs, keys.

Pure construction, no I/O: :mod:`internalize.experiments.runner` runs and stores what these build.

Randomness: every run derives from its seed's root key ``jax.random.key(seed)``, split once into the keys of
the socialization, ISR, autonomy and evaluation phases. Autonomy runs of one seed fold in the condition and
world; evaluation uses the same key for every condition of a (seed, world), so all conditions are scored on
the same held-out layouts (paired comparisons).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from internalize.agents.isr import IsrConfig
from internalize.agents.networks import ActorCritic
from internalize.agents.ppo_config import PPOConfig
from internalize.agents.reward import Reward
from internalize.experiments.spec import Experiment, WorldSpec
from internalize.social.caregiver import Caregiver, as_caregivers, caregiven, is_plain, resolve_events
from internalize.social.conditions import Condition
from internalize.social.internalization import social_reward
from internalize.social.presence import Presence
from internalize.social.utility import UtilityConfig


class SeedKeys(NamedTuple):
    """Per-phase keys of a batch of seeds, each (S,) typed PRNG keys."""

    socialization: jax.Array
    isr: jax.Array
    autonomy: jax.Array
    evaluation: jax.Array


def seed_keys(seeds: tuple[int, ...]) -> SeedKeys:
    """The phase keys of every seed (derived from ``jax.random.key(seed)`` alone)."""
    split = jax.vmap(lambda s: jax.random.split(jax.random.key(s), 4))(jnp.asarray(seeds, jnp.uint32))
    return SeedKeys(*(split[:, i] for i in range(4)))


def autonomy_keys(keys: SeedKeys, condition: Condition, world_index: int) -> jax.Array:
    """(S,) keys of one condition's autonomy runs on one world."""
    tag = condition.tag * 1000 + world_index
    return jax.vmap(lambda k: jax.random.fold_in(k, tag))(keys.autonomy)


def evaluation_keys(keys: SeedKeys, world_index: int) -> jax.Array:
    """(S,) keys of the held-out episodes on one world, shared by all conditions."""
    return jax.vmap(lambda k: jax.random.fold_in(k, world_index))(keys.evaluation)


def policy_network(exp: Experiment) -> ActorCritic:
    """The learner's network as every phase builds it (torso, and the observation scale the learner trained on)."""
    env = exp.socialization_world.env()
    return ActorCritic(env.num_actions, torso=exp.learner.torso, obs_scale=ppo_config(exp, 0).policy_input_scale(env))


def ppo_config(exp: Experiment, steps: int) -> PPOConfig:
    """The learner's PPO config for a phase of ``steps`` env steps."""
    return dataclasses.replace(exp.learner, total_timesteps=steps)


def socialization_capacity(exp: Experiment) -> int:
    """Transitions a seed stores during socialization: the whole phase, rounded up to whole rollouts."""
    return exp.learner.phase_steps(exp.socialization_steps)


def isr_config(exp: Experiment, n_data: int | None = None, n_train: int | None = None,
               curve_points: int = 100) -> IsrConfig:
    """The experiment's ISR config with the fields it leaves to the runner filled in: the world's action count and
    self channel, the policy's observation scale, the unit's data size (``n_data``, all when None) and, once
    ``n_train`` (training transitions, known after socialization) is known, the number of updates
    (``isr.n_updates``, or ``isr.updates_fraction`` of an epoch).
    ``curve_points``: about how many points of the training curve to log (each costs two held-out batches).
    """
    isr, env = exp.isr, exp.socialization_world.env()
    n_updates = isr.n_updates
    if n_updates is None and n_train is not None:
        n_updates = isr.epoch_updates(n_train)
    return dataclasses.replace(
        isr, num_actions=env.num_actions,
        # The ISR sees the observation on exactly the policy's scale (the learner's own or the world's).
        obs_scale=ppo_config(exp, 0).policy_input_scale(env),
        n_updates=n_updates, n_data=n_data, log_every=max(1, (n_updates or curve_points) // curve_points),
        # Where the world marks the learner's own cell (the peer world's peer may look exactly like it).
        self_channel=getattr(env, "self_channel", None),
        # What the experiment does with ISRs, not what one ISR is: kept out of the jitted program's static key.
        data_sizes=(), data_size_updates="epoch",
    )


def isr_data_sizes(exp: Experiment, n_stored: int) -> tuple[int, ...]:
    """The Figure 3b data sizes that need an ISR of their own: a size of at least the ``n_stored`` transitions
    of the whole socialization *is* the full-data ISR (same data, split and budget), trained once."""
    return tuple(n for n in exp.isr.data_sizes if n < n_stored)


def isr_size_config(exp: Experiment, n_data: int, n_train: int, n_train_full: int,
                    curve_points: int = 10) -> IsrConfig:
    """The config of the Figure 3b ISR on the first ``n_data`` transitions (``n_train`` of them train; the
    full-data ISR trains on ``n_train_full``).

    Its updates (``isr.data_size_updates``): ``epoch`` = ``updates_fraction`` of an epoch over its own training
    data, as the reference (one epoch of batch 1 for every size), so less data also means fewer updates;
    ``full`` = the full-data ISR's updates for every size, so the sizes differ only in their data (a small one
    is seen for several epochs). Either way every size is scored on the full-data ISR's held-out transitions
    (``isr_metrics(..., holdout=isr_config(exp))``, see ``units.isr_sizes_unit``).
    """
    basis = n_train_full if exp.isr.data_size_updates == "full" else n_train
    return isr_config(exp, n_data, basis, curve_points=curve_points)


def caregivers(exp: Experiment) -> tuple[Caregiver, ...]:
    """The experiment's caregivers as the reward module takes them: as given in the paper's setting (one
    caregiver of the world's own event, whose R_s the world reports), else with every event named."""
    given, world = as_caregivers(exp.caregiver), exp.socialization_world
    if is_plain(given, world.own_event):
        return given
    return resolve_events(given, world.own_event, world.env().events)


def env(exp: Experiment) -> Any:
    """The world object of every world of ``exp``: its kind's world, whose R_s is what the experiment's caregivers
    deserve (``social.caregiver.CaregivenWorld``) unless they are the paper's one of the world's own event."""
    return caregiven(exp.socialization_world.env(), caregivers(exp), exp.socialization_world.own_event)


def world_params(exp: Experiment, world: WorldSpec) -> object:
    """The parameters of ``world``, with the caregiver's reward as its R_s in the paper's one-caregiver setting
    (with several, :func:`env` computes R_s from the world's events)."""
    given = caregivers(exp)
    return given[0].world_params(world.params()) if len(given) == 1 else world.params()


def utility_config(exp: Experiment) -> UtilityConfig:
    """The experiment's utility with the socialization world's step cost (autonomy worlds are of its kind)."""
    return dataclasses.replace(exp.utility, step_cost=float(exp.socialization_world.params().step_cost))


def socialization_reward(exp: Experiment, obs_shape: tuple[int, ...]) -> Reward:
    """The caregiver's own schedule (paper: always present); every transition it was present for is stored."""
    given = caregivers(exp)
    return social_reward(tuple(c.presence for c in given), utility_config(exp), None,
                         store=socialization_capacity(exp), obs_shape=obs_shape, caregiver=given)


def autonomy_schedule(conditions: list[Condition]) -> Presence | tuple[Presence, ...]:
    """The presence schedule a group of conditions runs with: ``always`` for all-or-nothing conditions (absence is
    then the per-run flag of :func:`run_flags`), else the single condition's own schedule (or its caregivers')."""
    if all(c.simple_presence for c in conditions):
        return Presence("always")
    if len(conditions) != 1:
        raise ValueError(f"conditions: {[c.name for c in conditions]} cannot share one program: a schedule "
                         "other than always/never runs alone.")
    return conditions[0].schedules


def autonomy_reward(exp: Experiment, obs_shape: tuple[int, ...], conditions: list[Condition],
                    phase_start: int) -> Reward:
    """One module for a group of conditions: presence flag and ISR weight are per-run data (:func:`run_flags`).
    ``phase_start``: the global step at which the autonomous phase begins (schedules count from it)."""
    internalizes = len(conditions) == 1 and conditions[0].internalizes
    return social_reward(autonomy_schedule(conditions), utility_config(exp), isr_config(exp), obs_shape=obs_shape,
                         caregiver=caregivers(exp), phase_start=phase_start,
                         store=internalization_capacity(exp) if internalizes else 0,
                         isr_updates_per_rollout=internalization_updates(exp) if internalizes else 0)


def internalization_capacity(exp: Experiment) -> int:
    """Transitions a seed stores when it keeps internalizing: the socialization's and the autonomous phase's."""
    return socialization_capacity(exp) + exp.learner.phase_steps(exp.autonomy_steps)


def internalization_updates(exp: Experiment) -> int:
    """ISR updates after each autonomous rollout of a learner that keeps internalizing: one batch per batch of the
    rollout's transitions (as many samples as it collected), at least one."""
    return max(1, exp.learner.n_envs * exp.learner.n_steps // exp.isr.batch_size)


def run_flags(conditions: list[Condition], n_seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(caregiver, isr_weight) arrays of shape (C * S,), condition-major: the caregiver flag is False only for
    a condition whose schedule is ``never``; the ISR weight is 1 for the conditions that use R_i."""
    caregiver = np.repeat([c.caregiver_there for c in conditions], n_seeds)
    weight = np.repeat(np.asarray([1.0 if c.isr else 0.0 for c in conditions], np.float32), n_seeds)
    return caregiver, weight


def autonomy_groups(exp: Experiment) -> list[tuple[str, WorldSpec, int, list[Condition]]]:
    """The autonomy units of ``exp``: (unit name, world, world index, conditions), in run order.

    All-or-nothing conditions on an autonomy world share one program, ``autonomy-<world>``; a condition with
    another schedule runs alone in ``autonomy-<world>-<condition>``; conditions that continue on the
    socialization world run in ``autonomy-<condition>`` (the reference's ``autonomy-frozen-continued``).
    """
    trained = [exp.condition(c) for c in exp.conditions if exp.condition(c).learns]
    groups = []
    for w_index, world in enumerate(exp.autonomy_worlds):
        here = [c for c in trained if c.world == "autonomy"]
        shared = [c for c in here if c.simple_presence]
        if shared:
            groups.append((f"autonomy-{world.name}", world, w_index, shared))
        groups += [(f"autonomy-{world.name}-{c.name}", world, w_index, [c]) for c in here if not c.simple_presence]
    for c in trained:
        if c.world == "socialization":
            groups.append((f"autonomy-{c.name}", exp.socialization_world, len(exp.autonomy_worlds), [c]))
    return groups
