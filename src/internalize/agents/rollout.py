"""Rollout collection and advantage estimation, as Stable-Baselines3's ``collect_rollouts`` does them.

One rollout is ``n_steps`` vector steps of ``n_envs`` envs (one seed), collected in a ``lax.scan``: the
policy samples an action for every env, the worlds step (and auto-reset after a truncation), and the reward
module turns the step's reward channels into the learner's utility. Arrays are time-major:
``(n_steps, n_envs, ...)``.

Truncation bootstrapping (SB3 ``on_policy_algorithm.py``): navigation episodes never terminate; they are
truncated after ``max_steps``. At a truncated step SB3 adds ``gamma * V(final_obs)`` to the reward, where
``final_obs`` is the observation the episode stopped in, and then treats the step as done for GAE: the chain
of advantages is cut there. :func:`compute_gae` reproduces ``RolloutBuffer.compute_returns_and_advantage``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from internalize.agents.reward import Reward
from internalize.worlds.base import Channels, World, step_autoreset

#: Per-episode sums every learner reports; reward-info entries are added beside them.
EPISODE_KEYS = ("extrinsic", "social", "utility", "goals")


class Rollout(NamedTuple):
    """One rollout of one seed; every field is time-major ``(n_steps, n_envs, ...)``.

    Attributes:
      obs: (T, E, *obs_shape) uint8, the observation each action was chosen on.
      action: (T, E) int32.
      log_prob: (T, E) float32, log pi(action | obs) under the policy that acted.
      value: (T, E) float32, V(obs) under the policy that acted.
      utility: (T, E) float32, the learner's reward from the reward module, before bootstrapping.
      reward: (T, E) float32, ``utility + gamma * V(next_obs)`` at truncated steps, else ``utility``
        (what GAE uses, like SB3's rollout-buffer rewards).
      channels: the world's reward channels, each (T, E).
      episode_start: (T, E) bool, ``obs`` is the first observation of an episode.
      truncated: (T, E) bool, the episode ended after this step (the env was reset).
      next_obs: (T, E, *obs_shape) uint8, the observation the action led to, before any auto-reset.
      info: the reward module's per-step info entries, each (T, E) float32.
    """

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    utility: jax.Array
    reward: jax.Array
    channels: Channels
    episode_start: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    info: dict[str, jax.Array]


class ActorState(NamedTuple):
    """The acting side of a learner between rollouts (one seed).

    Attributes:
      env_state: the worlds' states, batched over envs (leading axis n_envs).
      obs: (E, *obs_shape) uint8, the observation to act on next.
      episode_start: (E,) bool, ``obs`` starts an episode (SB3's ``_last_episode_starts``).
      episode_acc: dict of (E,) float32 running sums of the current episodes (``EPISODE_KEYS`` + info keys).
      reward_state: the reward module's state (any pytree).
      steps: () int32, global env steps taken by this seed (grows by n_envs per vector step).
    """

    env_state: Any
    obs: jax.Array
    episode_start: jax.Array
    episode_acc: dict[str, jax.Array]
    reward_state: Any
    steps: jax.Array


def bootstrap_truncated(utility: jax.Array, truncated: jax.Array, final_value: jax.Array, gamma: float) -> jax.Array:
    """SB3's time-limit bootstrap: ``utility + gamma * V(final_obs)`` where truncated, else ``utility``."""
    return jnp.where(truncated, utility + gamma * final_value, utility).astype(jnp.float32)


def compute_gae(
    reward: jax.Array, value: jax.Array, done: jax.Array, last_value: jax.Array, gamma: float, gae_lambda: float
) -> tuple[jax.Array, jax.Array]:
    """Generalized advantage estimates and returns, exactly as SB3's ``compute_returns_and_advantage``.

    Args:
      reward: (T, E) rewards, truncation bootstraps already added.
      value: (T, E) V(obs_t).
      done: (T, E) bool, the episode ended at step t. SB3 reads this as ``episode_starts[t + 1]`` (and as the
        ``dones`` of the last step for t = T - 1); both say the same thing, so the chain is cut after t.
      last_value: (E,) V of the observation after the rollout's last step (the next rollout's first obs).

    Returns:
      ``(advantages, returns)``, both (T, E) float32, with ``returns = advantages + value``.
    """
    next_value = jnp.concatenate([value[1:], last_value[None]], axis=0)
    next_non_terminal = 1.0 - done.astype(jnp.float32)

    def backward(last_gae, xs):
        r, v, nv, nnt = xs
        delta = r + gamma * nv * nnt - v
        last_gae = delta + gamma * gae_lambda * nnt * last_gae
        return last_gae, last_gae

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(last_value), (reward, value, next_value, next_non_terminal), reverse=True
    )
    return advantages, advantages + value


def count_keys(world: World) -> dict[str, str]:
    """The world's per-episode event counts of the training rollouts, metric stem -> event name (the prosocial
    world's ``helped_goals``, ``lifts``, ``pointless_lifts``; none for most worlds)."""
    return dict(getattr(world, "episode_counts", {}))


def info_keys(reward: Reward, world: World, world_params: Any, n_envs: int) -> tuple[str, ...]:
    """The names of the reward module's info entries, found by tracing ``reward_fn`` once (no compute)."""

    def probe(key):
        obs, _ = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(key, n_envs), world_params)
        rstate = reward.init_state(key, n_envs)
        zeros = jnp.zeros((n_envs,), jnp.float32)
        flags = jnp.zeros((n_envs,), bool)
        channels = Channels(zeros, zeros, flags, {name: flags for name in getattr(world, "events", ())})
        action = jnp.zeros((n_envs,), jnp.int32)
        start = jnp.ones((n_envs,), bool)
        return reward.reward_fn(rstate, obs, action, channels, obs, start, jnp.int32(0), key)[2]

    info = jax.eval_shape(probe, jax.random.PRNGKey(0))
    own = EPISODE_KEYS + tuple(count_keys(world))
    clash = [k for k in info if k in own]
    if clash:
        raise ValueError(f"reward info: keys {clash} clash with the learner's own episode sums {own}.")
    return tuple(sorted(info))


