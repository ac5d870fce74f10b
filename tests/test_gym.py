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
from internalize.worlds.render import BLACK, GREEN, GREY, RED, render_frame

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
    for _ in range(400):
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


def _cell_centre(frame: np.ndarray, x: int, y: int, tile: int) -> tuple[int, ...]:
    """The colour at the centre of grid cell (x, y) of a frame (row 0 of the image is grid row y = 0)."""
    return tuple(int(v) for v in frame[y * tile + tile // 2, x * tile + tile // 2])


def test_render_returns_a_frame():
    tile = 16
    env = NavigationEnv(render_mode="rgb_array", tile_size=tile)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (7 * tile, 7 * tile, 3) and frame.dtype == np.uint8
    # The frame shows the environment's current state: red agent, green goal, grey walls, black floor, each at
    # its own cell (a blank or stale frame fails here).
    walls = np.asarray(env.state.walls)
    agent, goal = tuple(int(v) for v in env.state.agent_pos), tuple(int(v) for v in env.state.goal_pos)
    assert _cell_centre(frame, *agent, tile) == RED, (agent, _cell_centre(frame, *agent, tile))
    assert _cell_centre(frame, *goal, tile) == GREEN, (goal, _cell_centre(frame, *goal, tile))
    for y in range(7):
        for x in range(7):
            if (x, y) in (agent, goal):
                continue
            want = GREY if walls[y, x] else BLACK
            assert _cell_centre(frame, x, y, tile) == want, ((x, y), _cell_centre(frame, x, y, tile), want)
    assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all(), "border walls"
    assert int(walls[1:-1, 1:-1].sum()) == 3, "the default world has 3 random blocks"
    np.testing.assert_array_equal(frame, render_frame(env.state, tile))
    # A turn changes the picture only inside the agent's cell (the triangle turns); the rest is unchanged.
    env.step(0)
    turned = env.render()
    changed = np.argwhere((turned != frame).any(axis=-1))
    assert len(changed) > 0, "the frame after a turn equals the frame before"
    cells = {(int(px) // tile, int(py) // tile) for py, px in changed}
    assert cells == {agent}, cells
    assert NavigationEnv().render() is None


@pytest.mark.parametrize("action", [3, -1, 1.0, "2", None, True, np.array([0, 1])])
def test_invalid_action_is_a_clear_value_error(action):
    env = NavigationEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(action)


def test_numpy_integer_actions_are_accepted():
    # Each NumPy form of an action gives exactly the transition its Python int gives, from the same state.
    numpy_env, int_env = NavigationEnv(), NavigationEnv()
    numpy_env.reset(seed=0)
    int_env.reset(seed=0)
    forms = [np.int64(2), np.int32(0), np.array(1), np.array([2]), np.uint8(2), np.int16(1), np.array([[0]])]
    for action in forms:
        want = int(np.asarray(action).reshape(()))
        before = (tuple(int(v) for v in int_env.state.agent_pos), int(int_env.state.agent_dir))
        got = numpy_env.step(action)
        expected = int_env.step(want)
        np.testing.assert_array_equal(got[0], expected[0], err_msg=f"observation after {action!r} vs {want}")
        assert got[1:] == expected[1:], (action, got[1:], expected[1:])
        for field in ("agent_pos", "agent_dir", "goal_pos", "walls", "step_count"):
            np.testing.assert_array_equal(getattr(numpy_env.state, field), getattr(int_env.state, field),
                                          err_msg=f"state.{field} after {action!r}")
        # The action did what its index means (not, say, always action 0): turns change the heading by one.
        direction = int(int_env.state.agent_dir)
        if want == 0:
            assert direction == (before[1] - 1) % 4, (action, before, direction)
        elif want == 1:
            assert direction == (before[1] + 1) % 4, (action, before, direction)
        else:
            assert direction == before[1] and got[2:4] == (False, False)
            assert got[1] == pytest.approx(-0.045) or got[4]["goal_reached"], got


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


def test_importing_the_package_registers_the_gymnasium_ids():
    """``import internalize`` alone makes the ids available (as ``import minigrid`` does), in a fresh interpreter
    that never imports ``internalize.worlds.gym`` itself."""
    import subprocess
    import sys

    code = ("import gymnasium, internalize, sys\n"
            "from gymnasium.utils.env_checker import check_env\n"
            "assert 'internalize.worlds.gym' not in sys.modules and 'jax' not in sys.modules, 'registering is cheap'\n"
            "for env_id in [k for k in gymnasium.registry if k.startswith('internalize/')]:\n"
            "    env = gymnasium.make(env_id)\n"
            "    check_env(env.unwrapped, skip_render_check=True)\n"
            "    obs, _ = env.reset(seed=0)\n"
            "    print(env_id, obs.shape, type(env.unwrapped).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "internalize/Navigation-v0 (9, 9, 4) NavigationEnv", "internalize/NavigationMap-v0 (9, 9, 4) NavigationEnv",
        "internalize/Prosocial-v0 (9, 9, 7) ProsocialEnv", "internalize/Peer-v0 (9, 9, 5) PeerEnv",
        "internalize/TwoGoal-v0 (9, 9, 5) TwoGoalEnv"], out.stdout
    from internalize.worlds.kinds import KINDS

    # Every world kind names a registered id (its record is what play, the report and the file schema read).
    assert {k.gym_id for k in KINDS.values()} <= {line.split()[0] for line in out.stdout.splitlines()}


def test_the_two_goal_env_reports_each_goal_and_draws_both():
    """Walking the scripted nearest-goal agent through TwoGoalEnv: info's goal flags agree with the reward, each
    colour is reached, and a frame shows a green and a blue goal cell."""
    import jax

    from internalize.worlds import two_goal
    from internalize.worlds.gym import TwoGoalEnv

    env = TwoGoalEnv(render_mode="rgb_array", tile_size=8)
    env.reset(seed=1)
    seen = {"goal_green": 0, "goal_blue": 0}
    policy = jax.jit(two_goal.nearest_goal_policy)
    for t in range(120):
        action = int(policy(jax.random.key(t), env.state, env.params))
        _, reward, terminated, truncated, info = env.step(action)
        assert not terminated and info["goal_reached"] == (info["goal_green"] or info["goal_blue"])
        assert np.isclose(reward, 0.4 if info["goal_reached"] else info["extrinsic"])
        seen = {k: v + info[k] for k, v in seen.items()}
        if truncated:
            env.reset()
    assert min(seen.values()) >= 6, seen
    frame = env.render()
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert (0, 255, 0) in colours and (0, 0, 255) in colours and frame.shape == (7 * 8, 7 * 8, 3)


def test_the_peer_world_counts_the_peers_goals_and_draws_the_peer_as_the_learner_sees_it():
    from internalize.worlds.gym import PeerEnv

    env = PeerEnv(view="allocentric", similarity="kind", peer_noise=0.0)
    env.reset(seed=3)
    infos = [env.step(1)[4] for _ in range(20)]  # the learner only turns: the peer walks to the goal
    assert infos[-1]["peer_goals"] >= 1, infos[-1]
    assert not any(i["goal_reached"] for i in infos) and all(i["social"] == 0 for i in infos)
    for key in ("peer_goals", "peer_blocked"):
        assert [i[key] for i in infos] == sorted(i[key] for i in infos), f"{key}: a running count"
    for similarity, colour in (("identical", (255, 0, 0)), ("colour", (0, 0, 255)), ("kind", (0, 0, 255))):
        env = PeerEnv(render_mode="rgb_array", tile_size=16, similarity=similarity)
        env.reset(seed=5)
        frame, s = env.render(), env.state
        assert frame.shape == (7 * 16, 7 * 16, 3)

        def at(pos, fx=0.5, fy=0.5, frame=frame):
            return tuple(int(v) for v in frame[int((int(pos[1]) + fy) * 16), int((int(pos[0]) + fx) * 16)])

        assert at(s.goal_pos) == (0, 255, 0) and at(s.agent_pos, 0.35) == (255, 0, 0)
        assert at(s.peer_pos) == (255, 255, 255), "the viewer's marker dot on the peer"
        # Beside the dot, the peer's body: a ball fills left of centre whatever its heading; a triangle's base is
        # on the side it faces away from, so look at the point a quarter tile behind the centre.
        back = {0: (0.3, 0.5), 1: (0.5, 0.3), 2: (0.7, 0.5), 3: (0.5, 0.7)}[int(s.peer_dir)]
        assert at(s.peer_pos, *back) == colour, (similarity, at(s.peer_pos, *back))
