"""Scripted agents: the BFS distance field, the shortest-path planner's moves and score, the random policy,
and the ``demo`` / ``play`` commands that show them."""

from __future__ import annotations

from collections import deque

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from internalize.agents.scripted import (
    POLICIES,
    UNREACHABLE,
    distance_to_goal,
    episode_totals,
    random_policy,
    run_policy_jit,
    shortest_path_action,
)
from internalize.cli import app
from internalize.worlds import grid
from internalize.worlds.navigation import NavState, make_params

N_EPISODES = 256  # the demo test below asks for the same number, so both share one compiled program
PARAMS = make_params(n_blocks=3)
planner = jax.jit(shortest_path_action)


def _bfs(walls: np.ndarray, goal: tuple[int, int]) -> np.ndarray:
    """Plain-Python breadth-first distances [y, x] from ``goal`` = (x, y); UNREACHABLE where no path."""
    dist = np.full(walls.shape, UNREACHABLE, np.int64)
    dist[goal[1], goal[0]] = 0
    queue = deque([goal])
    while queue:
        x, y = queue.popleft()
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nx, ny = x + dx, y + dy
            if not walls[ny, nx] and dist[ny, nx] == UNREACHABLE:
                dist[ny, nx] = dist[y, x] + 1
                queue.append((nx, ny))
    return dist


def _state(walls_interior: np.ndarray, goal, agent, direction) -> NavState:
    walls = np.ones((7, 7), bool)
    walls[1:6, 1:6] = walls_interior
    return NavState(jnp.asarray(walls), jnp.array(goal, jnp.int32), jnp.array(agent, jnp.int32),
                    jnp.asarray(direction, jnp.int32), jnp.asarray(0, jnp.int32))


def test_distance_field_matches_python_bfs():
    n = 64
    k_walls, k_goal = jax.random.split(jax.random.key(3))
    interior = np.asarray(jax.random.bernoulli(k_walls, 0.35, (n, 5, 5)))
    picks = np.asarray(jax.random.randint(k_goal, (n,), 0, 25))
    walls = np.ones((n, 7, 7), bool)
    walls[:, 1:6, 1:6] = interior
    goals = np.zeros((n, 2), np.int32)
    for i in range(n):
        free = np.argwhere(~walls[i])  # (y, x) rows
        y, x = free[picks[i] % len(free)]
        goals[i] = (x, y)
    ours = np.asarray(jax.jit(jax.vmap(distance_to_goal))(jnp.asarray(walls), jnp.asarray(goals)))
    unreachable_seen = False
    for i in range(n):
        want = _bfs(walls[i], tuple(goals[i]))
        np.testing.assert_array_equal(ours[i], want, err_msg=f"layout {i}")
        unreachable_seen |= bool(((want == UNREACHABLE) & ~walls[i]).any())
    assert unreachable_seen, "the layouts should include free cells cut off from the goal"


@pytest.mark.parametrize(
    ("goal", "direction", "expected"),
    [
        ((3, 1), 3, grid.FORWARD),  # goal straight ahead (north)
        ((3, 1), 0, grid.LEFT),  # facing east, goal north: one left turn
        ((3, 1), 2, grid.RIGHT),  # facing west, goal north: one right turn
        ((3, 1), 1, grid.RIGHT),  # facing away: turn (two turns needed)
        ((5, 3), 0, grid.FORWARD),  # east
    ],
)
def test_planner_turns_toward_or_steps_along_the_shortest_path(goal, direction, expected):
    state = _state(np.zeros((5, 5), bool), goal, (3, 3), direction)
    assert int(planner(state, PARAMS)) == expected


def test_planner_turns_in_place_when_the_goal_is_walled_off():
    interior = np.zeros((5, 5), bool)
    interior[3, :] = True  # a full row of blocks at y = 4 cuts the grid in two
    for direction in range(4):
        state = _state(interior, (1, 5), (3, 2), direction)
        assert int(planner(state, PARAMS)) == grid.LEFT, "forward would only cost; turning is free"


@pytest.fixture(scope="module")
def runs():
    key = jax.random.key(1)
    return {name: run_policy_jit(POLICIES[name], key, PARAMS, N_EPISODES, 20) for name in ("random", "shortest-path")}


def _front_is_wall(traj) -> np.ndarray:
    states = jax.tree.map(np.asarray, traj.states)
    front = states.agent_pos + np.asarray(grid.DIR_TO_VEC)[states.agent_dir]
    t, e = np.indices(states.agent_dir.shape)
    return states.walls[t, e, front[..., 1], front[..., 0]]


def test_shortest_path_scores_far_above_random(runs):
    goals = {name: float(np.mean(episode_totals(traj, 20)[0])) for name, traj in runs.items()}
    returns = {name: float(np.mean(episode_totals(traj, 20)[1])) for name, traj in runs.items()}
    # Optimal play reaches about 2-3 goals / episode (docs/paper-vs-reference.md, 'Navigation world').
    assert goals["shortest-path"] >= 2.0, goals
    assert goals["random"] <= 0.5, goals
    assert goals["shortest-path"] >= 5 * goals["random"], goals
    assert returns["shortest-path"] > 0.5 > 0 > returns["random"], returns


