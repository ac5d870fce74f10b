"""The instrument's reward models: ISR networks trained on (observation, action, mark) -> payment, with the mark
explicit, so a sample can carry the action at the peer's cell (the controls' peer samples).

The network, input encoding and optimizer are the ISR's (``agents.isr``: ``IsrNetwork``, ``encode_isr_input``
with an explicit ``mark``, global-norm clip then Adam); only the data differ from an experiment's ISR, which
marks the learner's cell only. Training: MSE on batches drawn half from paid and half from unpaid training
samples (the ISR's balanced sampling), a random ``holdout_fraction`` of the samples held out (never stepped on).
Training runs in chunks of updates; the parameters and the held-out fit after each chunk are kept, which gives
the time course of anything measured on the model. :func:`train` runs a fixed budget; :func:`train_to_convergence`
runs until the stopping rule holds for every seed of a vmapped batch (or a maximum budget is spent).

Stopping rule (the same for every model it is applied to): a model has ``converged`` once its held-out MSE fell by
less than ``tol`` times the held-out payments' variance over the last ``window`` updates -- another ``window``
updates would explain less than that fraction more of the payments' variance. (A relative rule on the MSE itself
never stops: the MSE of a well-fitted model keeps halving while it is already a thousandth of the variance.)

Latents (:func:`features`): the penultimate layer h of the ``reference`` network (the ReLU of its second hidden
linear layer, ``round(32 * width)`` units) or of the ``mlp`` one (the tanh of its second hidden layer).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from internalize.agents.isr import IsrNetwork, encode_isr_input, isr_init_params, isr_optimizer
from internalize.agents.isr_config import IsrConfig
from internalize.empathy.data import Samples

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
    """A trained model's checkpoints (K chunks; a vmapped call adds a leading seed axis).

    Attributes:
      params: the network parameters after each chunk, leaves with a leading (K,) axis.
      heldout_r: (K,) Pearson r between prediction and payment on up to :data:`EVAL_SIZE` held-out samples.
      heldout_mse: (K,) their MSE.
      n_rewarded: () int32, paid training samples.
      converged: () bool, the stopping rule held at the last checkpoint (see the module docstring).
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


class Split(NamedTuple):
    """How a model's samples are used, fixed at the start: ``order`` (N,) int32 -- the training samples, paid ones
    first, each group in a random order, then the held-out ones; ``n_pos``, ``n_neg`` () int32 paid and unpaid
    training samples; ``evaluate`` (EVAL_SIZE,) int32 held-out samples the fit is measured on, ``eval_w`` their
    weights (0 for repeats when fewer are held out); ``eval_var`` () float32 the held-out payments' variance."""

    order: jax.Array
    n_pos: jax.Array
    n_neg: jax.Array
    evaluate: jax.Array
    eval_w: jax.Array
    eval_var: jax.Array


class State(NamedTuple):
    """A model in training: ``params``, Adam's ``opt_state`` and its :class:`Split`."""

    params: Any
    opt_state: Any
    split: Split


def start(config: IsrConfig, data: TrainData, key: jax.Array, apply: Apply | None = None,
          params: Any = None) -> State:
    """A fresh model on ``data`` (unbatched): by default a new ISR network (``config``); ``apply`` and ``params``
    give another model and its starting parameters (a reward head on a frozen world model: parameters behind a
    ``stop_gradient`` get zero gradients, so Adam leaves them exactly as they are)."""
    k_init, k_split, k_order = jax.random.split(key, 3)
    n = data.reward.shape[0]
    held = jax.random.uniform(k_split, (n,)) < config.holdout_fraction
    pos = data.reward > 0
    group = jnp.where(held, 2, jnp.where(pos, 0, 1))
    order = jnp.lexsort((jax.random.uniform(k_order, (n,)), group))
    n_held = jnp.sum(held)
    evaluate = order[n - n_held + jnp.arange(EVAL_SIZE) % jnp.maximum(n_held, 1)]
    eval_w = (jnp.arange(EVAL_SIZE) < n_held).astype(jnp.float32)
    target = data.reward[evaluate]
    mean = (eval_w * target).sum() / jnp.maximum(eval_w.sum(), 1.0)
    var = (eval_w * jnp.square(target - mean)).sum() / jnp.maximum(eval_w.sum(), 1.0)
    split = Split(order, jnp.sum(~held & pos), jnp.sum(~held & ~pos), evaluate, eval_w, var)
    if apply is None:
        params = isr_init_params(config, k_init, data.obs.shape[1:])
    return State(params, isr_optimizer(config).init(params), split)


