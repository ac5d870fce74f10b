"""The learner's utility U, composed in one place from the reward channels (docs/design.md, principle 3).

Inputs, all broadcast against each other (float32 scalars or batches):

* ``channels.extrinsic`` R_e: the world's own reward (navigation: -0.045 per forward, 0 on the goal step);
* ``channels.social`` R_s: what the caregiver pays if present (0.4 on the goal step);
* ``channels.event``: the rewarded event happened (the goal step);
* ``presence`` P: caregiver present (bool, or 0/1; the additive modes also accept a probability in [0, 1]);
* ``internal`` R_i: the ISR's prediction for the (pre-action observation, action) of the step; pass 0 for a
  learner without an ISR (the "caregiver leaves, no ISR" condition then gets R_e while absent).

Modes (``c`` = ``step_cost``, the world's forward cost, 0.045 in the paper):

``additive`` (the paper's default, its U):
    U = R_e + P * R_s + (1 - P) * R_i
``additive-reference`` (reference Figs 1b/4a; docs/paper-vs-reference.md, 'Internal reward in the utility'):
    U = R_e + P * R_s + (1 - P) * (R_i - c * event)
    The reference's phase-2 world charges the step cost on the goal step too (its goal branch pays nothing but
    still costs the forward); our worlds report R_e = 0 on the goal step, so the cost is put back while absent.
``threshold-replace`` (reference Figs 5/6):
    present: U = R_e + R_s;  absent: U = R_i if R_i > threshold, else R_e - c * event
    The ISR's value *replaces* the extrinsic reward on the steps where it fires; on the others the learner gets
    the reference's extrinsic reward, which includes the goal step's cost (as above).
``replace`` (reference Fig 7):
    present: U = R_e + R_s;  absent: U = R_i (step costs and everything else discarded).

In every mode a present caregiver gives R_e + R_s, which is the reference's env reward (the social reward
replaces the goal step's cost, so it nets +0.4).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from internalize.config_error import ConfigError
from internalize.worlds.base import Channels

MODES = ("additive", "additive-reference", "threshold-replace", "replace")


@dataclass(frozen=True)
class UtilityConfig:
    """How the learner's utility is composed from the channels; see the module docstring for the formulas."""

    mode: str = field(default="additive", metadata={"help": f"one of {', '.join(MODES)}."})
    threshold: float = field(
        default=0.2,
        metadata={"help": "threshold-replace: the ISR replaces R_e where R_i > threshold (reference: 0.2)."},
    )
    step_cost: float = field(
        default=0.045,
        metadata={
            "help": "additive-reference / threshold-replace: the world's forward cost (>= 0), charged on the goal"
            " step while the caregiver is absent, as the reference does; must match the world's step_cost.",
            "derived": "the socialization world's step cost",
        },
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError.must("mode", f"one of {', '.join(MODES)}", self.mode)
        for name in ("threshold", "step_cost"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
                raise ConfigError.must(name, "a finite number", value)
        if self.step_cost < 0:
            raise ConfigError.must("step_cost", ">= 0 (a cost, subtracted)", self.step_cost)


def _as_config(config: UtilityConfig | str) -> UtilityConfig:
    if isinstance(config, UtilityConfig):
        return config
    if isinstance(config, str):
        return UtilityConfig(mode=config)
    raise ConfigError.must("mode", f"a UtilityConfig or one of {', '.join(MODES)}", config)


def utility(
    config: UtilityConfig | str, channels: Channels, presence: jax.Array | bool, internal: jax.Array | float
) -> jax.Array:
    """The learner's utility U (float32, broadcast shape of the inputs) for one or many steps.

    Args:
      config: a ``UtilityConfig`` or a mode name (then with the default threshold and step cost).
      channels: the step's reward channels (``extrinsic``, ``social``, ``event``).
      presence: P, caregiver present (bool or 0/1; a probability in [0, 1] for the additive modes).
      internal: R_i, the ISR's reward for the step (0 without an ISR).

    Raises:
      ConfigError: (a ValueError) on an unknown mode, naming the allowed ones (before any compute).
    """
    config = _as_config(config)
    r_e = jnp.asarray(channels.extrinsic, jnp.float32)
    r_s = jnp.asarray(channels.social, jnp.float32)
    r_i = jnp.asarray(internal, jnp.float32)
    event = jnp.asarray(channels.event, jnp.float32)
    goal_cost = jnp.float32(config.step_cost) * event  # what the reference charges on the goal step
    p = jnp.asarray(presence)

    if config.mode in ("additive", "additive-reference"):
        p = p.astype(jnp.float32)
        absent_term = r_i if config.mode == "additive" else r_i - goal_cost
        return r_e + p * r_s + (1.0 - p) * absent_term

    present = p.astype(bool) if p.dtype == jnp.bool_ else p > 0.5
    if config.mode == "threshold-replace":
        absent = jnp.where(r_i > config.threshold, r_i, r_e - goal_cost)
    else:  # replace
        absent = jnp.broadcast_to(r_i, jnp.broadcast_shapes(r_i.shape, r_e.shape))
    return jnp.where(present, r_e + r_s, absent)
