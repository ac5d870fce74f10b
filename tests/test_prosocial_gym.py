"""The prosocial Gymnasium adapter and its frames: env checker, seeding, reward channels, truncation, bad input."""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from internalize.worlds.gym import ProsocialEnv
from internalize.worlds.render import BLUE, GREEN, GREY, RED, render_prosocial_frame, render_prosocial_frames

CORRIDOR = """
#######
#H.B.G#
####.##
####L##
#######
#######
#######
"""


def _trajectory(env: ProsocialEnv, seed: int, actions) -> list:
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        out.append(env.step(a))
    return out


def _same(a: list, b: list) -> bool:
    return np.array_equal(a[0], b[0]) and all(
        np.array_equal(x[0], y[0]) and x[1:] == y[1:] for x, y in zip(a[1:], b[1:], strict=True)
    )


def test_passes_gymnasium_env_checker():
    env = gymnasium.make("internalize/Prosocial-v0", render_mode="rgb_array")
    check_env(env.unwrapped)
    assert env.observation_space == gymnasium.spaces.Box(0, 255, (9, 9, 7), np.uint8)
    assert env.action_space == gymnasium.spaces.Discrete(5)
    check_env(gymnasium.make("internalize/Prosocial-v0", layout=CORRIDOR, drop="noop").unwrapped,
              skip_render_check=True)


def test_same_seed_same_trajectory_and_different_seeds_differ():
    actions = [2, 2, 0, 3, 0, 2, 4, 1, 2, 3] * 4
    first = _trajectory(ProsocialEnv(), 7, actions)
    assert _same(first, _trajectory(ProsocialEnv(), 7, actions))
    assert not any(_same(first, _trajectory(ProsocialEnv(), s, actions)) for s in (8, 2**40 + 7))


def _corridor_policy(state) -> int:
    """Clear the corridor: up to (4, 1), lift the boulder on the west, carry it down, drop it at (4, 3)."""
    pos, facing = tuple(int(v) for v in np.asarray(state.learner_pos)), int(state.learner_dir)
    if bool(state.carrying):
        want = {(4, 1): 1, (4, 2): 1}.get(pos)
        return 4 if pos == (4, 2) and facing == 1 else (2 if facing == want else 1)
    if not bool(state.boulder_on_grid) or not np.array_equal(state.boulder_pos, [3, 1]):
        return 0
    want = {(4, 3): 3, (4, 2): 3, (4, 1): 2}[pos]
    if facing != want:
        return 1
    return 3 if pos == (4, 1) else 2


def test_reward_is_extrinsic_plus_social_and_truncation_at_100():
    env = ProsocialEnv(layout=CORRIDOR)
    env.reset(seed=0)
    goals = 0
    for t in range(100):
        action = _corridor_policy(env.state)
        obs, reward, terminated, truncated, info = env.step(action)
        assert set(info) == {"extrinsic", "social", "event", "helped_goal", "lifted"} and obs.shape == (9, 9, 7)
        assert reward == pytest.approx(info["extrinsic"] + info["social"]) and terminated is False
        assert info["extrinsic"] == pytest.approx(-0.009 if action == 2 else 0.0)
        assert info["social"] == pytest.approx(0.4 if info["helped_goal"] else 0.0)
        assert info["event"] == info["helped_goal"] and info["lifted"] == (action == 3)
        assert truncated == (t == 99)
        goals += info["helped_goal"]
    assert goals >= 5, "the corridor is cleared again after every goal"


def _until_lifted(env: ProsocialEnv) -> list:
    """Step the corridor policy until the lift (at most 12 steps); the (state, info) after each step."""
    out = []
    for _ in range(12):
        info = env.step(_corridor_policy(env.state))[4]
        out.append((env.state, info))
        if info["lifted"]:
            return out
    raise AssertionError("the corridor policy did not lift the boulder")


def test_instrumental_option_passes_through():
    env = ProsocialEnv(layout=CORRIDOR, rewarded_event="boulder_lift")
    env.reset(seed=1)
    infos = [info for _, info in _until_lifted(env)]
    assert infos[-1]["event"] and infos[-1]["social"] == pytest.approx(0.4)
    assert not any(i["event"] or i["social"] for i in infos[:-1])


@pytest.mark.parametrize("action", [5, -1, 2.0, "3", None, True, np.array([0, 1])])
def test_invalid_action_is_a_clear_value_error(action):
    env = ProsocialEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_walls": 99}, "n_walls"), ({"drop": "x"}, "drop"), ({"render_mode": "human"}, "render_mode"),
    ({"tile_size": 1}, "tile_size"), ({"colour": "red"}, "colour"),
])
def test_bad_constructor_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ProsocialEnv(**kwargs)


def test_step_before_reset_is_an_error():
    with pytest.raises(RuntimeError, match="reset"):
        ProsocialEnv().step(0)


def _pixel(frame, cell, tile, frac=(0.5, 0.5)) -> tuple[int, ...]:
    return tuple(int(v) for v in frame[int((cell[1] + frac[1]) * tile), int((cell[0] + frac[0]) * tile)])


def test_frames_show_boulder_agents_goal_and_carrying():
    env = ProsocialEnv(render_mode="rgb_array", tile_size=16, layout=CORRIDOR)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (112, 112, 3) and frame.dtype == np.uint8
    assert _pixel(frame, (3, 1), 16) == BLUE and _pixel(frame, (5, 1), 16) == GREEN  # boulder, goal
    assert _pixel(frame, (1, 1), 16) == GREEN and _pixel(frame, (4, 3), 16) == RED  # helped agent, learner
    assert _pixel(frame, (1, 1), 16, (0.5, 0.05)) == (100, 100, 100), "agents are triangles on the floor"
    assert _pixel(frame, (0, 0), 16) == GREY
    states = [env.state] + [state for state, _ in _until_lifted(env)]
    carrying = env.render()
    assert _pixel(carrying, (3, 1), 16) == (0, 0, 0), "the boulder has left the floor"
    assert _pixel(carrying, (4, 1), 16) == BLUE, "the learner shows the boulder it carries"
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    frames = render_prosocial_frames(stacked, tile_size=16)
    assert len(frames) == len(states) and np.array_equal(frames[-1], carrying) and np.array_equal(frames[0], frame)
    with pytest.raises(ValueError, match="tile_size"):
        render_prosocial_frame(env.state, tile_size=2)
    assert ProsocialEnv().render() is None
