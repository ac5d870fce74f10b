"""The internalized social reward model (ISR): (observation, action) -> predicted social reward R_i.

While the caregiver is present the learner stores every transition (``isr_data``) and the ISR learns to predict
the caregiver's social reward R_s by regression; when the caregiver leaves, R_i = ISR(s, a) stands in for R_s in
the learner's utility (``internalize.social.utility``). docs/paper-vs-reference.md (from 'ISR data' to 'ISR
held-out split') compares it with the authors' published code.

Input encoding (``encode_isr_input``), (..., 9, 9, 4) uint8 observation + (...) int action -> (..., 9, 9, 4 + k):

* the observation part is multiplied by ``obs_scale``: the runner sets it to the policy's own input scale (1/255
  in navigation, as SB3 normalizes images; 1/10 in the peer world; one factor per channel for the quick Figure
  7 learner), so the ISR and the policy see the same numbers; ``obs_scale=1.0`` keeps the raw cell codes as the
  reference does;
* ``encoding="channel"`` (the reference, k = 1): one channel holding the action index (0, 1, 2, unscaled) at
  the learner's own cell (object code agent, colour red: the centre cell (4, 4) of an egocentric crop), zeros
  elsewhere. Action 0 (turn left) is therefore indistinguishable from "no action channel"; the network must
  read it from absence;
* ``encoding="onehot"`` (k = num_actions): a one-hot of the action at the learner's cell, zeros elsewhere, so
  every action, 0 included, leaves a mark. The action stays spatial, so every network kind can use it.
  A second agent in view (the prosocial world's green helped agent) gets no mark in either encoding.
* the learner's cell is the red agent's by default; in a world whose observation marks the learner's own cell
  in a channel (the two-agent world, where the peer may look exactly like the learner), ``self_channel`` names
  that channel and the mark goes there. :func:`isr_reward` also takes an explicit ``mark`` (the empathy probe
  puts the action on the *peer's* cell to ask what the ISR makes of the peer's move).

Convolutions run over the two spatial axes, as for the policy; the reference's quirk of convolving over
(lateral, feature) with the crop's rows as input channels (docs/paper-vs-reference.md, 'ISR network') is not
reproduced.

Networks (``network``), all with a linear output and no output activation:

* ``policy`` (default; the paper's "same architecture as the policy network"): ``CnnTorso`` (2x2 convs 16/32/64,
  Linear 128, ReLU) then a [64, 64] tanh MLP -> 1 (orthogonal init, gain sqrt 2, output gain 1).
* ``reference`` (the published code's): 2x2 convs 16, 32 with ReLU -> flatten -> Linear 32 ReLU -> Linear 32
  ReLU -> Linear 1. Linears orthogonal with gain sqrt 2 (the output too), zero bias; convs with PyTorch's
  default init (uniform +-1/sqrt(fan_in) weights and biases), computed as patches @ weight.T (``Conv2x2``).
* ``mlp`` (a cheap option for quick CPU runs): flatten -> [64, 64] tanh -> 1.

``width`` scales every hidden layer of the ``reference`` and ``mlp`` networks (rounded, at least 1): the ISR's
capacity, for probing how what it learns depends on it. The ``policy`` network is the policy's and keeps its size.

Training (``train_isr``, ``isr_update``): MSE on batches balanced 50/50 between rewarded and unrewarded training
transitions (with replacement), Adam (lr 3e-4, eps 1e-5) after a global-norm clip at 1.0, as the reference;
``sampling = "uniform"`` draws batches as the transitions came instead, so the ISR regresses on the expected payment
(balanced batches weigh a sometimes-paid transition's payments up by the ratio of unrewarded to rewarded ones).
Held-out transitions are only ever evaluated, never stepped on. An ensemble (``ensemble = K > 1``) is K such networks
with stacked parameters, each on its own bootstrap, trained as one vmapped program: ``agents.isr_ensemble``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from internalize.agents.isr_config import ENCODINGS, NETWORKS, SPLITS, IsrConfig  # noqa: F401 - re-exported
from internalize.agents.isr_data import (
    IsrBuffer,
    balanced_sampler,
    check_isr_data,
    config_split,
    sample_balanced,
    sample_uniform,
)
from internalize.agents.isr_ensemble import bootstrap_sampler, member_config, member_keys, reduce_members
from internalize.agents.networks import SQRT2, CnnTorso, Conv2x2, MlpHead, dense
from internalize.worlds import grid


def learner_cell(config: IsrConfig, obs: jax.Array) -> jax.Array:
    """(..., H, W) bool: the learner's own cell(s), where the action is marked."""
    if config.self_channel is not None:
        return obs[..., config.self_channel] == 1
    # The learner is the red agent (a second, helped agent in the prosocial world is green and gets no mark).
    return (obs[..., 0] == grid.AGENT) & (obs[..., 1] == grid.RED)


