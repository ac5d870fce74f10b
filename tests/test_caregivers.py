"""Several caregivers (social/caregiver.py, social/internalization.py): each pays for its own event of the world, is
present on its own schedule, and the learner is paid the sum; the hidden true R_s is the sum of their noise-free
rewards. One caregiver of the world's own event stays exactly the paper's setting."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.social.caregiver import CaregivenWorld, Caregiver, caregiven, resolve_events
from internalize.social.internalization import social_reward
from internalize.social.presence import Presence
from internalize.social.utility import UtilityConfig
from internalize.worlds.base import Channels


def _random_steps(world, params, n_envs: int = 64, n_steps: int = 200, seed: int = 0):
    """(channels, states) of ``n_steps`` uniformly random actions in ``n_envs`` worlds, time-major."""
    step = jax.vmap(world.step, in_axes=(0, 0, 0, None))

    def one(state, key):
        k_act, k_env = jax.random.split(key)
        action = jax.random.randint(k_act, (n_envs,), 0, world.num_actions)
        _, state, channels, _ = step(jax.random.split(k_env, n_envs), state, action, params)
        return state, (channels, state)

    k_reset, k_run = jax.random.split(jax.random.key(seed))
    _, state = jax.vmap(world.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs), params)
    _, out = jax.jit(lambda s, k: jax.lax.scan(one, s, jax.random.split(k, n_steps)))(state, k_run)
    return jax.device_get(out)


@pytest.mark.expensive
def test_every_world_names_its_events_and_its_own_event_is_one_of_them():
    from internalize.worlds.navigation import Navigation
    from internalize.worlds.navigation import make_params as nav_params
    from internalize.worlds.peer import PeerNavigation
    from internalize.worlds.peer import make_params as peer_params
    from internalize.worlds.prosocial import Prosocial
    from internalize.worlds.prosocial import make_params as prosocial_params

    for world, params, own in [(Navigation(), nav_params(1), "goal"), (PeerNavigation(), peer_params(2), "goal"),
                               (Prosocial(), prosocial_params(), "helped_goal"),
                               (Prosocial(), prosocial_params(rewarded_event="boulder_lift"), "boulder_lift")]:
        channels, states = _random_steps(world, params, n_steps=100)
        assert set(channels.events) == set(world.events)
        np.testing.assert_array_equal(channels.events[own], channels.event)
        assert channels.event.sum() > 0, f"{type(world).__name__}: no {own} event to compare"
    # The peer's goals are the peer_goal events (the state counts them per episode).
    channels, states = _random_steps(PeerNavigation(), peer_params(2), n_steps=19)
    np.testing.assert_array_equal(channels.events["peer_goal"].sum(0), states.peer_goals[-1])
    assert states.peer_goals[-1].sum() > 0


@pytest.mark.expensive
def test_caregiven_world_reports_the_sum_of_the_caregivers_noise_free_rewards():
    from internalize.worlds.prosocial import Prosocial, make_params

    caregivers = resolve_events((Caregiver(reward=0.4), Caregiver(reward=0.1, event="boulder_lift", miss=0.5)),
                                "helped_goal", Prosocial.events)
    world = caregiven(Prosocial(), caregivers, "helped_goal")
    assert isinstance(world, CaregivenWorld) and world.num_actions == 5 and world.events == Prosocial.events
    channels, _ = _random_steps(world, make_params())
    helped, lifted = channels.events["helped_goal"], channels.events["boulder_lift"]
    assert helped.sum() >= 5 and lifted.sum() >= 20, (helped.sum(), lifted.sum())
    # Noise-free: the second caregiver's misses change what it pays, never the true R_s.
    np.testing.assert_array_equal(channels.social, np.float32(0.4) * helped + np.float32(0.1) * lifted)
    # The paper's one caregiver of the world's own event needs no wrapper: the world reports its R_s.
    plain = Prosocial()
    assert caregiven(plain, (Caregiver(),), "helped_goal") is plain


def _channels(n: int, helped: np.ndarray, lifted: np.ndarray) -> Channels:
    return Channels(jnp.full((n,), -0.045, jnp.float32), jnp.where(helped, 0.4, 0.0).astype(jnp.float32),
                    jnp.asarray(helped), {"helped_goal": jnp.asarray(helped), "boulder_lift": jnp.asarray(lifted)})


def _pay(schedules, caregivers, channels, n: int, key=None):
    key = jax.random.key(1) if key is None else key
    reward = social_reward(schedules, UtilityConfig(), caregiver=caregivers, obs_shape=(1,))
    state = reward.init_state(key, n)
    obs, action = jnp.zeros((n, 1), jnp.uint8), jnp.zeros((n,), jnp.int32)
    fn = jax.jit(lambda s, k: reward.reward_fn(s, obs, action, channels, obs, jnp.ones((n,), bool), 0, k))
    u, state, info = jax.device_get(fn(state, key))
    return u, state, info


def test_several_caregivers_are_present_on_their_own_draws_and_the_learner_is_paid_the_sum():
    n = 20_000
    rng = np.random.default_rng(0)
    helped, lifted = rng.random(n) < 0.3, rng.random(n) < 0.5
    channels = _channels(n, helped, lifted)
    caregivers = (Caregiver(reward=0.4, event="helped_goal"), Caregiver(reward=0.1, event="boulder_lift"))

    # The first never comes, the second comes to half the episodes.
    u, state, info = _pay((Presence("never"), Presence("random", rate=0.5)), caregivers, channels, n)
    assert state.presence.shape == (2, n) and not state.presence[0].any()
    second = state.presence[1]
    assert abs(second.mean() - 0.5) < 4 * math.sqrt(0.25 / n)
    np.testing.assert_array_equal(info["presence"], second.astype(np.float32))
    np.testing.assert_array_equal(info["paid"], np.where(second & lifted, np.float32(0.1), 0.0))
    np.testing.assert_allclose(u, -0.045 + info["paid"], rtol=0, atol=1e-7)  # U = R_e + the present ones' pay

    # Both present: the sum of both payments where both events happen.
    u, state, info = _pay(Presence("always"), caregivers, channels, n)
    assert state.presence.all()
    np.testing.assert_allclose(info["paid"], 0.4 * helped + 0.1 * lifted, rtol=0, atol=1e-7)
    assert ((info["paid"] > 0.45) == (helped & lifted)).all() and (helped & lifted).any()

    # Independent draws: two caregivers at rate 0.5 are both present in a quarter of the episodes.
    _, state, _ = _pay((Presence("random", rate=0.5),) * 2, caregivers, channels, n)
    both = (state.presence[0] & state.presence[1]).mean()
    assert abs(both - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n), both


def test_one_caregiver_in_a_tuple_is_the_paper_setting_and_bad_events_are_refused():
    n = 1000
    rng = np.random.default_rng(1)
    channels = _channels(n, rng.random(n) < 0.3, rng.random(n) < 0.5)
    alone = _pay(Presence("random", rate=0.5), Caregiver(noise=0.1, miss=0.2), channels, n)
    in_tuple = _pay((Presence("random", rate=0.5),), (Caregiver(noise=0.1, miss=0.2),), channels, n)
    for a, b in zip(jax.tree.leaves(alone), jax.tree.leaves(in_tuple), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"presence: 3 schedules for 2 caregivers"):
        social_reward((Presence(),) * 3, UtilityConfig(), caregiver=(Caregiver(), Caregiver()))
    with pytest.raises(ValueError, match=r"caregiver\[1\]\.event: got 'lift'; allowed: helped_goal \| boulder_lift"):
        resolve_events((Caregiver(), Caregiver(event="lift")), "helped_goal", ("helped_goal", "boulder_lift"))
