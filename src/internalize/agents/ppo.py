"""PPO with Stable-Baselines3's defaults as pure JAX functions: one training phase is one jitted program.

Usage (PureJaxRL style)::

    learner = make_train(PPOConfig(total_timesteps=120_000), Navigation(), make_params(n_blocks=3))
    state = learner.init(jax.random.PRNGKey(0))
    run = jax.jit(learner.run, static_argnums=1)
    state, metrics = run(state, 10)              # 10 rollouts + updates; metrics[name] has shape (10,)
    check_finite(metrics)                        # host side: raise on NaN/inf, naming the rollout and step

    seeds = make_seeds_runner(learner)           # many seeds in one program: vmap over seeds
    states = seeds.init(jax.random.split(jax.random.PRNGKey(0), 4))
    states, metrics = seeds.run(states, 10)      # metrics[name]: (4, 10)

A new phase continues the same model, Adam moments included (as SB3's ``learn(..., reset_num_timesteps=False)``
after ``set_env`` does): ``make_train(cfg2, world2, params2, reward2).init(key, state.params, state.opt_state,
start_step=state.steps)``. The envs are reset, as SB3's ``set_env`` forces.

Each rollout is followed by ``n_epochs`` passes over it in shuffled minibatches (a fresh random permutation of
the ``n_steps * n_envs`` samples per epoch, as SB3's ``RolloutBuffer.get``), one Adam step per minibatch after
clipping the global gradient norm as ``torch.nn.utils.clip_grad_norm_`` does. The loss is SB3's:
``policy_loss + ent_coef * (-entropy) + vf_coef * MSE(returns, values)``, no value clipping.

Per-rollout metrics (each ``(num_rollouts,)``; leading seed axis when vmapped):
  ``episodes`` episodes that finished in the rollout; ``goals_per_episode``, ``extrinsic_return``,
  ``social_return``, ``utility_return``, ``<info>_return`` for each reward-info entry and ``<stem>_per_episode``
  for each of the world's own counts (``rollout.count_keys``: the prosocial world's lifts): means over those
  episodes (NaN when none finished, e.g. rollouts shorter than an episode); ``policy_loss``, ``value_loss``,
  ``clip_fraction`` (means over all minibatches of all epochs, as SB3 logs them), ``entropy`` (mean policy
  entropy in nats; SB3 logs its negative as ``entropy_loss``), ``approx_kl`` (mean of (exp(r) - 1) - r over the
  last epoch's minibatches, as SB3 logs it), ``explained_variance``, ``learning_rate``,
  ``kl_from_departure`` (with an ``anchor`` policy: see ``run``), ``steps`` (global env
  steps at the end of the rollout), ``rollout`` (rollouts done in this phase), ``nonfinite_step`` (first env
  step of the rollout with a non-finite utility, else -1), ``nonfinite_params`` and ``reward_<name>`` for the
  reward module's update metrics. :func:`check_finite` turns the non-finite markers into an error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from internalize.agents.networks import ActorCritic
from internalize.agents.ppo_config import PPOConfig, num_rollouts
from internalize.agents.reward import Reward, caregiver_present
from internalize.agents.rollout import (
    EPISODE_KEYS,
    ActorState,
    collect_rollout,
    compute_gae,
    count_keys,
    first_nonfinite_step,
    info_keys,
)
from internalize.worlds.base import World

__all__ = [
    "PPOConfig", "num_rollouts", "TrainState", "Learner", "SeedsRunner", "make_train", "make_seeds_runner",
    "make_optimizer", "ppo_loss", "check_finite",
]

#: Losses whose non-finite value means the run is broken (per-episode means may be NaN legitimately).
GUARDED = ("policy_loss", "value_loss", "entropy", "approx_kl")


@struct.dataclass
class TrainState:
    """Everything a learner carries between rollouts (one seed; batched over seeds when vmapped).

    Attributes:
      params: policy/value network parameters.
      opt_state: optimizer state (Adam moments and step count, and the injected learning rate).
      actors: envs, last observations, episode accumulators, reward-module state and global step count.
      key: the PRNG key the next rollout splits from.
      rollouts: () int32, rollouts done in this phase.
    """

    params: Any
    opt_state: Any
    actors: ActorState
    key: jax.Array
    rollouts: jax.Array

    @property
    def steps(self) -> jax.Array:
        """Global env steps of this seed (all phases, if ``start_step`` was passed on)."""
        return self.actors.steps


class Learner(NamedTuple):
    """The pure functions of one phase; jit (and vmap) them yourself or use :func:`make_seeds_runner`.

    ``init(key, params=None, opt_state=None, reward_state=None, start_step=0, world_params=None) -> TrainState``;
    ``run(state, num_rollouts, world_params=None) -> (state, metrics)`` with ``num_rollouts`` static;
    ``train(key) -> (state, metrics)`` for the whole ``config.total_timesteps``.
    ``world_params`` None is the phase's own (``make_train``'s); passing them as an argument of a jitted function
    makes them traced, so one compiled program serves every map of the same world kind and shapes.
    """

    init: Callable[..., TrainState]
    run: Callable[[TrainState, int], tuple[TrainState, dict[str, jax.Array]]]
    train: Callable[[jax.Array], tuple[TrainState, dict[str, jax.Array]]]
    network: ActorCritic
    optimizer: optax.GradientTransformation
    config: PPOConfig
    world_params: Any


def clip_grad_norm_torch(max_norm: float) -> optax.GradientTransformation:
    """``torch.nn.utils.clip_grad_norm_``: scale by ``min(1, max_norm / (norm + 1e-6))``."""

    def update(updates, state, params=None):
        del params
        scale = jnp.minimum(max_norm / (optax.tree.norm(updates) + 1e-6), 1.0)
        return jax.tree.map(lambda g: g * scale, updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def make_optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Gradient clipping then torch-style Adam (eps outside the sqrt); the learning rate lives in the state."""

    def chain(learning_rate):
        return optax.chain(
            clip_grad_norm_torch(config.max_grad_norm), optax.adam(learning_rate, eps=config.adam_eps)
        )

    return optax.inject_hyperparams(chain)(learning_rate=config.learning_rate)


