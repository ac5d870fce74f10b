"""The instrument's reward models: ISR networks trained on (observation, action, mark) -> payment, with the mark
explicit, so a sample can carry the action at the peer's cell (the controls' peer samples).

The network, input encoding and optimizer are the ISR's (``agents.isr``: ``IsrNetwork``, ``encode_isr_input``
with an explicit ``mark``, global-norm clip then Adam); only the data differ from an experiment's ISR, which
marks the learner's cell only. Training: MSE on batches drawn half from paid and half from unpaid training
samples (the ISR's balanced sampling), a random ``holdout_fraction`` of the samples held out (never stepped on).
A fixed budget of ``n_updates`` is cut into ``n_checkpoints`` equal chunks; the parameters and the held-out fit
after each chunk are returned, which gives the time course of anything measured on the model.

Stopping rule, the same for every width: the full budget; a model is ``converged`` when its held-out MSE changed
by less than :data:`CONVERGED_CHANGE` (relative) over the last quarter of the checkpoints.

Latents (:func:`features`): the penultimate layer h of the ``reference`` network (the ReLU of its second hidden
linear layer, ``round(32 * width)`` units) or of the ``mlp`` one (the tanh of its second hidden layer).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from internalize.agents.isr import IsrNetwork, encode_isr_input, isr_init_params, isr_optimizer
from internalize.agents.isr_config import IsrConfig
from internalize.empathy.data import Samples

CONVERGED_CHANGE = 0.1
EVAL_SIZE = 2048  # held-out samples the fit is measured on (the first ones of a random order)
PEER_SAMPLES = ("none", "paid", "unpaid")


class TrainData(NamedTuple):
    """Samples a reward model regresses on: obs (N, H, W, C) uint8, action (N,) int32, mark (N, H, W) bool,
    reward (N,) float32 (the payment)."""

    obs: jax.Array
    action: jax.Array
    mark: jax.Array
    reward: jax.Array


def training_data(samples: Samples, peer: str, goal_reward: float) -> TrainData:
    """The learner samples, plus the peer samples when ``peer`` is ``"paid"`` (``goal_reward`` when the peer
    reached the goal: the positive control) or ``"unpaid"`` (always 0: the negative control); unbatched."""
    if peer not in PEER_SAMPLES:
        raise ValueError(f"peer: must be one of {', '.join(PEER_SAMPLES)}, got {peer!r}.")
    own = TrainData(samples.obs, samples.action, samples.mark, samples.paid)
    if peer == "none":
        return own
    reward = jnp.where(samples.peer_reached, goal_reward, 0.0) if peer == "paid" else jnp.zeros_like(samples.paid)
    other = TrainData(samples.obs, samples.peer_action, samples.peer_mark, reward.astype(jnp.float32))
    return TrainData(*(jnp.concatenate([a, b]) for a, b in zip(own, other, strict=True)))


class Trained(NamedTuple):
    """A trained model's checkpoints (K = n_checkpoints; a vmapped call adds a leading seed axis).

    Attributes:
      params: the network parameters after each chunk, leaves with a leading (K,) axis.
      heldout_r: (K,) Pearson r between prediction and payment on up to :data:`EVAL_SIZE` held-out samples.
      heldout_mse: (K,) their MSE.
      n_rewarded: () int32, paid training samples.
      converged: () bool, see the module docstring.
    """

    params: Any
    heldout_r: jax.Array
    heldout_mse: jax.Array
    n_rewarded: jax.Array
    converged: jax.Array


def predict(config: IsrConfig, params: Any, obs: jax.Array, action: jax.Array, mark: jax.Array) -> jax.Array:
    """(...) float32 predicted payment; ``obs`` may be float (probe stimuli at fractional codes)."""
    return IsrNetwork(config.network, config.width).apply(params, encode_isr_input(config, obs, action, mark))


def features(config: IsrConfig, params: Any, obs: jax.Array, action: jax.Array, mark: jax.Array) -> jax.Array:
    """(n, F) float32: the penultimate layer for n inputs (``reference`` or ``mlp`` networks)."""
    if config.network not in ("reference", "mlp"):
        raise ValueError(f"network: latents are read from the reference or mlp network, got {config.network!r}.")
    x = encode_isr_input(config, obs, action, mark)
    _, state = IsrNetwork(config.network, config.width).apply(params, x, capture_intermediates=True,
                                                              mutable=["intermediates"])
    inter = state["intermediates"]
    if config.network == "reference":
        return jax.nn.relu(inter["Dense_1"]["__call__"][0])
    return jnp.tanh(inter["MlpHead_0"]["Dense_1"]["__call__"][0])


def _pearson(x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
    n = jnp.maximum(w.sum(), 1.0)
    mx, my = (w * x).sum() / n, (w * y).sum() / n
    cov = (w * (x - mx) * (y - my)).sum()
    return cov / jnp.sqrt((w * (x - mx) ** 2).sum() * (w * (y - my) ** 2).sum() + 1e-12)


#: A reward model's forward pass: (params, obs (..., H, W, C), action (...), mark (..., H, W)) -> (...) float32.
Apply = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]


def train(config: IsrConfig, data: TrainData, key: jax.Array, n_updates: int, n_checkpoints: int,
          apply: Apply | None = None, params: Any = None) -> Trained:
    """Train a model on ``data`` (unbatched; jit with ``config``, ``n_updates``, ``n_checkpoints`` static and vmap
    over seeds); see the module docstring. ``n_updates`` must be a multiple of ``n_checkpoints``.

    By default a fresh ISR network (``config``); ``apply`` and ``params`` give another model and its starting
    parameters (a reward head on a frozen world model: parameters behind a ``stop_gradient`` get zero gradients,
    so Adam leaves them exactly as they are)."""
    if n_updates % n_checkpoints:
        raise ValueError(f"n_updates: {n_updates} is not a multiple of n_checkpoints {n_checkpoints}.")
    k_init, k_split, k_order, k_train = jax.random.split(key, 4)
    n = data.reward.shape[0]
    held = jax.random.uniform(k_split, (n,)) < config.holdout_fraction
    pos = data.reward > 0
    # Training samples, paid ones first, each group in a random order; then the held-out ones.
    group = jnp.where(held, 2, jnp.where(pos, 0, 1))
    order = jnp.lexsort((jax.random.uniform(k_order, (n,)), group))
    n_pos = jnp.sum(~held & pos)
    n_neg = jnp.sum(~held & ~pos)
    n_held = jnp.sum(held)
    evaluate = order[n - n_held + jnp.arange(EVAL_SIZE) % jnp.maximum(n_held, 1)]
    eval_w = (jnp.arange(EVAL_SIZE) < n_held).astype(jnp.float32)
    optimizer = isr_optimizer(config)
    if apply is None:
        apply = functools.partial(predict, config)
        params = isr_init_params(config, k_init, data.obs.shape[1:])

    def loss(p: Any, idx: jax.Array) -> jax.Array:
        return jnp.mean(jnp.square(apply(p, data.obs[idx], data.action[idx], data.mark[idx]) - data.reward[idx]))

    half = config.batch_size // 2

    def update(carry, k):
        p, opt = carry
        k_pos, k_neg = jax.random.split(k)
        # Half paid, half unpaid (with replacement); a part with no samples lends its slots to the other.
        i_pos = jax.random.randint(k_pos, (half,), 0, jnp.maximum(n_pos, 1))
        i_neg = n_pos + jax.random.randint(k_neg, (config.batch_size - half,), 0, jnp.maximum(n_neg, 1))
        i_pos = jnp.where(n_pos > 0, i_pos, n_pos + i_pos % jnp.maximum(n_neg, 1))
        i_neg = jnp.where(n_neg > 0, i_neg, i_neg % jnp.maximum(n_pos, 1))
        grads = jax.grad(loss)(p, order[jnp.concatenate([i_pos, i_neg])])
        upd, opt = optimizer.update(grads, opt, p)
        return (optax.apply_updates(p, upd), opt), None

    def chunk(carry, k):
        carry, _ = jax.lax.scan(update, carry, jax.random.split(k, n_updates // n_checkpoints))
        pred = apply(carry[0], data.obs[evaluate], data.action[evaluate], data.mark[evaluate])
        target = data.reward[evaluate]
        mse = (eval_w * jnp.square(pred - target)).sum() / jnp.maximum(eval_w.sum(), 1.0)
        return carry, (carry[0], _pearson(pred, target, eval_w), mse)

    _, (ckpts, r, mse) = jax.lax.scan(chunk, (params, optimizer.init(params)),
                                      jax.random.split(k_train, n_checkpoints))
    quarter = max(1, n_checkpoints // 4)
    before = mse[n_checkpoints - 1 - quarter]
    converged = jnp.abs(mse[-1] - before) <= CONVERGED_CHANGE * jnp.maximum(before, 1e-12)
    return Trained(ckpts, r, mse, n_pos.astype(jnp.int32), converged)
