"""PPOConfig: SB3 2.x defaults, SB3's rounding of a phase to whole rollouts, and validation messages."""

from __future__ import annotations

import dataclasses
import re

import pytest

from internalize.agents.ppo import PPOConfig, make_train, num_rollouts
from internalize.worlds.navigation import Navigation, make_params


def test_defaults_are_sb3_ppo_with_the_papers_learning_rate():
    c = PPOConfig()
    assert (c.n_steps, c.batch_size, c.n_epochs, c.n_envs) == (2048, 64, 10, 1)
    assert (c.gamma, c.gae_lambda, c.clip_range) == (0.99, 0.95, 0.2)
    assert (c.ent_coef, c.vf_coef, c.max_grad_norm, c.adam_eps) == (0.0, 0.5, 0.5, 1e-5)
    assert c.normalize_advantage is True and c.learning_rate == 1e-4 and c.torso == "cnn"
    assert all(PPOConfig.help().values()), "every field documents itself"
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.n_steps = 1  # type: ignore[misc]


def test_num_rollouts_rounds_up_like_sb3_learn():
    assert num_rollouts(12e4, 2048) == 59 and 59 * 2048 == 120_832
    assert num_rollouts(24e4, 2048) == 118
    assert [num_rollouts(n, 2048) for n in (10_000, 20_000, 40_000, 80_000)] == [5, 10, 20, 40]
    assert num_rollouts(2048, 2048) == 1 and num_rollouts(2049, 2048) == 2 and num_rollouts(0, 2048) == 0
    assert num_rollouts(1000, 128, 8) == 1
    assert PPOConfig(total_timesteps=12e4).num_rollouts == 59
    assert PPOConfig(total_timesteps=12e4).total_timesteps == 120_000


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("n_steps", 0, ">= 1"),
        ("n_envs", 1.5, "integer"),
        ("n_epochs", True, "integer"),
        ("batch_size", 1, ">= 2"),
        ("batch_size", 48, "divide n_steps * n_envs = 2048"),
        ("learning_rate", 0.0, "> 0"),
        ("learning_rate", float("nan"), "finite"),
        ("gamma", 1.5, "<= 1"),
        ("gae_lambda", -0.1, ">= 0"),
        ("clip_range", 0, "> 0"),
        ("ent_coef", -0.01, ">= 0"),
        ("vf_coef", "0.5", "finite number"),
        ("max_grad_norm", 0.0, "> 0"),
        ("adam_eps", -1e-8, "> 0"),
        ("torso", "resnet", "cnn | mlp"),
        ("normalize_advantage", 1, "True or False"),
        ("total_timesteps", -5, ">= 0"),
        ("total_timesteps", 1.5, "integer"),
    ],
)
def test_bad_values_name_field_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError, match=f"{field}: .*{re.escape(allowed)}.*{re.escape(repr(value))}"):
        PPOConfig(**{field: value})


def test_unnormalized_advantages_allow_batch_size_one_and_make_train_checks_its_inputs():
    assert PPOConfig(batch_size=1, normalize_advantage=False).batch_size == 1
    with pytest.raises(ValueError, match="config: must be a PPOConfig"):
        make_train({"n_steps": 8}, Navigation(), make_params(n_blocks=3))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reward: must be a Reward"):
        make_train(PPOConfig(torso="mlp"), Navigation(), make_params(n_blocks=3), reward=lambda *a: a)