def encode_isr_input(config: IsrConfig, obs: jax.Array, action: jax.Array, mark: jax.Array | None = None) -> jax.Array:
    """(..., H, W, C) uint8 observations and (...) int actions -> (..., H, W, C + k) float32 network input.

    ``mark`` (..., H, W) bool: the cells the action is marked at; default :func:`learner_cell`.
    """
    x = obs.astype(jnp.float32) * jnp.asarray(config.obs_scale, jnp.float32)  # one factor, or one per channel
    at_agent = (learner_cell(config, obs) if mark is None else jnp.asarray(mark, bool))[..., None]  # (..., H, W, 1)
    action = jnp.asarray(action, jnp.int32)[..., None, None, None]
    if config.encoding == "channel":
        extra = jnp.where(at_agent, action.astype(jnp.float32), 0.0)
    else:
        onehot = jax.nn.one_hot(action[..., 0], config.num_actions, dtype=jnp.float32)  # (..., 1, 1, A)
        extra = jnp.where(at_agent, onehot, 0.0)
    return jnp.concatenate([x, extra], axis=-1)


def _torch_default_bias(fan_in: int):
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class IsrNetwork(nn.Module):
    """Encoded input (..., H, W, C) float32 -> predicted social reward (...) float32; see the module docstring."""

    network: str = "policy"
    width: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1,) + x.shape[-3:])

        def w(n: int) -> int:  # a hidden width scaled by ``width``
            return max(1, round(n * self.width))

        if self.network == "policy":
            out = MlpHead((64, 64), 1, 1.0)(CnnTorso()(x))
        elif self.network == "mlp":
            out = MlpHead((w(64), w(64)), 1, 1.0)(x.reshape((x.shape[0], -1)))
        else:  # reference
            for c in (w(16), w(32)):
                # PyTorch's default conv init (uniform +-1/sqrt(fan_in) weights and biases, fan_in = 4 * C).
                fan_in = 4 * x.shape[-1]
                x = nn.relu(Conv2x2(c, nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform"),
                                    _torch_default_bias(fan_in))(x))
            x = x.reshape((x.shape[0], -1))
            x = nn.relu(dense(w(32))(x))
            x = nn.relu(dense(w(32))(x))
            out = dense(1, SQRT2)(x)
        return out[:, 0].reshape(batch_shape)


def _one_member(config: IsrConfig, params: Any, obs: jax.Array, action: jax.Array,
                mark: jax.Array | None) -> jax.Array:
    return IsrNetwork(config.network, config.width).apply(params, encode_isr_input(config, obs, action, mark))


def isr_members(config: IsrConfig, params: Any, obs: jax.Array, action: jax.Array,
                mark: jax.Array | None = None) -> jax.Array:
    """Every member's prediction, (K, ...) float32 (K = ``config.ensemble``; (1, ...) for a single ISR)."""
    if config.ensemble == 1:
        return _one_member(config, params, obs, action, mark)[None]
    return jax.vmap(lambda p: _one_member(config, p, obs, action, mark))(params)


def isr_reward(config: IsrConfig, params: Any, obs: jax.Array, action: jax.Array,
               mark: jax.Array | None = None) -> jax.Array:
    """R_i = ISR(obs, action): (...) float32, the raw regression output (no clipping, as the reference); for an
    ensemble, the members' outputs reduced by ``config.ensemble_reduce`` (``agents.isr_ensemble``).

    ``obs`` (..., H, W, C) uint8 is the observation the action was chosen in (pre-action); ``mark`` (..., H, W)
    bool overrides where the action is marked (default: the learner's cell).
    """
    if config.ensemble == 1:
        return _one_member(config, params, obs, action, mark)
    return reduce_members(config, isr_members(config, params, obs, action, mark))