def collect_rollout(
    apply_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]],
    params: Any,
    world: World,
    world_params: Any,
    reward: Reward,
    gamma: float,
    n_steps: int,
    actors: ActorState,
    key: jax.Array,
) -> tuple[ActorState, Rollout, dict[str, jax.Array]]:
    """Run the policy for ``n_steps`` vector steps.

    Returns:
      ``(actors, rollout, totals)``: the actors after the rollout, the :class:`Rollout`, and the sums over
      the episodes that *finished* in this rollout: ``totals["episodes"]`` () float32 their number, and one
      () float32 sum per episode key (``EPISODE_KEYS``, the world's :func:`count_keys` and the reward module's
      info keys).
    """
    n_envs = actors.obs.shape[0]
    counts = count_keys(world)
    step_env = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0, None))

    def one_step(carry, step_key):
        actors, totals = carry
        k_act, k_env, k_rew = jax.random.split(step_key, 3)
        logits, value = apply_fn(params, actors.obs)
        action = jax.random.categorical(k_act, logits).astype(jnp.int32)
        log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None], axis=-1)[:, 0]
        out = step_env(world, jax.random.split(k_env, n_envs), actors.env_state, action, world_params)
        utility, reward_state, info = reward.reward_fn(
            actors.reward_state, actors.obs, action, out.channels, out.final_obs, actors.episode_start,
            actors.steps, k_rew,
        )
        utility = utility.astype(jnp.float32)
        # V(final_obs) is only needed on truncated steps (one in max_steps); skip the forward pass otherwise.
        final_value = jax.lax.cond(
            jnp.any(out.truncated),
            lambda: apply_fn(params, out.final_obs)[1],
            lambda: jnp.zeros((n_envs,), jnp.float32),
        )
        boot = bootstrap_truncated(utility, out.truncated, final_value, gamma)

        increments = {
            "extrinsic": out.channels.extrinsic, "social": out.channels.social, "utility": utility,
            "goals": out.channels.event, **info,
            **{stem: out.channels.events[event] for stem, event in counts.items()},
        }
        acc = {k: actors.episode_acc[k] + increments[k].astype(jnp.float32) for k in actors.episode_acc}
        done = out.truncated
        totals = {k: totals[k] + jnp.sum(jnp.where(done, acc[k], 0.0)) for k in acc} | {
            "episodes": totals["episodes"] + jnp.sum(done.astype(jnp.float32))
        }
        acc = {k: jnp.where(done, 0.0, v) for k, v in acc.items()}

        transition = Rollout(
            obs=actors.obs, action=action, log_prob=log_prob, value=value, utility=utility, reward=boot,
            channels=out.channels, episode_start=actors.episode_start, truncated=done, next_obs=out.final_obs,
            info={k: v.astype(jnp.float32) for k, v in info.items()},
        )
        actors = ActorState(out.state, out.obs, done, acc, reward_state, actors.steps + n_envs)
        return (actors, totals), transition

    totals0 = {k: jnp.zeros((), jnp.float32) for k in actors.episode_acc} | {"episodes": jnp.zeros((), jnp.float32)}
    (actors, totals), rollout = jax.lax.scan(one_step, (actors, totals0), jax.random.split(key, n_steps))
    return actors, rollout, totals


def first_nonfinite_step(utility: jax.Array, start_step: jax.Array) -> jax.Array:
    """Global env step of the first non-finite utility in a (T, E) rollout, or -1 if all are finite."""
    flat = ~jnp.isfinite(utility).reshape(-1)  # time-major: flat index t * E + e = steps into the rollout
    first = jnp.argmax(flat)
    return jnp.where(jnp.any(flat), start_step + first.astype(jnp.int32), -1).astype(jnp.int32)
