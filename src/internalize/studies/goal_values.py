"""The goal-values probe: what a learnt ISR says entering each goal of the two-goal world is worth.

After an experiment in the two-goal world (``worlds.two_goal``), every seed's full-data ISR is scored on matched
held-out stimuli: ``n_stimuli`` fresh layouts, in each the learner placed beside the green goal facing it, beside
the blue goal facing it, and (the control) facing a free floor cell, each with the action ``forward``. The mean
ISR output of each kind is one row per seed, condition ``isr``, phase ``goal_values``:

* ``isr_goal_green``, ``isr_goal_blue``: the ISR's reward for entering each goal;
* ``isr_forward``: its reward for a forward step onto plain floor (what a caregiver never pays for: a negative
  control that must read near 0, or the values of the goals mean little).

A seed's stimuli come from ``fold_in(key(seed), STIMULUS_TAG)``, a key no training phase uses, so every point of a
sweep scores its ISRs on the same layouts (paired comparisons across presence shares).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from internalize.agents.isr import isr_reward
from internalize.config_error import ConfigError
from internalize.experiments import phases
from internalize.experiments.probes import Probe
from internalize.worlds import grid
from internalize.worlds.navigation import _pick_cell
from internalize.worlds.two_goal import TwoGoal, TwoGoalParams, TwoGoalState

STIMULUS_TAG = 0x60A1  # folded into a seed's root key for its held-out stimuli
KINDS = ("goal_green", "goal_blue", "forward")


def _facing(state: TwoGoalState, target: jax.Array, forbidden: jax.Array,
            u: jax.Array) -> tuple[TwoGoalState, jax.Array]:
    """``state`` with the learner on a random free neighbour of ``target`` facing it, and whether one exists.

    A neighbour is free when it is inside, not a wall and not ``forbidden`` ((size, size) bool: the goals)."""
    size = state.walls.shape[0]
    cells = target[None, :] - grid.DIR_TO_VEC  # standing at target - dir(d) and facing d enters target
    inside = jnp.all((cells >= 0) & (cells < size), axis=1)
    x, y = jnp.clip(cells[:, 0], 0, size - 1), jnp.clip(cells[:, 1], 0, size - 1)
    ok = inside & ~state.walls[y, x] & ~forbidden[y, x]
    d = jnp.argmax(jnp.where(ok, u, -1.0))  # a uniformly random valid direction
    return state.replace(agent_pos=cells[d].astype(jnp.int32), agent_dir=d.astype(jnp.int32)), jnp.any(ok)


def build_stimuli(params: TwoGoalParams, key: jax.Array, n: int) -> dict[str, tuple[jax.Array, jax.Array]]:
    """``n`` layouts' stimuli of each kind: kind -> (obs (n, view, view, 5) uint8, valid (n,) bool)."""
    world = TwoGoal()

    def one(k: jax.Array) -> dict[str, tuple[jax.Array, jax.Array]]:
        k_reset, k_green, k_blue, k_floor = jax.random.split(k, 4)
        _, state = world.reset(k_reset, params)
        goals = jnp.zeros_like(state.walls).at[state.green_pos[1], state.green_pos[0]].set(True)
        goals = goals.at[state.blue_pos[1], state.blue_pos[0]].set(True)
        out = {}
        for kind, target, kk in (("goal_green", state.green_pos, k_green), ("goal_blue", state.blue_pos, k_blue)):
            s, valid = _facing(state, target, goals, jax.random.uniform(kk, (4,)))
            out[kind] = (world.observe(s), valid)
        # The control: a free floor cell entered from a free floor neighbour (neither is a goal).
        free = ~state.walls & ~goals
        u = jax.random.uniform(k_floor, (1,))
        target = _pick_cell(u[0], free & _has_free_neighbour(free))
        s, valid = _facing(state, target, goals, jax.random.uniform(jax.random.fold_in(k_floor, 1), (4,)))
        out["forward"] = (world.observe(s), valid & free[target[1], target[0]])
        return out

    return jax.vmap(one)(jax.random.split(key, n))


def _has_free_neighbour(free: jax.Array) -> jax.Array:
    padded = jnp.pad(free, 1)
    return padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:]


@dataclass(frozen=True)
class GoalValuesProbe(Probe):
    """Every seed's ISR on matched stimuli: entering the green goal, the blue goal, and plain floor (control)."""

    kind: ClassVar[str] = "goal_values"
    n_stimuli: int = field(default=256, metadata={"help": "layouts per seed, each giving one stimulus of each kind"})

    def __post_init__(self) -> None:
        if not isinstance(self.n_stimuli, int) or isinstance(self.n_stimuli, bool) or self.n_stimuli < 1:
            raise ConfigError.got("n_stimuli", self.n_stimuli, "a positive integer")

    def check(self, exp: Any) -> None:
        world = exp.socialization_world
        if world.kind != "two-goal":
            raise ConfigError("probes.goal_values", f"socialization_world {world.name!r} is a {world.kind} world; "
                              "allowed: a two-goal world (the stimuli enter its green and blue goals).",
                              value=world.name, allowed="a two-goal world")

    def rows(self, exp: Any, keys: Any, soc: Any, isr_params: Any) -> list[dict]:
        """One row per (seed, stimulus kind): the mean ISR reward over the seed's valid stimuli of that kind."""
        world, params = exp.socialization_world, exp.socialization_world.params()
        cfg = phases.isr_config(exp)
        forward = jnp.full((self.n_stimuli,), grid.FORWARD, jnp.int32)
        stimuli = [build_stimuli(params, jax.random.fold_in(jax.random.key(s), STIMULUS_TAG), self.n_stimuli)
                   for s in exp.seeds]
        model = jax.jit(jax.vmap(lambda p, o: isr_reward(cfg, p, o, forward)))
        rows = []
        for kind in KINDS:
            obs = jnp.stack([st[kind][0] for st in stimuli])
            valid = np.stack([np.asarray(st[kind][1]) for st in stimuli])
            rewards = np.asarray(model(isr_params, obs), np.float64)
            for i, seed in enumerate(exp.seeds):
                value = rewards[i][valid[i]].mean() if valid[i].any() else np.nan
                rows.append({"experiment": exp.name, "condition": "isr", "world": world.name, "seed": seed,
                             "phase": self.kind, "step": 0, "episode": np.nan, "metric": f"isr_{kind}",
                             "value": float(value)})
        return rows
