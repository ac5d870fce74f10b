"""PPO building blocks against hand computations: GAE with truncation bootstrapping, rollout semantics,
the SB3 loss, torch-style gradient clipping and Adam."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.ppo import PPOConfig, clip_grad_norm_torch, make_optimizer, make_train, ppo_loss
from internalize.agents.reward import caregiver_present
from internalize.agents.rollout import bootstrap_truncated, collect_rollout, compute_gae
from internalize.worlds.navigation import Navigation, make_params


def test_gae_hand_computed_with_mid_rollout_truncation_and_last_step_bootstrap():
    # gamma = lambda = 0.5; the episode is truncated after step 1 with V(final_obs) = 4; V(obs after) = 2.
    gamma, lam = 0.5, 0.5
    utility = jnp.array([[1.0], [2.0], [3.0]])
    value = jnp.array([[0.5], [1.0], [1.5]])
    truncated = jnp.array([[False], [True], [False]])
    reward = bootstrap_truncated(utility, truncated, jnp.array([[9.0], [4.0], [9.0]]), gamma)
    np.testing.assert_allclose(reward[:, 0], [1.0, 2.0 + 0.5 * 4.0, 3.0])
    adv, ret = compute_gae(reward, value, truncated, jnp.array([2.0]), gamma, lam)
    # t=2: delta = 3 + 0.5*2 - 1.5 = 2.5 (the last step bootstraps from V(obs after the rollout)).
    # t=1: the chain is cut: delta = 4 - 1 = 3, no look-ahead.  t=0: delta = 1 + 0.5*1 - 0.5 = 1; 1 + 0.25*3.
    np.testing.assert_allclose(adv[:, 0], [1.75, 3.0, 2.5])
    np.testing.assert_allclose(ret[:, 0], [2.25, 4.0, 4.0])


def _sb3_loop(rewards, values, episode_starts, last_values, dones, gamma, lam):
    """SB3's compute_returns_and_advantage, written with its episode_starts-of-the-next-step convention."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros_like(last_values)
    for step in reversed(range(T)):
        if step == T - 1:
            nnt, nv = 1.0 - dones, last_values
        else:
            nnt, nv = 1.0 - episode_starts[step + 1], values[step + 1]
        delta = rewards[step] + gamma * nv * nnt - values[step]
        last = delta + gamma * lam * nnt * last
        adv[step] = last
    return adv, adv + values


@pytest.mark.parametrize("last_done", [False, True])
def test_gae_equals_sb3_loop_on_random_rollout(last_done):
    rng = np.random.default_rng(0)
    T, E = 13, 3
    rewards = rng.normal(size=(T, E)).astype(np.float32)
    values = rng.normal(size=(T, E)).astype(np.float32)
    truncated = rng.random((T, E)) < 0.2
    truncated[-1, :] = last_done
    last_values = rng.normal(size=E).astype(np.float32)
    episode_starts = np.concatenate([np.ones((1, E)), truncated[:-1]]).astype(np.float32)
    want_adv, want_ret = _sb3_loop(rewards, values, episode_starts, last_values, truncated[-1].astype(np.float32),
                                   0.99, 0.95)
    adv, ret = compute_gae(jnp.asarray(rewards), jnp.asarray(values), jnp.asarray(truncated),
                           jnp.asarray(last_values), 0.99, 0.95)
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)


