"""PPO learns to help: with the prosocial caregiver present, every seed of a small vmapped batch makes the helped
agent reach its goal at least twice as often as the best policy that never walks (turning and lifting in place,
which costs nothing and helps only when the boulder happens to be adjacent), and clearly more than a random one.

The learner is the quick preset's Figure 7 learner (its MLP reads each observation channel divided by its largest
code) at the preset's socialization budget; seeds shift with ``INTERNALIZE_SEED_OFFSET`` so the same test checks
other seed sets."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.networks import ActorCritic
from internalize.agents.ppo import check_finite, make_seeds_runner, make_train
from internalize.agents.scripted import run_policy_jit
from internalize.experiments import phases
from internalize.experiments.paper import paper_experiment
from internalize.seeding import seed_offset
from internalize.worlds.prosocial import Prosocial, make_params

WORLD = Prosocial()
PARAMS = make_params()


def helped_goals_per_episode(key: jax.Array, probs: tuple[float, ...], n_envs: int = 256,
                             n_steps: int = 2000) -> float:
    """Helped agent's goals per 100-step episode of a learner drawing actions i.i.d. from ``probs``.

    5,120 episodes: helping by chance is rare, and with 640 the in-place estimate swung from 0.40 to 0.48 between
    seed sets, moving the test's threshold with it."""
    def policy(key, state, params):
        return jax.random.choice(key, WORLD.num_actions, p=jnp.asarray(probs))

    out = run_policy_jit(policy, key, PARAMS, n_envs, n_steps, WORLD)
    return float(out.channels.event.sum() / out.truncated.sum())


@pytest.mark.slow
def test_caregiver_present_learner_helps_twice_as_much_as_the_in_place_policy():
    k = seed_offset()
    random_hpe = helped_goals_per_episode(jax.random.key(7 + k), (0.2,) * 5)
    in_place = helped_goals_per_episode(jax.random.key(8 + k), (1 / 3, 1 / 3, 0.0, 1 / 3, 0.0))  # left, right, lift
    assert 0.05 < random_hpe < 0.6 and in_place < 0.6, (random_hpe, in_place)
    exp = paper_experiment("fig7", "quick", seed_offset=0)
    config = phases.ppo_config(exp, exp.socialization_steps)  # the preset's learner and socialization budget
    runner = make_seeds_runner(make_train(config, WORLD, PARAMS))
    states, metrics = runner.run(runner.init(jax.random.split(jax.random.key(2024 + k), 3)), config.num_rollouts)
    metrics = jax.device_get(metrics)
    check_finite(metrics)
    hpe = np.asarray(metrics["goals_per_episode"])  # the rewarded event here is the helped agent's goal
    start, final = np.nanmean(hpe[:, :8], axis=1), np.nanmean(hpe[:, -16:], axis=1)
    msg = (f"random {random_hpe:.3f}, in place {in_place:.3f}; first rollouts {np.round(start, 2)}; "
           f"last 16 rollouts {np.round(final, 2)}")
    print(f"[offset {k}] prosocial learning: {msg}")  # the measured values, shown with pytest -rP
    assert (np.abs(start - random_hpe) < 0.25).all(), "an untrained policy is near-uniform: " + msg
    # Every seed at least doubles the in-place optimum (issue: "clearly learns to help"), and so beats random too.
    assert (final >= 2 * in_place).all() and (final > random_hpe + 0.3).all(), msg


def test_the_quick_learner_reads_each_channel_divided_by_its_largest_code():
    """The quick Figure 7 policy's input lies in [0, 1] with every channel's largest code at 1 (object 10,
    colour 5, and the flags is_goal, is_boulder, is_helped_agent), where one factor of 1/10 for every channel left
    the flags at 0.1; the factors apply along the channel axis, and a tuple of the wrong length is refused."""
    exp = paper_experiment("fig7", "quick", seed_offset=0)
    config = phases.ppo_config(exp, 0)
    channels = WORLD.observation_shape(PARAMS)[-1]
    scale = config.policy_input_scale(WORLD, channels)
    assert len(scale) == channels == 7 and phases.isr_config(exp).obs_scale == scale  # the ISR reads the same
    obs, _ = WORLD.reset(jax.random.key(0), PARAMS)
    x = np.asarray(obs, np.float32) * np.asarray(scale, np.float32)
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x[..., [0, 1, 3, 4, 5]].max(axis=(0, 1)), 1.0)
    # Channel c is multiplied by scale[c]: with a zero factor on the last channel it no longer moves the outputs.
    net = ActorCritic(WORLD.num_actions, torso="mlp", obs_scale=(0.1,) * (channels - 1) + (0.0,))
    params = net.init(jax.random.key(1), obs[None])
    flipped = obs.at[..., -1].set(1)
    np.testing.assert_array_equal(np.asarray(net.apply(params, obs)[0]), np.asarray(net.apply(params, flipped)[0]))
    assert not np.array_equal(np.asarray(net.apply(params, obs)[0]),
                              np.asarray(net.apply(params, obs.at[..., 4].set(1))[0]))
    with pytest.raises(ValueError, match="obs_channel_scale"):
        make_train(dataclasses.replace(config, obs_channel_scale=scale[:4], total_timesteps=1024), WORLD, PARAMS)