@struct.dataclass
class IsrState:
    """A trainable ISR: network parameters, optimizer state and the number of updates done (``config`` static)."""

    params: Any
    opt_state: Any
    updates: jax.Array
    config: IsrConfig = struct.field(pytree_node=False)


def isr_optimizer(config: IsrConfig) -> optax.GradientTransformation:
    """Global-norm gradient clipping, then Adam (the reference's ``clip_grad_norm_`` + ``Adam``)."""
    return optax.chain(
        optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate, eps=config.adam_eps)
    )


def _member_params(config: IsrConfig, key: jax.Array, obs_shape: Sequence[int]) -> Any:
    obs = jnp.zeros(tuple(obs_shape), jnp.uint8)
    return IsrNetwork(config.network, config.width).init(key, encode_isr_input(config, obs, jnp.zeros((), jnp.int32)))


def isr_init_params(config: IsrConfig, key: jax.Array, obs_shape: Sequence[int] = (9, 9, 4)) -> Any:
    """Fresh network parameters for observations of ``obs_shape``; an ensemble's are stacked, (K, ...) leaves,
    member m initialized from ``fold_in(key, m)``."""
    if config.ensemble == 1:
        return _member_params(config, key, obs_shape)
    return jax.vmap(lambda k: _member_params(config, k, obs_shape))(member_keys(key, config.ensemble))


def _init_state(config: IsrConfig, key: jax.Array, obs_shape: tuple[int, ...]) -> IsrState:
    params = isr_init_params(config, key, obs_shape)
    init = isr_optimizer(config).init
    opt_state = init(params) if config.ensemble == 1 else jax.vmap(init)(params)
    return IsrState(params, opt_state, jnp.zeros((), jnp.int32), config)


# Jitted because flax's initialisers run op by op (and compile each op) outside jit, which takes seconds.
_init_state_jit = jax.jit(_init_state, static_argnums=(0, 2))


def isr_init(config: IsrConfig, key: jax.Array, obs_shape: Sequence[int] = (9, 9, 4)) -> IsrState:
    """A fresh ISR state (vmap it over keys for a leading seed axis)."""
    return _init_state_jit(config, key, tuple(obs_shape))


def _batch_mse(config: IsrConfig, params: Any, buffer: IsrBuffer, slots: jax.Array) -> jax.Array:
    pred = isr_reward(config, params, buffer.obs[slots], buffer.action[slots])
    return jnp.mean(jnp.square(pred - buffer.social[slots]))


class _Loop(NamedTuple):
    params: Any
    opt_state: Any
    loss_sum: jax.Array
    n_done: jax.Array


def _run_updates(config: IsrConfig, loop: _Loop, buffer: IsrBuffer, sampler, key: jax.Array,
                 first: jax.Array, n_steps: int, n_active: jax.Array) -> _Loop:
    """``n_steps`` (static) updates numbered ``first``, ``first + 1``, ...; those numbered ``>= n_active`` are
    skipped, which lets a static-length scan run a data-dependent number of updates."""
    tx = isr_optimizer(config)
    grad_fn = jax.value_and_grad(lambda p, slots: _batch_mse(config, p, buffer, slots))

    def one(loop: _Loop, i: jax.Array) -> tuple[_Loop, None]:
        number = first + i
        active = number < n_active
        draw = sample_balanced if config.sampling == "balanced" else sample_uniform
        slots = draw(sampler, jax.random.fold_in(key, number), config.batch_size)
        loss, grads = grad_fn(loop.params, slots)
        updates, opt_state = tx.update(grads, loop.opt_state, loop.params)
        # A select, not lax.cond: XLA:CPU runs a cond inside a scan body many times slower (it copies the
        # operands, the whole buffer included), so a skipped update is computed and discarded.
        def keep(new: jax.Array, old: jax.Array) -> jax.Array:
            return jnp.where(active, new, old)

        return _Loop(
            jax.tree.map(keep, optax.apply_updates(loop.params, updates), loop.params),
            jax.tree.map(keep, opt_state, loop.opt_state),
            loop.loss_sum + jnp.where(active, loss, 0.0),
            loop.n_done + active.astype(jnp.int32),
        ), None

    loop, _ = jax.lax.scan(one, loop, jnp.arange(n_steps, dtype=jnp.int32))
    return loop