def ppo_loss(params, apply_fn, batch: dict[str, jax.Array], config: PPOConfig):
    """SB3's PPO loss on one minibatch of B samples; returns ``(loss, stats)`` with scalar stats.

    ``batch``: obs (B, *obs_shape), action (B,), log_prob (B,) of the acting policy, advantage (B,), return (B,).
    Advantages are normalised per minibatch as SB3 does with torch: ``(a - a.mean()) / (a.std() + 1e-8)``,
    where torch's ``std`` is the unbiased (n - 1) estimate.
    """
    logits, values = apply_fn(params, batch["obs"])
    log_probs = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_probs, batch["action"][:, None], axis=-1)[:, 0]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
    adv = batch["advantage"]
    if config.normalize_advantage:
        adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
    log_ratio = log_prob - batch["log_prob"]
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - config.clip_range, 1.0 + config.clip_range)
    policy_loss = -jnp.mean(jnp.minimum(adv * ratio, adv * clipped))
    value_loss = jnp.mean((batch["return"] - values) ** 2)
    loss = policy_loss - config.ent_coef * entropy.mean() + config.vf_coef * value_loss
    stats = {
        "loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy.mean(),
        "approx_kl": jnp.mean(jnp.expm1(log_ratio) - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > config.clip_range).astype(jnp.float32)),
    }
    return loss, stats


def categorical_kl(logits_p: jax.Array, logits_q: jax.Array) -> jax.Array:
    """KL(p || q) in nats between categorical distributions given by logits (..., A) -> (...), exactly:
    sum_a p(a) (log p(a) - log q(a))."""
    log_p, log_q = jax.nn.log_softmax(logits_p, axis=-1), jax.nn.log_softmax(logits_q, axis=-1)
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def _update(apply_fn, optimizer, config: PPOConfig, params, opt_state, data: dict[str, jax.Array], key):
    """``n_epochs`` passes of shuffled minibatches over one rollout's flattened samples."""
    size = config.rollout_steps
    n_minibatches = size // config.batch_size
    grad_fn = jax.grad(ppo_loss, has_aux=True)

    def minibatch(carry, batch):
        params, opt_state = carry
        grads, stats = grad_fn(params, apply_fn, batch, config)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), stats

    def epoch(carry, epoch_key):
        perm = jax.random.permutation(epoch_key, size)
        batches = jax.tree.map(lambda x: x[perm].reshape((n_minibatches, config.batch_size) + x.shape[1:]), data)
        return jax.lax.scan(minibatch, carry, batches)

    (params, opt_state), stats = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, config.n_epochs))
    return params, opt_state, stats  # stats[name]: (n_epochs, n_minibatches)