def advance(config: IsrConfig, data: TrainData, state: State, key: jax.Array, n_updates: int,
            apply: Apply | None = None) -> tuple[State, jax.Array, jax.Array]:
    """``n_updates`` more updates (unbatched; ``n_updates`` static): MSE on batches half paid, half unpaid (with
    replacement; a part with no samples lends its slots to the other). Returns the new state and the held-out
    Pearson r and MSE after them."""
    apply = functools.partial(predict, config) if apply is None else apply
    optimizer = isr_optimizer(config)
    sp = state.split
    half = config.batch_size // 2

    def loss(p: Any, idx: jax.Array) -> jax.Array:
        return jnp.mean(jnp.square(apply(p, data.obs[idx], data.action[idx], data.mark[idx]) - data.reward[idx]))

    def update(carry, k):
        p, opt = carry
        k_pos, k_neg = jax.random.split(k)
        i_pos = jax.random.randint(k_pos, (half,), 0, jnp.maximum(sp.n_pos, 1))
        i_neg = sp.n_pos + jax.random.randint(k_neg, (config.batch_size - half,), 0, jnp.maximum(sp.n_neg, 1))
        i_pos = jnp.where(sp.n_pos > 0, i_pos, sp.n_pos + i_pos % jnp.maximum(sp.n_neg, 1))
        i_neg = jnp.where(sp.n_neg > 0, i_neg, i_neg % jnp.maximum(sp.n_pos, 1))
        grads = jax.grad(loss)(p, sp.order[jnp.concatenate([i_pos, i_neg])])
        upd, opt = optimizer.update(grads, opt, p)
        return (optax.apply_updates(p, upd), opt), None

    (params, opt), _ = jax.lax.scan(update, (state.params, state.opt_state), jax.random.split(key, n_updates))
    pred = apply(params, data.obs[sp.evaluate], data.action[sp.evaluate], data.mark[sp.evaluate])
    target = data.reward[sp.evaluate]
    mse = (sp.eval_w * jnp.square(pred - target)).sum() / jnp.maximum(sp.eval_w.sum(), 1.0)
    return State(params, opt, sp), _pearson(pred, target, sp.eval_w), mse


def has_converged(mse: jax.Array | np.ndarray, eval_var: jax.Array | np.ndarray, every: int, window: int,
                  tol: float) -> jax.Array:
    """(...) bool: the stopping rule at the last of K checkpoints ``every`` updates apart, from ``mse`` (..., K)
    and ``eval_var`` (...); False while fewer than ``window`` updates have run. Traceable (K is static)."""
    mse, lag = jnp.asarray(mse), -(-window // every)  # checkpoints spanning the window, rounded up
    if mse.shape[-1] <= lag:
        return jnp.zeros(mse.shape[:-1], bool)
    return (mse[..., -1 - lag] - mse[..., -1]) < tol * jnp.asarray(eval_var)


def train(config: IsrConfig, data: TrainData, key: jax.Array, n_updates: int, n_checkpoints: int,
          apply: Apply | None = None, params: Any = None, window: int | None = None, tol: float = 1e-3) -> Trained:
    """Train a model on ``data`` (unbatched; jit with ``config``, ``n_updates``, ``n_checkpoints`` static and vmap
    over seeds) for a fixed budget of ``n_updates`` in ``n_checkpoints`` chunks; ``converged``: the stopping rule
    (``window``: default a quarter of the budget) at the end. ``apply``/``params``: see :func:`start`."""
    if n_updates % n_checkpoints:
        raise ValueError(f"n_updates: {n_updates} is not a multiple of n_checkpoints {n_checkpoints}.")
    k_start, k_train = jax.random.split(key)
    state = start(config, data, k_start, apply, params)

    def chunk(state, k):
        state, r, mse = advance(config, data, state, k, n_updates // n_checkpoints, apply)
        return state, (state.params, r, mse)

    state, (ckpts, r, mse) = jax.lax.scan(chunk, state, jax.random.split(k_train, n_checkpoints))
    every = n_updates // n_checkpoints
    converged = has_converged(mse, state.split.eval_var, every, window or max(every, n_updates // 4), tol)
    return Trained(ckpts, r, mse, state.split.n_pos.astype(jnp.int32), converged)


def train_to_convergence(config: IsrConfig, data: TrainData, keys: jax.Array, every: int, max_updates: int,
                         window: int, tol: float, log: Callable[[str], None] = lambda _: None) -> Trained:
    """Train one model per seed (``data`` and ``keys`` batched over S seeds) in chunks of ``every`` updates until
    the stopping rule holds for every seed or ``max_updates`` are spent; a seed that converged early keeps training
    with the others (another chunk changes its fit by less than the rule allows). Returns the checkpoints of all K
    chunks run, on the host, with a leading seed axis."""
    if every < 1 or max_updates < every or window < every:
        raise ValueError(f"every, window, max_updates: need 1 <= every ({every}) <= window ({window}) and every <= "
                         f"max_updates ({max_updates}).")
    k_start = jax.vmap(lambda k: jax.random.split(k)[0])(keys)
    k_train = jax.vmap(lambda k: jax.random.split(k)[1])(keys)
    state = jax.jit(jax.vmap(functools.partial(start, config)))(data, k_start)
    step = jax.jit(jax.vmap(lambda d, s, k: advance(config, d, s, k, every)), donate_argnums=1)
    params, rs, mses = [], [], []
    eval_var = np.asarray(state.split.eval_var)
    for c in range(max_updates // every):
        state, r, mse = step(data, state, jax.vmap(lambda k, c=c: jax.random.fold_in(k, c))(k_train))
        params.append(jax.device_get(state.params))
        rs.append(np.asarray(r))
        mses.append(np.asarray(mse))
        done = np.asarray(has_converged(np.stack(mses, -1), eval_var, every, window, tol))
        if done.all():
            break
    log(f"{(c + 1) * every} updates, {int(done.sum())}/{done.size} seeds converged")
    stacked = jax.tree.map(lambda *xs: np.stack(xs, 1), *params)
    return Trained(stacked, np.stack(rs, 1), np.stack(mses, 1), np.asarray(state.split.n_pos, np.int32), done)