class IsrCurve(NamedTuple):
    """Training curve, one entry per ``log_every`` updates (Fig 3a), each (n_logs,).

    Attributes:
      update: updates done at this point.
      train_loss: mean MSE of the (balanced) training batches since the previous point; NaN if none ran.
      holdout_loss: MSE on ``eval_size`` held-out transitions drawn balanced like the training batches (the
        comparable held-out curve); evaluated only, no optimizer step. NaN without held-out data.
      holdout_mse: MSE on ``eval_size`` held-out transitions drawn uniformly (unbalanced).
    """

    update: jax.Array
    train_loss: jax.Array
    holdout_loss: jax.Array
    holdout_mse: jax.Array


def _train_parts(config: IsrConfig, buffer: IsrBuffer):
    split = config_split(config, buffer)
    return split, balanced_sampler(buffer, split.train)


def _epoch_updates(config: IsrConfig, n_train: jax.Array) -> jax.Array:
    """``config.epoch_updates`` on a traced count (a float ceil only when the fraction is not 1)."""
    epoch = (n_train + config.batch_size - 1) // config.batch_size
    if config.updates_fraction == 1.0:
        return epoch
    return jnp.maximum(1, jnp.ceil(config.updates_fraction * epoch).astype(epoch.dtype))


def _train_core(config: IsrConfig, length: int, buffer: IsrBuffer, key: jax.Array, params: Any,
                bootstrap: bool = False):
    """One member's training (``bootstrap``: on a stratified bootstrap of the training split drawn from ``key``)."""
    k_init, key = jax.random.split(key)
    if params is None:
        params = _member_params(config, k_init, buffer.obs.shape[1:])
    split, sampler = _train_parts(config, buffer)
    if bootstrap:
        sampler = bootstrap_sampler(sampler, key)
    n_train = sampler.n_pos + sampler.n_neg
    n_active = jnp.where(n_train > 0, config.n_updates or _epoch_updates(config, n_train), 0)
    n_active = jnp.minimum(n_active, length)
    held_sampler = balanced_sampler(buffer, split.holdout)
    n_held = held_sampler.n_pos + held_sampler.n_neg
    k_train, k_eval = jax.random.split(key)
    log_every = min(config.log_every, length)
    n_logs = -(-length // log_every)
    opt_state = isr_optimizer(config).init(params)

    def chunk(carry: tuple[Any, Any], c: jax.Array):
        params, opt_state = carry
        loop = _Loop(params, opt_state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        loop = _run_updates(config, loop, buffer, sampler, k_train, c * log_every, log_every, n_active)
        ke1, ke2 = jax.random.split(jax.random.fold_in(k_eval, c))
        # Held-out evaluation: forward passes only, the optimizer never sees these transitions.
        bal = _batch_mse(config, loop.params, buffer, sample_balanced(held_sampler, ke1, config.eval_size))
        uni = _batch_mse(config, loop.params, buffer, sample_uniform(held_sampler, ke2, config.eval_size))
        nan = jnp.float32(jnp.nan)
        point = (
            jnp.minimum((c + 1) * log_every, n_active),
            jnp.where(loop.n_done > 0, loop.loss_sum / jnp.maximum(loop.n_done, 1), nan),
            jnp.where(n_held > 0, bal, nan),
            jnp.where(n_held > 0, uni, nan),
        )
        return (loop.params, loop.opt_state), point

    (params, opt_state), points = jax.lax.scan(chunk, (params, opt_state), jnp.arange(n_logs, dtype=jnp.int32))
    return params, opt_state, IsrCurve(*points)


def _train_members(config: IsrConfig, length: int, buffer: IsrBuffer, key: jax.Array, params: Any):
    """A single ISR (K = 1: ``_train_core`` as it always was), or K members vmapped over their keys, each on its
    own bootstrap; the ensemble's curve is the mean of its members' curves."""
    if config.ensemble == 1:
        return _train_core(config, length, buffer, key, params)
    keys, one = member_keys(key, config.ensemble), member_config(config)
    fit = jax.vmap(lambda k, p: _train_core(one, length, buffer, k, p, bootstrap=True),
                   in_axes=(0, None if params is None else 0))
    params, opt_state, curve = fit(keys, params)
    return params, opt_state, IsrCurve(curve.update[0], *(jnp.mean(c, axis=0) for c in curve[1:]))


_train_core_jit = jax.jit(_train_members, static_argnums=(0, 1))


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def train_isr(
    config: IsrConfig, buffer: IsrBuffer, key: jax.Array, params: Any = None
) -> tuple[Any, Any, IsrCurve]:
    """Train an ISR on the buffer's training split in one jitted ``lax.scan``; returns (params, opt_state, curve).

    The number of updates is ``config.n_updates``, or by default ``updates_fraction`` of one epoch:
    ceil(updates_fraction * ceil(n_train / batch_size)) (one epoch, as the reference). Called with a concrete
    buffer, the data are checked first (``check_isr_data``) and the scan has exactly that length. Called under
    jit/vmap (traced buffer), the scan has a static upper bound (one epoch of ``min(capacity, n_data)`` transitions)
    and skips the updates beyond the data-dependent epoch; with no training data no update runs (the 0/0 guard), so
    call ``check_isr_data`` on the host beforehand.

    Args:
      config: the ISR configuration (static).
      buffer: socialization transitions (one seed; vmap for several).
      key: JAX key for initialisation (when ``params`` is None), sampling and held-out evaluation.
      params: parameters to continue training from; a fresh network when None. The optimizer starts fresh.
    """
    if config.n_updates is not None:
        length = config.n_updates
    elif _is_traced(buffer.count):
        bound = buffer.capacity if config.n_data is None else min(buffer.capacity, config.n_data)
        length = config.epoch_updates(bound)
    else:
        length = 0
    if not _is_traced(buffer.count):
        counts = check_isr_data(config, buffer)
        if config.n_updates is None:
            length = config.epoch_updates(int(counts["n_train"]))
    return _train_core_jit(config, length, buffer, key, params)


@functools.partial(jax.jit, static_argnames=("n_updates",))
def isr_update(state: IsrState, buffer: IsrBuffer, key: jax.Array, n_updates: int) -> tuple[IsrState, jax.Array]:
    """``n_updates`` (static) more balanced updates on the buffer's current training split (jit/vmap-able).

    For learning while the caregiver is present (e.g. after every rollout under a stochastic schedule). The
    split is recomputed from the buffer at every call: a transition held out now has never been trained on
    (a chronological boundary only moves forward; a random split never changes). Without training data no
    update runs. Returns (state, mean training loss of these updates; NaN if none ran).
    """
    config = state.config
    one = member_config(config)
    _, sampler = _train_parts(config, buffer)
    n_active = jnp.where(sampler.n_pos + sampler.n_neg > 0, n_updates, 0)

    def member(params: Any, opt_state: Any, key: jax.Array, bootstrap: bool) -> _Loop:
        draw = bootstrap_sampler(sampler, key) if bootstrap else sampler
        loop = _Loop(params, opt_state, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
        return _run_updates(one, loop, buffer, draw, key, jnp.int32(0), n_updates, n_active)

    if config.ensemble == 1:
        loop = member(state.params, state.opt_state, key, False)
    else:  # each member on its own bootstrap of the buffer as it is now
        loop = jax.vmap(lambda p, o, k: member(p, o, k, True))(state.params, state.opt_state,
                                                              member_keys(key, config.ensemble))
        loop = loop._replace(loss_sum=jnp.mean(loop.loss_sum), n_done=loop.n_done[0])
    mean = jnp.where(loop.n_done > 0, loop.loss_sum / jnp.maximum(loop.n_done, 1), jnp.nan)
    return IsrState(loop.params, loop.opt_state, state.updates + loop.n_done, config), mean