def test_shortest_path_never_walks_into_a_wall_and_each_step_gets_closer(runs):
    sp, rnd = runs["shortest-path"], runs["random"]
    forward = np.asarray(sp.actions) == grid.FORWARD
    assert not (_front_is_wall(sp) & forward).any()
    assert (_front_is_wall(rnd) & (np.asarray(rnd.actions) == grid.FORWARD)).sum() > 100, "random does bump"
    # Every forward move of the planner shortens the path to the goal by exactly one cell.
    states = jax.tree.map(np.asarray, sp.states)
    dist = np.asarray(jax.jit(jax.vmap(jax.vmap(distance_to_goal)))(sp.states.walls, sp.states.goal_pos))
    t, e = np.nonzero(forward[:-1] & ~np.asarray(sp.channels.event[:-1]) & ~np.asarray(sp.truncated[:-1]))
    x, y = states.agent_pos[t, e, 0], states.agent_pos[t, e, 1]
    x1, y1 = states.agent_pos[t + 1, e, 0], states.agent_pos[t + 1, e, 1]
    np.testing.assert_array_equal(dist[t + 1, e, y1, x1], dist[t, e, y, x] - 1)


def test_random_policy_is_uniform_over_actions():
    actions = np.asarray(jax.jit(jax.vmap(random_policy, in_axes=(0, None, None)))(
        jax.random.split(jax.random.key(0), 3000), None, None))
    counts = np.bincount(actions, minlength=4)
    assert counts[3] == 0 and all(900 < c < 1100 for c in counts[:3]), counts


def test_demo_command_prints_scores_and_writes_both_gifs(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--episodes", str(N_EPISODES), "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "random" in result.output and "shortest-path" in result.output
    for name in ("random.gif", "shortest_path.gif"):
        frames = iio.imread(out / name, index=None)
        assert frames.ndim == 4 and frames.shape[1:] == (224, 224, 3) and frames.shape[0] >= 2


def test_play_command_and_its_errors(tmp_path):
    runner = CliRunner()
    gif = tmp_path / "plus.gif"
    result = runner.invoke(app, ["play", "navigation", "--out", str(gif), "--map", "plus", "--steps", "20"])
    assert result.exit_code == 0, result.output
    assert gif.exists() and iio.imread(gif, index=None).shape[1:] == (224, 224, 3)
    # Usage errors exit with 2 (a crash would exit 1) and name what was wrong.
    bad_world = runner.invoke(app, ["play", "elsewhere", "--out", str(gif)])
    assert bad_world.exit_code == 2 and "elsewhere" in bad_world.output, bad_world.output
    bad_map = runner.invoke(app, ["play", "navigation", "--out", str(gif), "--map", "nowhere"])
    assert bad_map.exit_code == 2 and "map" in bad_map.output and "Built-in maps" in bad_map.output, bad_map.output
    bad_agent = runner.invoke(app, ["play", "navigation", "--out", str(gif), "--agent", "oracle"])
    assert bad_agent.exit_code == 2 and "oracle" in bad_agent.output, bad_agent.output
    help_text = runner.invoke(app, ["--help"])
    assert help_text.exit_code == 0 and "demo" in help_text.output and "play" in help_text.output


@pytest.mark.parametrize(("world", "agent", "event"), [("peer", "shortest-path", "goal(s)"),
                                                       ("prosocial", "random", "helped-agent goal(s)"),
                                                       ("two-goal", "shortest-path", "goal(s) (green or blue)")])
def test_play_records_the_scripted_agent_of_every_world(tmp_path, world, agent, event):
    """``play prosocial|peer|two-goal`` writes a GIF of that world's frames (drawn by its renderer) of a replay of the
    same agent from the same key; the summary counts the world's own rewarded event."""
    from internalize.agents.scripted import uniform_policy
    from internalize.cli import WorldName, _scripted_world
    from internalize.worlds.kinds import KINDS, load

    gif = tmp_path / f"{world}.gif"
    result = CliRunner().invoke(app, ["play", world, "--out", str(gif), "--steps", "40", "--tile-size", "8",
                                      "--seed", "3"])
    assert result.exit_code == 0, result.output
    env, params = _scripted_world(WorldName(world), None, None)
    policy = load(KINDS[world].scripted) if agent != "random" else uniform_policy(env.num_actions)
    replay = run_policy_jit(policy, jax.random.key(3), params, 1, 40, env)
    frames = KINDS[world].render(jax.tree.map(lambda x: x[:, 0], replay.states), 8, params)
    goals = int(np.asarray(replay.channels.event).sum())
    assert f"{agent} in {world}: 40 steps, {goals} {event}" in result.output, result.output
    written = iio.imread(gif, index=None)
    # The GIF writer merges repeated frames (a turn into a wall looks the same), so compare the first and the set.
    assert np.array_equal(written[0], frames[0]) and 2 <= written.shape[0] <= 40
    assert all(any(np.array_equal(w, f) for f in frames) for w in written)
    if world != "prosocial":
        assert goals >= 1, "the shortest-path learner reaches the world's goal within two episodes"
    else:
        assert set(np.asarray(replay.actions).ravel()) == set(range(5)), "random covers the five prosocial actions"


@pytest.mark.parametrize(("args", "message"), [
    (["prosocial", "--agent", "shortest-path"], "--agent: the prosocial world has no scripted helper; allowed there: "
                                                "random."),
    (["prosocial", "--map", "plus"], "--map: the prosocial world has no fixed maps; allowed: navigation, two-goal."),
    (["prosocial", "--blocks", "2"], "--blocks: the prosocial world's walls come from its layout bank"),
    (["peer", "--blocks", "9"], "n_blocks"),
])
def test_play_refuses_options_a_world_does_not_have(tmp_path, args, message):
    result = CliRunner().invoke(app, ["play", *args, "--out", str(tmp_path / "x.gif")], env={"COLUMNS": "240"})
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x.gif").exists()
