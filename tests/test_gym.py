"""The Gymnasium adapter: API conformance, seeding, reward channels, truncation, registration, bad input."""

from __future__ import annotations

import gymnasium
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from internalize.agents.scripted import shortest_path_action
from internalize.worlds.gym import NavigationEnv
from internalize.worlds.layouts import parse_map

planner = jax.jit(shortest_path_action)


def _trajectory(env: NavigationEnv, seed: int, actions) -> list[tuple]:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info))
    return out


def _same(a: list, b: list) -> bool:
    """Two trajectories from ``_trajectory`` are identical: observations, rewards, flags and infos."""
    if not np.array_equal(a[0], b[0]):
        return False
    return all(
        np.array_equal(x[0], y[0]) and x[1:4] == y[1:4] and x[4] == y[4] for x, y in zip(a[1:], b[1:], strict=True)
    )


def test_passes_gymnasium_env_checker():
    env = gymnasium.make("internalize/Navigation-v0", render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (9, 9, 4), np.uint8)
    assert env.action_space == gymnasium.spaces.Discrete(3)
    check_env(gymnasium.make("internalize/NavigationMap-v0", map="x").unwrapped, skip_render_check=True)


def test_same_seed_same_trajectory_and_different_seeds_differ():
    actions = [2, 2, 0, 2, 1, 2, 2, 2, 0, 2] * 3
    first = _trajectory(NavigationEnv(), 11, actions)
    again = _trajectory(NavigationEnv(), 11, actions)
    assert _same(first, again)
    # 2**40 + 11: large seeds must not be cut to their low 32 bits (which would give seed 11 again).
    other = [_trajectory(NavigationEnv(), seed, actions) for seed in (12, 13, 2**40 + 11)]
    assert not any(_same(first, o) for o in other)


def test_unseeded_resets_continue_the_seeded_stream():
    env = NavigationEnv()
    env.reset(seed=5)
    later = [env.reset()[0] for _ in range(4)]
    env.reset(seed=5)
    assert all(np.array_equal(a, env.reset()[0]) for a in later)
    assert len({a.tobytes() for a in later}) > 1, "resets without a seed must draw new layouts"


def test_reward_is_extrinsic_plus_social_with_channels_in_info():
    env = NavigationEnv(n_blocks=3)
    env.reset(seed=0)
    rng = np.random.default_rng(0)  # chooses actions only; the env's randomness is its own key chain
    seen = {"goal": 0, "forward": 0, "turn": 0}
    for t in range(400):
        # Mostly shortest-path moves (to reach goals), sometimes random (to bump into blocks and walls).
        action = int(planner(env.state, env.params)) if rng.random() < 0.7 else int(rng.integers(3))
        obs, reward, terminated, truncated, info = env.step(action)
        assert set(info) >= {"extrinsic", "social", "goal_reached"}
        assert reward == pytest.approx(info["extrinsic"] + info["social"])
        assert terminated is False and isinstance(reward, float) and obs.dtype == np.uint8
        if info["goal_reached"]:
            seen["goal"] += 1
            assert info["social"] == pytest.approx(0.4) and info["extrinsic"] == 0.0 and reward == pytest.approx(0.4)
        elif action == 2:
            seen["forward"] += 1
            assert info["extrinsic"] == pytest.approx(-0.045) and info["social"] == 0.0
        else:
            seen["turn"] += 1
            assert reward == 0.0 and info["social"] == 0.0
        if truncated:
            env.reset()
    assert seen["goal"] >= 30 and seen["forward"] >= 50 and seen["turn"] >= 50, seen


def test_truncated_exactly_at_step_20_never_terminated():
    env = NavigationEnv()
    env.reset(seed=3)
    flags = [env.step(t % 3)[2:4] for t in range(20)]
    assert [tr for _, tr in flags] == [False] * 19 + [True]
    assert not any(te for te, _ in flags)
    env.reset()
    assert env.step(0)[3] is False, "a new episode starts its step count again"


def test_max_steps_passes_through():
    env = NavigationEnv(max_steps=5)
    env.reset(seed=0)
    assert [env.step(1)[3] for _ in range(5)] == [False] * 4 + [True]


def test_registered_ids_and_kwargs():
    env = gymnasium.make("internalize/NavigationMap-v0").unwrapped
    assert np.array_equal(np.asarray(env.params.fixed_walls), parse_map("T"))
    assert int(env.params.n_blocks) == 0
    env = gymnasium.make("internalize/NavigationMap-v0", map="plus").unwrapped
    assert np.array_equal(np.asarray(env.params.fixed_walls), parse_map("plus"))
    env = gymnasium.make("internalize/Navigation-v0", check_reachable=False).unwrapped
    assert int(env.params.n_blocks) == 3 and not bool(env.params.check_reachable)
    env.reset(seed=1)
    assert int(np.asarray(env.state.walls)[1:-1, 1:-1].sum()) == 3


def test_render_returns_a_frame():
    env = NavigationEnv(render_mode="rgb_array", tile_size=16)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (7 * 16, 7 * 16, 3) and frame.dtype == np.uint8
    assert NavigationEnv().render() is None


@pytest.mark.parametrize("action", [3, -1, 1.0, "2", None, True, np.array([0, 1])])
def test_invalid_action_is_a_clear_value_error(action):
    env = NavigationEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_numpy_integer_actions_are_accepted():
    env = NavigationEnv()
    env.reset(seed=0)
    for action in (np.int64(2), np.int32(0), np.array(1), np.array([2])):
        env.step(action)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_blocks": 99}, "n_blocks"),
        ({"map": "nowhere"}, "map"),
        ({"render_mode": "human"}, "render_mode"),
        ({"tile_size": 0}, "tile_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_constructor_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        NavigationEnv(**kwargs)


def test_step_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        NavigationEnv().step(0)