def _explained_variance(pred: jax.Array, target: jax.Array) -> jax.Array:
    """SB3's ``explained_variance``: 1 - Var[target - pred] / Var[target] (NaN when Var[target] = 0)."""
    var = jnp.var(target)
    return jnp.where(var == 0, jnp.nan, 1.0 - jnp.var(target - pred) / jnp.where(var == 0, 1.0, var))


def _return_name(key: str) -> str:
    """The per-episode metric of an episode sum: ``paid`` -> ``paid_return``; a qualified one keeps its qualifier
    last, ``paid/caregiver[0]`` -> ``paid_return/caregiver[0]``."""
    head, sep, tail = key.partition("/")
    return f"{head}_return{sep}{tail}"


def make_train(config: PPOConfig, world: World, world_params: Any, reward: Reward | None = None) -> Learner:
    """Build the pure functions of one PPO phase on ``world`` (see the module docstring)."""
    if not isinstance(config, PPOConfig):
        raise ValueError(f"config: must be a PPOConfig, got {type(config).__name__}.")
    reward = caregiver_present() if reward is None else reward
    if not isinstance(reward, Reward):
        raise ValueError(f"reward: must be a Reward bundle or None, got {type(reward).__name__}.")
    obs_shape = tuple(world.observation_shape(world_params))
    network = ActorCritic(world.num_actions, torso=config.torso,
                          obs_scale=config.policy_input_scale(world, obs_shape[-1]))
    optimizer = make_optimizer(config)
    n_envs = config.n_envs
    counted = tuple(count_keys(world))  # the world's own per-episode counts: <stem>_per_episode
    acc_keys = EPISODE_KEYS + counted + info_keys(reward, world, world_params, n_envs)
    phase_params = world_params

    def init(key, params=None, opt_state=None, reward_state=None, start_step=0, world_params=None) -> TrainState:
        """A fresh phase; pass ``params``/``opt_state``/``reward_state`` to continue from an earlier one."""
        world_params = phase_params if world_params is None else world_params
        key, k_net, k_env, k_reward = jax.random.split(key, 4)
        if params is None:
            params = network.init(k_net, jnp.zeros((1,) + obs_shape, jnp.uint8))
        if opt_state is None:
            opt_state = optimizer.init(params)
        else:  # keep Adam's moments and count; take this phase's learning rate
            lr = jnp.asarray(config.learning_rate, opt_state.hyperparams["learning_rate"].dtype)
            opt_state = opt_state._replace(hyperparams={**opt_state.hyperparams, "learning_rate": lr})
        obs, env_state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(k_env, n_envs), world_params)
        if reward_state is None:
            reward_state = reward.init_state(k_reward, n_envs)
        actors = ActorState(
            env_state=env_state, obs=obs, episode_start=jnp.ones((n_envs,), bool),
            episode_acc={k: jnp.zeros((n_envs,), jnp.float32) for k in acc_keys}, reward_state=reward_state,
            steps=jnp.asarray(start_step, jnp.int32),
        )
        return TrainState(params, opt_state, actors, key, jnp.zeros((), jnp.int32))

    def one_rollout(world_params, anchor, state: TrainState, _) -> tuple[TrainState, dict[str, jax.Array]]:
        key, k_collect, k_reward, k_update = jax.random.split(state.key, 4)
        start_step = state.actors.steps
        actors, rollout, totals = collect_rollout(
            network.apply, state.params, world, world_params, reward, config.gamma, config.n_steps,
            state.actors, k_collect,
        )
        _, last_value = network.apply(state.params, actors.obs)
        advantages, returns = compute_gae(
            rollout.reward, rollout.value, rollout.truncated, last_value, config.gamma, config.gae_lambda
        )
        reward_metrics = {}
        if reward.update_fn is not None:
            reward_state, reward_metrics = reward.update_fn(actors.reward_state, rollout, k_reward)
            actors = actors._replace(reward_state=reward_state)
        def flat(x: jax.Array) -> jax.Array:  # (T, E, ...) -> (T * E, ...)
            return x.reshape((-1,) + x.shape[2:])

        data = {
            "obs": flat(rollout.obs), "action": flat(rollout.action), "log_prob": flat(rollout.log_prob),
            "advantage": flat(advantages), "return": flat(returns),
        }
        learning_rate = state.opt_state.hyperparams["learning_rate"]
        params, opt_state, stats = _update(
            network.apply, optimizer, config, state.params, state.opt_state, data, k_update
        )
        episodes = totals["episodes"]

        def per_episode(total: jax.Array) -> jax.Array:
            return jnp.where(episodes > 0, total / jnp.maximum(episodes, 1.0), jnp.nan)

        metrics = {
            "episodes": episodes, "goals_per_episode": per_episode(totals["goals"]),
            **{f"{k}_per_episode": per_episode(totals[k]) for k in counted},
            **{_return_name(k): per_episode(totals[k]) for k in acc_keys if k != "goals" and k not in counted},
            "policy_loss": stats["policy_loss"].mean(), "value_loss": stats["value_loss"].mean(),
            "entropy": stats["entropy"].mean(), "approx_kl": stats["approx_kl"][-1].mean(),
            "clip_fraction": stats["clip_fraction"].mean(), "loss": stats["loss"][-1, -1],
            "explained_variance": _explained_variance(rollout.value.reshape(-1), returns.reshape(-1)),
            "learning_rate": learning_rate, "steps": actors.steps, "rollout": state.rollouts + 1,
            "nonfinite_step": first_nonfinite_step(rollout.utility, start_step),
            "nonfinite_params": ~jnp.all(jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree.leaves(params)])),
            **{f"reward_{k}": v for k, v in reward_metrics.items()},
        }
        if anchor is not None:  # the policy that collected the rollout vs the anchor, on the rollout's own states
            obs = flat(rollout.obs)
            metrics["kl_from_departure"] = jnp.mean(categorical_kl(network.apply(state.params, obs)[0],
                                                                   network.apply(anchor, obs)[0]))
        return TrainState(params, opt_state, actors, key, state.rollouts + 1), metrics

    def run(state: TrainState, num_rollouts: int, world_params=None,
            anchor=None) -> tuple[TrainState, dict[str, jax.Array]]:
        """``num_rollouts`` (static) rollouts and updates in one ``lax.scan``; with ``anchor`` (policy parameters,
        e.g. the policy at departure) each rollout also reports ``kl_from_departure``: the mean over the
        rollout's states of KL(current policy || anchor policy), exactly from the two action distributions."""
        if isinstance(num_rollouts, bool) or not isinstance(num_rollouts, int) or num_rollouts < 0:
            raise ValueError(f"num_rollouts: must be a static integer >= 0, got {num_rollouts!r}.")
        world_params = phase_params if world_params is None else world_params
        return jax.lax.scan(functools.partial(one_rollout, world_params, anchor), state, None, length=num_rollouts)

    def train(key: jax.Array) -> tuple[TrainState, dict[str, jax.Array]]:
        """The whole phase: ``config.num_rollouts`` rollouts from a fresh ``init(key)``."""
        return run(init(key), config.num_rollouts)

    return Learner(init, run, train, network, optimizer, config, world_params)