def test_rollout_truncates_every_20_steps_and_bootstraps_with_final_obs_value():
    config = PPOConfig(n_steps=45, n_envs=3, batch_size=5, torso="mlp")
    learner = make_train(config, Navigation(), make_params(n_blocks=3))
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))
    collect = jax.jit(lambda s, k: collect_rollout(learner.network.apply, s.params, Navigation(),
                                                   make_params(n_blocks=3), caregiver_present(), 0.99, 45, s.actors, k))
    actors, ro, totals = collect(state, jax.random.PRNGKey(1))
    trunc = np.asarray(ro.truncated)
    assert trunc[19].all() and trunc[39].all() and trunc.sum() == 6, "episodes of 20 steps, from step 0"
    start = np.asarray(ro.episode_start)
    assert start[0].all() and np.array_equal(start[1:], trunc[:-1]), "episode_start[t] = truncated[t-1]"
    obs, next_obs = np.asarray(ro.obs), np.asarray(ro.next_obs)
    same = ~trunc[:-1]
    assert np.array_equal(next_obs[:-1][same], obs[1:][same]), "without truncation next_obs is the next obs"
    assert not np.array_equal(next_obs[19], obs[20]), "after a truncation the env was reset"
    _, v_next = learner.network.apply(state.params, ro.next_obs)
    utility = np.asarray(ro.channels.extrinsic + ro.channels.social)
    np.testing.assert_allclose(ro.utility, utility, rtol=0, atol=1e-7)
    want = np.where(trunc, utility + 0.99 * np.asarray(v_next), utility)
    np.testing.assert_allclose(ro.reward, want, rtol=1e-6, atol=1e-6)
    _, v_obs = learner.network.apply(state.params, ro.obs)
    np.testing.assert_allclose(ro.value, v_obs, rtol=1e-6, atol=1e-6)
    # Totals cover exactly the 6 episodes that ended (steps 0..39); steps 40..44 stay in the accumulators.
    assert float(totals["episodes"]) == 6.0
    np.testing.assert_allclose(totals["goals"], np.asarray(ro.channels.event)[:40].sum(), rtol=0)
    np.testing.assert_allclose(totals["utility"], utility[:40].sum(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(actors.episode_acc["extrinsic"], np.asarray(ro.channels.extrinsic)[40:].sum(0),
                               rtol=1e-5, atol=1e-6)
    assert int(actors.steps) == 45 * 3


def test_ppo_loss_matches_numpy_sb3_formula():
    rng = np.random.default_rng(1)
    config = PPOConfig(torso="mlp", clip_range=0.1, ent_coef=0.01, vf_coef=0.7)
    logits = rng.normal(size=(16, 3)).astype(np.float32)
    values = rng.normal(size=16).astype(np.float32)

    def apply_fn(params, obs):
        return params["logits"], params["values"]

    params = {"logits": jnp.asarray(logits), "values": jnp.asarray(values)}
    batch = {"obs": jnp.zeros((16, 1)), "action": jnp.asarray(rng.integers(0, 3, 16), jnp.int32),
             "log_prob": jnp.asarray(rng.normal(size=16) - 1.0, jnp.float32),
             "advantage": jnp.asarray(rng.normal(size=16), jnp.float32),
             "return": jnp.asarray(rng.normal(size=16), jnp.float32)}
    loss, stats = ppo_loss(params, apply_fn, batch, config)
    b = {k: np.asarray(v, np.float64) for k, v in batch.items()}
    logp_all = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    logp = logp_all[np.arange(16), b["action"].astype(int)]
    adv = (b["advantage"] - b["advantage"].mean()) / (b["advantage"].std(ddof=1) + 1e-8)
    ratio = np.exp(logp - b["log_prob"])
    pg = -np.minimum(adv * ratio, adv * np.clip(ratio, 0.9, 1.1)).mean()
    vl = ((b["return"] - values) ** 2).mean()
    ent = -(np.exp(logp_all) * logp_all).sum(1).mean()
    np.testing.assert_allclose(stats["policy_loss"], pg, rtol=1e-5)
    np.testing.assert_allclose(stats["value_loss"], vl, rtol=1e-5)
    np.testing.assert_allclose(stats["entropy"], ent, rtol=1e-5)
    np.testing.assert_allclose(loss, pg - 0.01 * ent + 0.7 * vl, rtol=1e-5)
    log_ratio = logp - b["log_prob"]
    np.testing.assert_allclose(stats["approx_kl"], np.mean(np.exp(log_ratio) - 1 - log_ratio), rtol=1e-4)
    np.testing.assert_allclose(stats["clip_fraction"], np.mean(np.abs(ratio - 1) > 0.1), rtol=1e-6)


def test_gradient_clipping_and_adam_step_follow_torch():
    clip = clip_grad_norm_torch(0.5)
    big = {"a": jnp.array([1.2, 1.6])}  # norm 2
    out, _ = clip.update(big, clip.init(big))
    np.testing.assert_allclose(out["a"], np.array([1.2, 1.6]) * 0.5 / (2.0 + 1e-6), rtol=1e-6)
    small = {"a": jnp.array([0.3, 0.0])}
    out, _ = clip.update(small, clip.init(small))
    np.testing.assert_array_equal(out["a"], small["a"])
    # First torch Adam step: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps).
    config = PPOConfig(learning_rate=0.1, adam_eps=1e-5, max_grad_norm=100.0)
    opt = make_optimizer(config)
    params = {"a": jnp.array([1.0, -2.0])}
    g = {"a": jnp.array([0.02, -3e-5])}
    updates, _ = opt.update(g, opt.init(params), params)
    want = -0.1 * np.array([0.02, -3e-5]) / (np.abs([0.02, -3e-5]) + 1e-5)
    np.testing.assert_allclose(updates["a"], want, rtol=1e-5)
