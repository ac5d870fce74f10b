"""ISR data: the socialization buffer, its train / held-out split and the balanced sampler.

docs/paper-vs-reference.md, 'ISR data', compares it with the authors' published code.

The ISR learns from *every* transition seen while the caregiver is present (not only the rewarded ones): the
pre-action observation, the action taken and the social reward R_s the caregiver paid (0 or 0.4 in navigation;
the reference clips its mixed env reward at 0, which with separate channels is simply R_s). The buffer is a
fixed-capacity on-device array filled in pure JAX, so a jitted training loop can store a whole socialization
phase (120,832 transitions per seed in the paper: about 39 MB of (9, 9, 4) uint8 observations).

Everything is vmappable over seeds: give the buffer's arrays a leading seed axis and ``jax.vmap`` the functions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

if TYPE_CHECKING:  # only for annotations: isr.py imports this module
    from internalize.agents.isr_config import IsrConfig


@struct.dataclass
class IsrBuffer:
    """Socialization transitions in arrival order; slots ``count`` and beyond are empty (zeros).

    Attributes:
      obs: (capacity, *obs_shape) uint8, the observation the action was chosen in (pre-action).
      action: (capacity,) int32.
      social: (capacity,) float32, the social reward R_s the caregiver paid on the transition (the regression
        target: the learner only knows what it was paid).
      true_social: (capacity,) float32, the caregivers' noise-free R_s for the transition (the world's hidden
        true reward; equal to ``social`` for an exact caregiver). Never trained on: it scores how well the ISR,
        and the payments themselves, track the true reward (``isr_metrics``).
      count: () int32, number of stored transitions (<= capacity).
      offered: () int32, number of transitions ever offered for storage (``mask`` True); ``offered > count``
        means some were dropped because the buffer was full.
    """

    obs: jax.Array
    action: jax.Array
    social: jax.Array
    true_social: jax.Array
    count: jax.Array
    offered: jax.Array

    @property
    def capacity(self) -> int:
        return self.action.shape[-1]


def isr_buffer_init(capacity: int, obs_shape: Sequence[int] = (9, 9, 4)) -> IsrBuffer:
    """An empty buffer with room for ``capacity`` transitions of ``obs_shape`` uint8 observations."""
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise ValueError(f"capacity: must be a positive integer number of transitions, got {capacity!r}.")
    obs_shape = tuple(obs_shape)
    if not obs_shape or not all(isinstance(d, int) and d > 0 for d in obs_shape):
        raise ValueError(f"obs_shape: must be a non-empty tuple of positive integers, got {obs_shape!r}.")
    return IsrBuffer(
        obs=jnp.zeros((capacity, *obs_shape), jnp.uint8),
        action=jnp.zeros((capacity,), jnp.int32),
        social=jnp.zeros((capacity,), jnp.float32),
        true_social=jnp.zeros((capacity,), jnp.float32),
        count=jnp.zeros((), jnp.int32),
        offered=jnp.zeros((), jnp.int32),
    )


@jax.jit
def isr_buffer_add(
    buffer: IsrBuffer,
    obs: jax.Array,
    action: jax.Array,
    social: jax.Array,
    mask: jax.Array | None = None,
    true_social: jax.Array | None = None,
) -> IsrBuffer:
    """Append a batch of transitions (pure, jit-able; vmap it for a leading seed axis).

    Args:
      buffer: the buffer to append to.
      obs: (*batch, *obs_shape) uint8 pre-action observations; any leading batch axes, e.g. (T,) or (T, n_envs),
        are flattened in row-major (time-major) order.
      action: (*batch,) int actions.
      social: (*batch,) float social rewards R_s.
      mask: optional (*batch,) bool; only transitions with mask True are stored (e.g. the steps on which the
        caregiver was present), packed contiguously in order.
      true_social: optional (*batch,) float noise-free R_s (default: ``social``, an exact caregiver).

    Transitions that do not fit are dropped (``count`` stops at capacity; ``offered`` keeps counting).
    """
    obs_shape = buffer.obs.shape[1:]
    if obs.shape[obs.ndim - len(obs_shape):] != obs_shape:
        raise ValueError(f"obs: trailing shape must be {obs_shape}, got {obs.shape}.")
    batch_shape = obs.shape[: obs.ndim - len(obs_shape)]
    for name, value in (("action", action), ("social", social), ("mask", mask), ("true_social", true_social)):
        if value is not None and jnp.shape(value) != batch_shape:
            raise ValueError(
                f"{name}: shape must be the observations' batch shape {batch_shape}, got {jnp.shape(value)}."
            )
    obs = jnp.reshape(obs, (-1, *obs_shape)).astype(jnp.uint8)
    action = jnp.reshape(action, (-1,)).astype(jnp.int32)
    social = jnp.reshape(social, (-1,)).astype(jnp.float32)
    true_social = social if true_social is None else jnp.reshape(true_social, (-1,)).astype(jnp.float32)
    keep = jnp.ones(action.shape, bool) if mask is None else jnp.reshape(mask, (-1,)).astype(bool)
    # Kept transitions go to consecutive slots from ``count``; the others get an out-of-range slot, which the
    # scatter drops (as it drops the kept ones that overflow the capacity).
    slot = jnp.where(keep, buffer.count + jnp.cumsum(keep) - 1, buffer.capacity)
    n_keep = jnp.sum(keep, dtype=jnp.int32)
    return IsrBuffer(
        obs=buffer.obs.at[slot].set(obs, mode="drop"),
        action=buffer.action.at[slot].set(action, mode="drop"),
        social=buffer.social.at[slot].set(social, mode="drop"),
        true_social=buffer.true_social.at[slot].set(true_social, mode="drop"),
        count=jnp.minimum(buffer.count + n_keep, buffer.capacity),
        offered=buffer.offered + n_keep,
    )


def isr_buffer_extend(buffer: IsrBuffer, capacity: int) -> IsrBuffer:
    """The same transitions in a buffer with room for ``capacity`` (at least its own; unbatched: vmap it over a
    leading seed axis). A learner that keeps internalizing after socialization adds to what it stored then."""
    extra = capacity - buffer.capacity
    if extra < 0:
        raise ValueError(f"capacity: {capacity} is less than the buffer's {buffer.capacity}.")

    def pad(x: jax.Array) -> jax.Array:
        return jnp.concatenate([x, jnp.zeros((extra, *x.shape[1:]), x.dtype)])

    return buffer.replace(obs=pad(buffer.obs), action=pad(buffer.action), social=pad(buffer.social),
                          true_social=pad(buffer.true_social))


class IsrSplit(NamedTuple):
    """Which buffer slots the ISR trains on and which it is evaluated on; both (capacity,) bool, disjoint."""

    train: jax.Array
    holdout: jax.Array


def _n_train_chronological(n: jax.Array, holdout_fraction: float) -> jax.Array:
    """floor(n * (1 - holdout_fraction)) in exact int32 arithmetic (the reference's ``int(0.9 * n)``).

    ``1 - holdout_fraction`` is taken as a fraction num / den (den <= 10,000; exact for fractions like 0.1), and
    ``n = q * den + r`` keeps every product within int32, where float32 would round large n.
    """
    frac = Fraction(1.0 - holdout_fraction).limit_denominator(10_000)
    q, r = jnp.divmod(n.astype(jnp.int32), frac.denominator)
    return q * frac.numerator + (r * frac.numerator) // frac.denominator


@functools.partial(jax.jit, static_argnames=("holdout_fraction", "mode", "n_data", "seed"))
def isr_split(
    buffer: IsrBuffer,
    holdout_fraction: float = 0.1,
    mode: str = "chronological",
    n_data: int | None = None,
    seed: int = 0,
) -> IsrSplit:
    """Split the first ``n_used = min(count, n_data)`` transitions into train and held-out (jit-able).

    * ``chronological`` (the reference): the first ``floor(n_used * (1 - holdout_fraction))`` transitions train,
      the rest are held out. As the buffer grows the boundary only moves forward, so a held-out transition has
      never been trained on.
    * ``random``: transition ``i`` is held out iff ``uniform(fold_in(key(seed), i)) < holdout_fraction``; the
      assignment is a fixed function of the slot, the same for every call and every buffer size.

    Slots beyond ``n_used`` belong to neither part.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction: must be in the open interval (0, 1), got {holdout_fraction!r}.")
    index = jnp.arange(buffer.capacity)
    n_used = buffer.count if n_data is None else jnp.minimum(buffer.count, n_data)
    used = index < n_used
    if mode == "chronological":
        held = used & (index >= _n_train_chronological(n_used, holdout_fraction))
    elif mode == "random":
        base = jax.random.key(seed)
        u = jax.vmap(lambda i: jax.random.uniform(jax.random.fold_in(base, i)))(index)
        held = used & (u < holdout_fraction)
    else:
        raise ValueError(f"split: must be 'chronological' or 'random', got {mode!r}.")
    return IsrSplit(train=used & ~held, holdout=held)


class BalancedSampler(NamedTuple):
    """The slots of one part of the buffer, rewarded ones first, for sampling with replacement.

    Attributes:
      order: (capacity,) int32; ``order[:n_pos]`` are the part's slots with R_s > 0, ``order[n_pos:n_pos + n_neg]``
        its slots with R_s <= 0 (each in arrival order), then the slots outside the part.
      n_pos, n_neg: () int32 counts.
    """

    order: jax.Array
    n_pos: jax.Array
    n_neg: jax.Array


def rewarded(social: jax.Array) -> jax.Array:
    """Which transitions count as rewarded, for balanced sampling and the per-class metrics: those on which the
    caregiver paid anything (``social != 0``). The learner knows only what it was paid, so a missed reward counts as
    unrewarded, a false payment as rewarded, and a payment that noise pushed below zero as rewarded still (noise
    is added only to payments: ``social.caregiver``). With an exact caregiver (the paper) this is R_s > 0."""
    return social != 0


@jax.jit
def balanced_sampler(buffer: IsrBuffer, part: jax.Array) -> BalancedSampler:
    """A sampler over the slots where ``part`` ((capacity,) bool, e.g. ``IsrSplit.train``) is True."""
    rewarded_ = rewarded(buffer.social)
    # One stable sort by class (0 rewarded, 1 unrewarded, 2 outside the part); it compiles far faster than
    # ``jnp.nonzero(size=...)`` and runs in milliseconds on a full socialization buffer.
    rank = jnp.where(part, jnp.where(rewarded_, 0, 1), 2)
    return BalancedSampler(
        order=jnp.argsort(rank, stable=True).astype(jnp.int32),
        n_pos=jnp.sum(part & rewarded_, dtype=jnp.int32),
        n_neg=jnp.sum(part & ~rewarded_, dtype=jnp.int32),
    )


def _pick(key: jax.Array, n: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform integers in [0, n) (0 if ``n`` is 0; callers mask that case)."""
    j = jnp.floor(jax.random.uniform(key, shape) * n).astype(jnp.int32)
    return jnp.clip(j, 0, jnp.maximum(n - 1, 0))


@functools.partial(jax.jit, static_argnames=("batch_size",))
def sample_balanced(sampler: BalancedSampler, key: jax.Array, batch_size: int) -> jax.Array:
    """(batch_size,) int32 slots drawn with replacement, half the mass on rewarded transitions.

    Each draw picks the rewarded class with probability 1/2, then a transition of that class uniformly: the
    same distribution as PyTorch's ``WeightedRandomSampler`` with weights 1/(2 #pos) and 1/(2 #nonpos) that the
    reference uses. If one class is empty every draw comes from the other (no 0/0); if both are empty the slots
    are meaningless and the caller must skip the update (``sampler.n_pos + sampler.n_neg == 0``).
    """
    k_class, k_pos, k_neg = jax.random.split(key, 3)
    coin = jax.random.bernoulli(k_class, 0.5, (batch_size,))
    use_pos = jnp.where(sampler.n_pos == 0, False, jnp.where(sampler.n_neg == 0, True, coin))
    j = jnp.where(use_pos, _pick(k_pos, sampler.n_pos, (batch_size,)),
                  sampler.n_pos + _pick(k_neg, sampler.n_neg, (batch_size,)))
    return sampler.order[j]


def sample_uniform(sampler: BalancedSampler, key: jax.Array, batch_size: int) -> jax.Array:
    """(batch_size,) int32 slots drawn uniformly with replacement from the sampler's part (unbalanced)."""
    return sampler.order[_pick(key, sampler.n_pos + sampler.n_neg, (batch_size,))]


def first_transitions(buffer: IsrBuffer, n: int | jax.Array) -> IsrBuffer:
    """The buffer as if only its first ``n`` transitions had been stored (``count`` becomes min(count, n)).

    ``isr_split`` of this buffer with ``n_data=None`` is ``isr_split(buffer, n_data=n)``: the same slots train
    and are held out. Here ``n`` is data rather than a static config field, so ISRs on different amounts of the
    same buffer (Figure 3b) run one compiled program.
    """
    return buffer.replace(count=jnp.minimum(buffer.count, jnp.asarray(n, buffer.count.dtype)))


def config_split(config: IsrConfig, buffer: IsrBuffer) -> IsrSplit:
    """``isr_split`` with the fraction, mode, ``n_data`` and seed of an ``IsrConfig``."""
    return isr_split(buffer, config.holdout_fraction, config.split, config.n_data, config.split_seed)


def isr_data_counts(config: IsrConfig, buffer: IsrBuffer) -> dict[str, jax.Array]:
    """Stored, training and rewarded-training transition counts (jit/vmap-able): keys ``count``, ``n_train``,
    ``n_train_pos``, ``n_holdout``, ``n_holdout_pos``."""
    split = config_split(config, buffer)
    pos = rewarded(buffer.social)
    return {
        "count": buffer.count,
        "n_train": jnp.sum(split.train, dtype=jnp.int32),
        "n_train_pos": jnp.sum(split.train & pos, dtype=jnp.int32),
        "n_holdout": jnp.sum(split.holdout, dtype=jnp.int32),
        "n_holdout_pos": jnp.sum(split.holdout & pos, dtype=jnp.int32),
    }


@functools.lru_cache(maxsize=64)
def _batched_counts(config: IsrConfig, n_lead: int):
    """``isr_data_counts`` vmapped over ``n_lead`` leading (seed) axes, jitted once per (config, n_lead)."""
    fn = functools.partial(isr_data_counts, config)
    for _ in range(n_lead):
        fn = jax.vmap(fn)
    return jax.jit(fn)


def check_isr_data(config: IsrConfig, buffer: IsrBuffer) -> dict[str, np.ndarray]:
    """Host-side check, before any training compute, that there is something to internalize.

    ``buffer`` may carry leading (e.g. seed) axes; every buffer is checked. Raises ValueError starting with
    "ISR has no socialization data" for an empty buffer, an empty training split or a training split without a
    single rewarded transition. Returns the ``isr_data_counts`` (as NumPy arrays with the leading axes).
    """
    counts = jax.device_get(_batched_counts(config, jnp.ndim(buffer.count))(buffer))

    def where(i: tuple[int, ...]) -> str:
        return f" (buffer {tuple(int(v) for v in i)})" if i else ""

    for i in np.ndindex(np.shape(counts["count"])):
        count, n_train, n_pos = (int(np.asarray(counts[k])[i]) for k in ("count", "n_train", "n_train_pos"))
        if count == 0:
            raise ValueError(
                f"ISR has no socialization data: the buffer is empty{where(i)}; store the caregiver-present"
                " transitions with isr_buffer_add before training the ISR."
            )
        if n_train == 0:
            raise ValueError(
                f"ISR has no socialization data: none of the {count} stored transitions is in the training split"
                f"{where(i)} (n_data={config.n_data}, holdout_fraction={config.holdout_fraction})."
            )
        if n_pos == 0:
            raise ValueError(
                f"ISR has no socialization data: no rewarded transition (R_s > 0) among the {n_train} training"
                f" transitions{where(i)}; the caregiver never paid social reward, so there is nothing to internalize."
            )
    return {k: np.asarray(v) for k, v in counts.items()}
