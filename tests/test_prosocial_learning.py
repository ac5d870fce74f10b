"""PPO learns to help: with the prosocial caregiver present, every seed of a small vmapped batch makes the helped
agent reach its goal clearly more often than a random learner does, and more often than the best policy that
never walks (turning and lifting in place, which costs nothing and helps only when the boulder is adjacent)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.ppo import PPOConfig, check_finite, make_seeds_runner, make_train
from internalize.agents.scripted import run_policy_jit
from internalize.worlds.prosocial import Prosocial, make_params

WORLD = Prosocial()
PARAMS = make_params()


def helped_goals_per_episode(key: jax.Array, probs: tuple[float, ...], n_envs: int = 64, n_steps: int = 1000) -> float:
    """Helped agent's goals per 100-step episode of a learner drawing actions i.i.d. from ``probs``."""
    def policy(key, state, params):
        return jax.random.choice(key, WORLD.num_actions, p=jnp.asarray(probs))

    out = run_policy_jit(policy, key, PARAMS, n_envs, n_steps, WORLD)
    return float(out.channels.event.sum() / out.truncated.sum())


@pytest.mark.slow
def test_caregiver_present_learner_helps_more_than_random_and_in_place_policies():
    random_hpe = helped_goals_per_episode(jax.random.key(7), (0.2,) * 5)
    in_place = helped_goals_per_episode(jax.random.key(8), (1 / 3, 1 / 3, 0.0, 1 / 3, 0.0))  # left, right, lift
    assert 0.05 < random_hpe < 0.6 and in_place < 0.6, (random_hpe, in_place)
    # The quick preset's learner for this world: MLP, 8 envs x 128 steps, lr 3e-4; 192 rollouts = 196,608 steps.
    config = PPOConfig(n_steps=128, n_envs=8, batch_size=64, learning_rate=3e-4, torso="mlp")
    runner = make_seeds_runner(make_train(config, WORLD, PARAMS))
    states, metrics = runner.run(runner.init(jax.random.split(jax.random.key(2024), 3)), 192)
    metrics = jax.device_get(metrics)
    check_finite(metrics)
    hpe = np.asarray(metrics["goals_per_episode"])  # the rewarded event here is the helped agent's goal
    start, final = np.nanmean(hpe[:, :8], axis=1), np.nanmean(hpe[:, -16:], axis=1)
    msg = (f"random {random_hpe:.3f}, in place {in_place:.3f}; first rollouts {np.round(start, 2)}; "
           f"last 16 rollouts {np.round(final, 2)}")
    assert (np.abs(start - random_hpe) < 0.25).all(), "an untrained policy is near-uniform: " + msg
    # Every seed beats both baselines (the random learner by 0.1 helped goals per episode), and the seed mean
    # beats the in-place optimum by a margin. Measured with jax 0.12.0.1: 0.45 / 0.56 / 0.49 against 0.32 and 0.40.
    assert (final > random_hpe + 0.1).all() and (final > in_place).all(), msg
    assert final.mean() > in_place + 0.07, msg
