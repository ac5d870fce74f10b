"""PPO learns the paper's task: with the caregiver present on 3-block navigation, every seed of a small
vmapped batch reaches clearly more goals per episode than a uniformly random policy in the same world."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from internalize.agents.ppo import PPOConfig, check_finite, make_seeds_runner, make_train
from internalize.agents.scripted import random_policy, run_policy_jit
from internalize.seeding import seed_offset
from internalize.worlds.navigation import Navigation, make_params

WORLD = Navigation()
PARAMS = make_params(n_blocks=3)


def random_goals_per_episode(key: jax.Array, n_envs: int = 64, n_steps: int = 400) -> float:
    """Goals per episode of a uniformly random policy (n_envs * n_steps / 20 episodes)."""
    out = run_policy_jit(random_policy, key, PARAMS, n_envs, n_steps)
    return float(out.channels.event.sum() / out.truncated.sum())


@pytest.mark.slow
def test_caregiver_present_learning_beats_random_policy_on_every_seed():
    random_gpe = random_goals_per_episode(jax.random.PRNGKey(123 + seed_offset()))
    assert 0.02 < random_gpe < 0.5, f"random baseline {random_gpe:.3f} outside the plausible range"
    # Small CI budget: 8 envs x 128 steps per rollout, 45 rollouts = 46,080 env steps per seed; lr 1e-3
    # (SB3's other defaults). At lr <= 3e-4 this budget is too short: the policy first learns to stop
    # moving (every forward costs) and only later finds the goals.
    config = PPOConfig(n_steps=128, n_envs=8, batch_size=64, learning_rate=1e-3, torso="mlp")
    runner = make_seeds_runner(make_train(config, WORLD, PARAMS))
    states, metrics = runner.run(runner.init(jax.random.split(jax.random.PRNGKey(2024 + seed_offset()), 3)), 45)
    metrics = jax.device_get(metrics)
    check_finite(metrics)
    gpe = np.asarray(metrics["goals_per_episode"])
    start, final = gpe[:, :2].mean(axis=1), gpe[:, -5:].mean(axis=1)
    msg = f"random {random_gpe:.3f}; first rollouts {np.round(start, 2)}; last 5 rollouts {np.round(final, 2)}"
    print(f"[offset {seed_offset()}] PPO learning: {msg}")  # the measured values, shown with pytest -rP
    assert (np.abs(start - random_gpe) < 0.25).all(), "an untrained policy is near-uniform: " + msg
    assert (final > random_gpe + 0.75).all() and (final > 4 * random_gpe).all(), msg
    assert int(np.asarray(states.steps)[0]) == 45 * 1024