class SeedsRunner(NamedTuple):
    """Jitted, seed-vmapped ``init`` and ``run``; every TrainState leaf gets a leading seed axis.

    ``init(keys, params=None, opt_state=None, reward_state=None, start_step=0)``: ``keys`` (S,) PRNG keys;
    ``params``/``opt_state``/``reward_state``, when given, are batched over seeds; ``start_step`` is shared.
    ``run(states, num_rollouts, anchor=None)`` -> ``(states, metrics)`` with metrics ``(S, num_rollouts)``, on the
    phase's world (``anchor``: per-seed policy parameters for ``kl_from_departure``).
    ``run_on(states, num_rollouts, world_params, anchor=None)``: the jitted program ``run`` calls, with the world's
    parameters as its argument (shared by every map of the world kind with the same shapes).
    """

    init: Callable[..., TrainState]
    run: Callable[[TrainState, int], tuple[TrainState, dict[str, jax.Array]]]
    run_on: Callable[[TrainState, int, Any], tuple[TrainState, dict[str, jax.Array]]]


def make_seeds_runner(learner: Learner, *, donate: bool = False) -> SeedsRunner:
    """Many seeds in one compiled program (``jax.vmap`` over seeds, then ``jax.jit``).

    The world's parameters are an argument of both programs, not constants folded into them: phases that differ
    only in their map (Figure 5's five, Figure 4b's held-out blocks) compile once and share XLA's cache.

    ``donate``: ``run``/``run_on`` consume the states they are given (``donate_argnums``): XLA writes the new
    states into their buffers, so the caller must not use them again. Without it every call allocates and copies
    the whole state, socialization buffer included (1.1 GB for the quick Figure 7's 5 seeds: 0.25 s a call, 20%
    of an 8-rollout chunk on a 2-core CPU). The numbers are the same either way."""
    vinit = jax.jit(jax.vmap(learner.init, in_axes=(0, 0, 0, 0, None, None)))

    def init(keys, params=None, opt_state=None, reward_state=None, start_step=0) -> TrainState:
        return vinit(keys, params, opt_state, reward_state, start_step, learner.world_params)

    def run_all(states: TrainState, n: int, wp: Any, anchor: Any = None):
        return jax.vmap(lambda s, a: learner.run(s, n, wp, a))(states, anchor)

    run_on = jax.jit(run_all, static_argnums=1, donate_argnums=(0,) if donate else ())

    def run(states: TrainState, num_rollouts: int, anchor: Any = None) -> tuple[TrainState, dict[str, jax.Array]]:
        return run_on(states, num_rollouts, learner.world_params, anchor)

    return SeedsRunner(init, run, run_on)


