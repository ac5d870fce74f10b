"""The caregiver (social/caregiver.py, social/presence.py): what it pays, presence schedules, per-episode draws,
bad input."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.social.caregiver import Caregiver, paid_reward
from internalize.social.presence import Presence, draw_presence, presence_probability, update_presence
from internalize.worlds.base import Channels


def _p(schedule: Presence, steps) -> np.ndarray:
    return np.asarray(jax.jit(presence_probability, static_argnums=0)(schedule, jnp.asarray(steps)))


def test_exact_caregiver_pays_the_worlds_reward_and_sets_its_size():
    ch = Channels(jnp.array([-0.045, 0.0, 0.0]), jnp.array([0.0, 0.4, 0.0]), jnp.array([False, True, False]))
    paid = paid_reward(Caregiver(), ch, jax.random.key(0))
    np.testing.assert_array_equal(paid, np.float32([0.0, 0.4, 0.0]))
    from internalize.worlds.navigation import make_params

    assert float(Caregiver(reward=1.5).world_params(make_params(1)).goal_reward) == 1.5
    with pytest.raises(ValueError, match="caregiver.reward: got inf"):
        Caregiver(reward=float("inf"))
    for bad in ({"miss": 1.5}, {"false_reward": -0.1}, {"noise": -1.0}, {"presence": "always"}):
        with pytest.raises(ValueError, match=f"caregiver.{next(iter(bad))}"):
            Caregiver(**bad)


def test_inconsistent_caregiver_misses_pays_falsely_and_adds_noise_at_the_configured_rates():
    n = 200_000
    event = jnp.arange(n) % 2 == 0  # half the steps deserve a reward
    ch = Channels(jnp.zeros(n), jnp.where(event, 0.4, 0.0), event)
    caregiver = Caregiver(reward=0.4, noise=0.1, miss=0.25, false_reward=0.05)
    paid = np.asarray(jax.jit(paid_reward, static_argnums=0)(caregiver, ch, jax.random.key(3)))
    ev = np.asarray(event)
    paid_on_event, paid_off_event = paid[ev] != 0, paid[~ev] != 0

    def se(p: float) -> float:  # four binomial standard errors
        return 4 * math.sqrt(p * (1 - p) / (n // 2))

    assert abs(paid_on_event.mean() - 0.75) < se(0.75), "a quarter of the deserved rewards are missed"
    assert abs(paid_off_event.mean() - 0.05) < se(0.05), "5% of the other steps are paid"
    amounts = np.concatenate([paid[ev][paid_on_event], paid[~ev][paid_off_event]])
    assert abs(amounts.mean() - 0.4) < 4 * 0.1 / math.sqrt(amounts.size)
    assert abs(amounts.std() - 0.1) < 0.005, "Gaussian noise of standard deviation 0.1 on every payment"


def test_always_never_and_until_switch_at_the_right_step():
    steps = np.arange(0, 300)
    np.testing.assert_array_equal(_p(Presence("always"), steps), 1.0)
    np.testing.assert_array_equal(_p(Presence("never"), steps), 0.0)
    until = Presence("until", switch_step=120)
    np.testing.assert_array_equal(_p(until, steps), (steps < 120).astype(np.float32))
    # The draw is exact for a deterministic schedule, whatever the key.
    for seed in range(3):
        drawn = draw_presence(until, jax.random.key(seed), jnp.array([0, 119, 120, 121, 10_000]))
        np.testing.assert_array_equal(drawn, [True, True, False, False, False])


def test_linear_and_exponential_follow_their_formulas():
    lin = Presence("linear", p0=0.9, p1=0.1, start=100, end=500)
    steps = np.array([0, 100, 200, 300, 499, 500, 10_000])
    expected = [0.9, 0.9, 0.9 - 0.8 * 0.25, 0.5, 0.9 - 0.8 * 399 / 400, 0.1, 0.1]
    np.testing.assert_allclose(_p(lin, steps), expected, rtol=1e-6)
    # Rising schedules are allowed too (p1 > p0); p0/p1 default to 1 -> 0.
    np.testing.assert_allclose(_p(Presence("linear", end=10), [0, 5, 10]), [1.0, 0.5, 0.0], rtol=1e-6)

    exp = Presence("exponential", p0=0.8, start=50, half_life=1000.0)
    steps = np.array([0, 50, 1050, 2050, 550, 100_000])
    expected = [0.8, 0.8, 0.4, 0.2, 0.8 * 2 ** -0.5, 0.8 * 2 ** (-99_950 / 1000)]
    np.testing.assert_allclose(_p(exp, steps), expected, rtol=1e-5, atol=1e-12)


def test_random_presence_frequency_matches_the_rate():
    n, rate = 20_000, 0.3
    schedule = Presence("random", rate=rate)
    np.testing.assert_allclose(_p(schedule, [0, 7, 10**6]), rate, rtol=1e-6)
    keys = jax.random.split(jax.random.key(0), n)
    drawn = np.asarray(jax.vmap(lambda k: draw_presence(schedule, k, 5))(keys))
    sd = math.sqrt(rate * (1 - rate) / n)
    assert abs(drawn.mean() - rate) < 4 * sd, (drawn.mean(), rate, sd)
    # A decaying schedule's draws follow its probability at the step drawn.
    lin = Presence("linear", p0=1.0, p1=0.0, start=0, end=1000)
    drawn = np.asarray(jax.vmap(lambda k: draw_presence(lin, k, 800))(keys))
    assert abs(drawn.mean() - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)


def _simulate(schedule: Presence, n_steps: int, episode_len: int, seed: int = 0) -> np.ndarray:
    """Presence at every step of consecutive episodes of ``episode_len`` steps, as a training loop would hold it."""

    def body(present, step):
        key = jax.random.fold_in(jax.random.key(seed), step)
        present = update_presence(schedule, key, step, step % episode_len == 0, present)
        return present, present

    _, out = jax.lax.scan(body, jnp.array(False), jnp.arange(n_steps))
    return np.asarray(out)


def test_stochastic_presence_is_constant_within_an_episode():
    episode_len, n_episodes = 20, 400
    for schedule in (Presence("random", rate=0.5), Presence("linear", p0=0.9, p1=0.1, end=8000)):
        per_step = _simulate(schedule, episode_len * n_episodes, episode_len).reshape(n_episodes, episode_len)
        assert (per_step == per_step[:, :1]).all(), "presence changed within an episode"
        assert 0 < per_step[:, 0].sum() < n_episodes, "presence should vary between episodes"
    # The linear schedule is more often present early than late.
    per_episode = per_step[:, 0]
    assert per_episode[:100].mean() > per_episode[-100:].mean() + 0.3


def test_environments_sharing_a_step_get_independent_draws():
    n_envs, rate = 4000, 0.5
    schedule = Presence("random", rate=rate)
    current = jnp.zeros((n_envs,), bool)
    start = jnp.arange(n_envs) % 2 == 0  # half the envs start an episode at this (shared) global step
    out = np.asarray(update_presence(schedule, jax.random.key(3), jnp.int32(100), start, current))
    assert out.shape == (n_envs,)
    assert not out[1::2].any(), "envs in mid-episode must keep their presence"
    started = out[::2]
    assert abs(started.mean() - rate) < 4 * math.sqrt(rate * (1 - rate) / started.size)
    # Deterministic kinds broadcast their value to every env.
    np.testing.assert_array_equal(update_presence(Presence("until", switch_step=50), jax.random.key(0), 49, start,
                                                  current), np.ones(n_envs, bool))


def test_until_switches_mid_episode_at_the_exact_step():
    out = _simulate(Presence("until", switch_step=47), 100, episode_len=20)
    np.testing.assert_array_equal(out, np.arange(100) < 47)
    assert not Presence("until", switch_step=47).per_episode and Presence("random", rate=0.1).per_episode


def test_validation_errors_name_field_value_and_allowed():
    with pytest.raises(ValueError, match="kind: must be one of always, never, until, linear, exponential, random"):
        Presence("sometimes")
    with pytest.raises(ValueError, match="switch_step: required for presence kind 'until'"):
        Presence("until")
    with pytest.raises(ValueError, match="switch_step: must be a non-negative integer step, got -1"):
        Presence("until", switch_step=-1)
    with pytest.raises(ValueError, match=r"rate: must be a probability in \[0, 1\], got 1.5"):
        Presence("random", rate=1.5)
    with pytest.raises(ValueError, match=r"p0: must be a probability in \[0, 1\], got -0.1"):
        Presence("linear", p0=-0.1, end=10)
    with pytest.raises(ValueError, match="end: must be greater than start"):
        Presence("linear", start=10, end=10)
    with pytest.raises(ValueError, match="half_life: must be a positive finite number"):
        Presence("exponential", half_life=0.0)
    with pytest.raises(ValueError, match="rate: not used by presence kind 'until'"):
        Presence("until", switch_step=5, rate=0.5)
    with pytest.raises(ValueError, match="switch_step: 120833 is beyond the phase budget of 120832 steps"):
        Presence("until", switch_step=120_833).validate_for_budget(120_832)
    with pytest.raises(ValueError, match="end: the linear decay ends at step 2000, beyond the phase budget"):
        Presence("linear", end=2000).validate_for_budget(1000)
    with pytest.raises(ValueError, match="total_steps: must be a positive integer"):
        Presence("always").validate_for_budget(0)
    # Valid edge cases pass.
    Presence("until", switch_step=120_832).validate_for_budget(120_832)
    Presence("until", switch_step=0).validate_for_budget(10)
    Presence("exponential", half_life=10.0).validate_for_budget(5)
