"""When the caregiver is there: presence schedules P(step) and their per-episode draws.

An MDP with social rewards adds a caregiver to an MDP: a presence signal P in {0, 1} and a social reward R_s
that the learner receives only while P = 1 (docs/design.md, 'The idea'). Worlds report R_s on every step as a
reward *channel* (``Channels.social``), present or not; ``social.caregiver`` says what the caregiver pays, and
this module when it is there. Everything here is frozen, validated data plus pure jit-able functions.

Presence schedules
------------------
``step`` is the learner's environment-step counter within the phase (0, 1, 2, ...). ``presence_probability``
gives P(present | step):

* ``always``: 1.
* ``never``: 0.
* ``until``: 1 for ``step < switch_step``, else 0 (the paper: the caregiver leaves after socialization).
* ``linear``: ``p0`` for ``step <= start``, ``p1`` for ``step >= end``, and in between
  ``p0 + (p1 - p0) * (step - start) / (end - start)``.
* ``exponential``: ``p0`` for ``step <= start``, then ``p0 * 0.5 ** ((step - start) / half_life)``: the
  probability halves every ``half_life`` steps.
* ``random``: ``rate`` at every step.

Per-episode draws. The deterministic kinds (``always``, ``never``, ``until``) are evaluated at every step, so an
``until`` caregiver leaves exactly at ``switch_step``. The stochastic kinds (``linear``, ``exponential``,
``random``) draw presence once per *episode*, at the episode's first step, from a JAX key, and the caregiver then
stays (or stays away) for the whole episode: "the caregiver was present this episode" is the unit a learner can
attribute social reward to, and presence that flickers within an episode would make R_s look like noise.
``update_presence`` implements exactly this rule for a training loop.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from internalize.config_error import ConfigError

KINDS = ("always", "never", "until", "linear", "exponential", "random")
STOCHASTIC_KINDS = ("linear", "exponential", "random")

# Which optional fields each kind uses; every other optional field must be left unset (None).
_USES = {
    "always": (),
    "never": (),
    "until": ("switch_step",),
    "linear": ("p0", "p1", "start", "end"),
    "exponential": ("p0", "start", "half_life"),
    "random": ("rate",),
}
_DEFAULTS = {"p0": 1.0, "p1": 0.0, "start": 0}
_REQUIRED = {"until": ("switch_step",), "linear": ("end",), "exponential": ("half_life",), "random": ("rate",)}


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Presence:
    """A caregiver presence schedule P(step); see the module docstring for each kind's formula.

    Frozen and hashable, so it can be a static argument of a jitted function. Optional fields left at None get
    the kind's default (``p0`` 1, ``p1`` 0, ``start`` 0); fields a kind does not use must stay None.
    """

    kind: str = field(default="always", metadata={"help": f"one of {', '.join(KINDS)}."})
    switch_step: int | None = field(
        default=None, metadata={"help": "until: the caregiver is present for steps < switch_step (>= 0)."}
    )
    p0: float | None = field(
        default=None, metadata={"help": "linear/exponential: presence probability at (and before) start, in [0, 1]."}
    )
    p1: float | None = field(
        default=None, metadata={"help": "linear: presence probability at (and after) end, in [0, 1]."}
    )
    start: int | None = field(
        default=None, metadata={"help": "linear/exponential: step at which the decay begins (>= 0)."}
    )
    end: int | None = field(default=None, metadata={"help": "linear: step at which the decay ends (> start)."})
    half_life: float | None = field(
        default=None, metadata={"help": "exponential: steps over which the presence probability halves (> 0)."}
    )
    rate: float | None = field(
        default=None, metadata={"help": "random: probability that the caregiver is present in an episode, [0, 1]."}
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError.must("kind", f"one of {', '.join(KINDS)}", self.kind)
        uses = _USES[self.kind]
        for f in dataclasses.fields(self):
            if f.name == "kind":
                continue
            value = getattr(self, f.name)
            if f.name not in uses:
                if value is not None:
                    raise ConfigError(
                        f.name, f"not used by presence kind {self.kind!r} (it uses: {', '.join(uses) or 'nothing'}), "
                        f"got {value!r}; leave it unset.", value=value, allowed="unset")
                continue
            if value is None:
                if f.name in _REQUIRED.get(self.kind, ()):
                    raise ConfigError(f.name, f"required for presence kind {self.kind!r}, got None.")
                object.__setattr__(self, f.name, _DEFAULTS[f.name])
        for name in ("switch_step", "start", "end"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 0):
                raise ConfigError.must(name, "a non-negative integer step", value)
        for name in ("p0", "p1", "rate"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0.0 <= value <= 1.0):
                raise ConfigError.must(name, "a probability in [0, 1]", value)
        if self.half_life is not None and (not _is_number(self.half_life) or self.half_life <= 0):
            raise ConfigError.must("half_life", "a positive finite number of steps", self.half_life)
        if self.kind == "linear" and self.end <= self.start:
            raise ConfigError.must("end", f"greater than start ({self.start}) for a linear schedule", self.end)

    @property
    def per_episode(self) -> bool:
        """True for the stochastic kinds, whose presence is drawn once per episode and then held."""
        return self.kind in STOCHASTIC_KINDS

    def validate_for_budget(self, total_steps: int) -> None:
        """Check the schedule against a phase of ``total_steps`` environment steps; raise ConfigError if it cannot
        play out as written (a switch or decay that would happen after the phase has ended)."""
        if not _is_int(total_steps) or total_steps < 1:
            raise ConfigError.must("total_steps", "a positive integer", total_steps)
        if self.kind == "until" and self.switch_step > total_steps:
            raise ConfigError(
                "switch_step", f"{self.switch_step} is beyond the phase budget of {total_steps} steps; the caregiver"
                f" would never leave. Use a switch_step in 0..{total_steps} (or kind='always').",
                value=self.switch_step, allowed=f"0..{total_steps}")
        if self.kind == "linear" and self.end > total_steps:
            raise ConfigError(
                "end", f"the linear decay ends at step {self.end}, beyond the phase budget of {total_steps} steps;"
                f" use end <= {total_steps}.", value=self.end, allowed=f"<= {total_steps}")
        if self.kind in ("linear", "exponential") and self.start >= total_steps:
            raise ConfigError(
                "start", f"the decay starts at step {self.start}, not within the phase budget of {total_steps} steps;"
                f" use start < {total_steps}.", value=self.start, allowed=f"< {total_steps}")


def presence_probability(schedule: Presence, step: jax.Array | int) -> jax.Array:
    """P(caregiver present | step) as float32 with the shape of ``step`` (jit/vmap-able; ``schedule`` static)."""
    step = jnp.asarray(step)
    s = step.astype(jnp.float32)
    kind = schedule.kind
    if kind == "always":
        return jnp.ones_like(s)
    if kind == "never":
        return jnp.zeros_like(s)
    if kind == "until":
        return (step < schedule.switch_step).astype(jnp.float32)  # integer compare: exact at any step count
    if kind == "linear":
        frac = jnp.clip((s - schedule.start) / (schedule.end - schedule.start), 0.0, 1.0)
        return (schedule.p0 + (schedule.p1 - schedule.p0) * frac).astype(jnp.float32)
    if kind == "exponential":
        elapsed = jnp.maximum(s - schedule.start, 0.0)
        return (schedule.p0 * jnp.exp2(-elapsed / schedule.half_life)).astype(jnp.float32)
    return jnp.full_like(s, schedule.rate)  # random


def draw_presence(
    schedule: Presence, key: jax.Array, step: jax.Array | int, shape: tuple[int, ...] | None = None
) -> jax.Array:
    """Independent Bernoulli draws of presence with probability ``presence_probability(schedule, step)``.

    Returns bool of ``shape`` (default: the shape of ``step``; ``step`` must broadcast to it), one independent
    draw per element, e.g. per environment. Deterministic kinds give 0/1 probabilities, so their draw does not
    depend on the key. Call it at an episode's first step for the stochastic kinds (``update_presence`` does).
    """
    p = presence_probability(schedule, step)
    shape = p.shape if shape is None else tuple(shape)
    return jax.random.uniform(key, shape) < jnp.broadcast_to(p, shape)


def update_presence(
    schedule: Presence, key: jax.Array, step: jax.Array | int, episode_start: jax.Array, current: jax.Array
) -> jax.Array:
    """Presence for this step, bool of the broadcast shape of ``step``, ``episode_start`` and ``current``.

    A fresh draw where an episode starts (``episode_start`` True) or, for the deterministic kinds, at every
    step; otherwise the episode's ``current`` presence is kept. Every element (e.g. every environment of a
    batch sharing one global ``step``) gets its own independent draw.
    """
    shape = jnp.broadcast_shapes(jnp.shape(step), jnp.shape(episode_start), jnp.shape(current))
    fresh = draw_presence(schedule, key, step, shape)
    if not schedule.per_episode:
        return fresh
    return jnp.where(episode_start, fresh, current)