def check_finite(metrics: dict[str, Any], *, seeds: Any = None, context: str = "") -> None:
    """Raise ``FloatingPointError`` if a run went non-finite, naming where it first happened.

    ``metrics`` as returned by ``run`` (``(R,)`` arrays, or ``(S, R)`` for vmapped seeds, where ``seeds``
    names the seeds for the message). Checks the losses, the parameters after each update and the utility;
    per-episode means are not checked (they are NaN when no episode finished).
    """
    host = {k: np.asarray(v) for k, v in metrics.items() if k in GUARDED + ("nonfinite_step", "nonfinite_params")}
    bad = host["nonfinite_step"] >= 0
    bad = bad | host["nonfinite_params"]
    for name in GUARDED:
        bad = bad | ~np.isfinite(host[name])
    if not bad.any():
        return
    bad2 = bad.reshape((-1, bad.shape[-1]))
    first = np.where(bad2.any(axis=1), bad2.argmax(axis=1), bad2.shape[1])
    row = int(first.argmin())  # the seed that broke earliest
    col = int(first[row])

    def pick(name: str) -> Any:  # metric ``name`` of the seed and rollout that broke first
        return np.asarray(metrics[name]).reshape((-1, bad.shape[-1]))[row, col]

    end = int(pick("steps"))
    rollout_index = int(pick("rollout"))
    what = [n for n in GUARDED if not np.isfinite(pick(n))]
    if bool(pick("nonfinite_params")):
        what.append("parameters")
    where = f"rollout {rollout_index} (global env steps up to {end})"
    if bad.ndim > 1:
        seed_name = row if seeds is None else np.asarray(seeds).reshape(-1)[row]
        where = f"seed {seed_name}, " + where
    detail = f"non-finite {', '.join(what)}" if what else "non-finite values"
    utility_step = int(pick("nonfinite_step"))
    if utility_step >= 0:
        detail += f"; the utility was first non-finite at env step {utility_step}"
    prefix = f"{context}: " if context else ""
    raise FloatingPointError(f"{prefix}PPO training went non-finite at {where}: {detail}.")
