"""Rules of the two-goal navigation world: layouts, observation, rewards and events, counters, scripted policies."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.evaluate import evaluate
from internalize.agents.rollout import count_keys
from internalize.agents.scripted import run_policy_jit
from internalize.config_error import ConfigError
from internalize.worlds import grid
from internalize.worlds.two_goal import (
    TwoGoal,
    TwoGoalState,
    encode,
    goal_policy,
    make_params,
    nearest_goal_policy,
)

WORLD = TwoGoal()
step = jax.jit(WORLD.step)
batch_reset = jax.jit(jax.vmap(WORLD.reset, in_axes=(0, None)))
TWO_ROOMS = ["#######"] + ["#..#..#"] * 5 + ["#######"]


def _state(green, blue, agent, direction, blocks=(), steps=0) -> TwoGoalState:
    walls = np.ones((7, 7), bool)
    walls[1:6, 1:6] = False
    for x, y in blocks:
        walls[y, x] = True
    i32 = lambda v: jnp.asarray(v, jnp.int32)  # noqa: E731
    return TwoGoalState(jnp.asarray(walls), i32(green), i32(blue), i32(agent), i32(direction), i32(steps),
                        i32(0), i32(0), jnp.array(False), jnp.array(False))


def _layout_checks(states: TwoGoalState) -> tuple[np.ndarray, np.ndarray]:
    """(pieces on distinct free cells, both goals reachable from the agent) per env."""
    walls = np.asarray(states.walls)
    g, b, a = (np.asarray(p) for p in (states.green_pos, states.blue_pos, states.agent_pos))
    n = walls.shape[0]
    ok = np.array([
        not walls[i, g[i, 1], g[i, 0]] and not walls[i, b[i, 1], b[i, 0]] and not walls[i, a[i, 1], a[i, 0]]
        and len({tuple(g[i]), tuple(b[i]), tuple(a[i])}) == 3 for i in range(n)
    ])
    reach = np.asarray(jax.jit(jax.vmap(grid.reachable))(~states.walls, states.agent_pos))
    both = reach[np.arange(n), g[:, 1], g[:, 0]] & reach[np.arange(n), b[:, 1], b[:, 0]]
    return ok, both


def test_layouts_distinct_free_cells_exact_blocks_both_goals_reachable():
    params = make_params(3)
    obs, s = batch_reset(jax.random.split(jax.random.key(0), 500), params)
    ok, both = _layout_checks(s)
    assert ok.all() and both.all()
    assert (np.asarray(s.walls)[:, 1:6, 1:6].sum(axis=(1, 2)) == 3).all()
    assert np.asarray(s.agent_dir).min() == 0 and np.asarray(s.agent_dir).max() == 3
    # Both colours land all over the interior (the draw is not stuck on a few cells).
    for pos in (s.green_pos, s.blue_pos):
        assert len({tuple(p) for p in np.asarray(pos)}) > 15
    for name in ("step_count", "green_goals", "blue_goals", "goal_green", "goal_blue"):
        assert not np.asarray(getattr(s, name)).any(), name
    assert obs.shape == (500, 9, 9, 5) and obs.dtype == jnp.uint8


def test_unchecked_layouts_can_cut_a_goal_off_checked_ones_never():
    keys = jax.random.split(jax.random.key(1), 200)
    _, loose = batch_reset(keys, make_params(0, TWO_ROOMS, check_reachable=False))
    _, strict = batch_reset(keys, make_params(0, TWO_ROOMS))
    assert (~_layout_checks(loose)[1]).sum() > 50, "two rooms: a goal in the other room is common"
    assert _layout_checks(strict)[1].all()


def test_params_are_validated():
    with pytest.raises(ConfigError, match="n_blocks"):
        make_params(8, ["#####", "#...#", "#...#", "#...#", "#####"], size=5)  # 9 free cells: at most 6 blocks
    make_params(6, ["#####", "#...#", "#...#", "#...#", "#####"], size=5)
    with pytest.raises(ConfigError, match="map"):
        make_params(0, ["#####", "#..##", "#####", "#.#.#", "#####"], size=5)  # no three connected free cells
    for bad in ({"max_steps": 0}, {"step_cost": float("nan")}, {"goal_reward": True}, {"size": 4}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            make_params(1, **bad)
    with pytest.raises(ConfigError, match="colour"):
        goal_policy("red")


@pytest.mark.parametrize(
    "agent, direction, green, blue, blue_cell",
    [((1, 3), 0, (2, 3), (5, 1), (0, 2)),   # facing east: blue 4 ahead, 2 to the left
     ((3, 4), 3, (3, 3), (5, 5), (5, 6))],  # facing north: blue 1 behind, 2 to the right
)
def test_observation_marks_each_goal_in_its_own_channel(agent, direction, green, blue, blue_cell):
    obs = np.asarray(WORLD.observe(_state(green, blue, agent, direction)))
    assert obs.shape == (9, 9, 5) == WORLD.observation_shape(make_params()) and obs.dtype == np.uint8
    expected_green = np.zeros((9, 9), np.uint8)
    expected_green[3, 4] = 1  # the cell ahead of the agent
    expected_blue = np.zeros((9, 9), np.uint8)
    expected_blue[blue_cell] = 1
    assert np.array_equal(obs[..., 3], expected_green)
    assert np.array_equal(obs[..., 4], expected_blue)
    assert tuple(obs[3, 4, :3]) == (grid.GOAL, grid.GREEN, 0)
    assert tuple(obs[blue_cell][:3]) == (grid.GOAL, grid.BLUE, 0)
    assert tuple(obs[4, 4, :3]) == (grid.AGENT, grid.RED, direction)
    assert (obs[..., 0] == grid.GOAL).sum() == 2 and (obs[..., 0] == grid.WALL).sum() > 0


def test_encode_draws_both_goals_in_their_colours():
    enc = np.asarray(encode(_state((2, 3), (5, 1), (1, 3), 2)))
    assert enc.shape == (7, 7, 3) and enc.dtype == np.uint8
    assert tuple(enc[3, 2]) == (grid.GOAL, grid.GREEN, 0) and tuple(enc[1, 5]) == (grid.GOAL, grid.BLUE, 0)
    assert tuple(enc[3, 1]) == (grid.AGENT, grid.RED, 2) and tuple(enc[0, 0]) == (grid.WALL, grid.GREY, 0)


@pytest.mark.parametrize("colour", ["green", "blue"])
def test_entering_a_goal_pays_social_reward_counts_it_and_draws_a_fresh_layout(colour):
    params = make_params(3)
    ahead, elsewhere = (3, 2), (5, 5)
    green, blue = (ahead, elsewhere) if colour == "green" else (elsewhere, ahead)
    s = _state(green, blue, agent=(3, 3), direction=3, steps=5)
    _, s1, ch, trunc = step(jax.random.key(2), s, grid.FORWARD, params)
    is_green = colour == "green"
    assert bool(ch.event) and bool(ch.events["goal"])
    assert bool(ch.events["goal_green"]) == is_green and bool(ch.events["goal_blue"]) == (not is_green)
    assert float(ch.social) == pytest.approx(0.4) and float(ch.extrinsic) == 0.0
    assert int(s1.step_count) == 6 and not bool(trunc)
    assert (int(s1.green_goals), int(s1.blue_goals)) == ((1, 0) if is_green else (0, 1))
    assert bool(s1.goal_green) == is_green and bool(s1.goal_blue) == (not is_green)
    assert int(s1.walls[1:6, 1:6].sum()) == 3, "a fresh 3-block layout"
    ok, both = _layout_checks(jax.tree.map(lambda x: x[None], s1))
    assert ok.all() and both.all()
    # The next ordinary step clears the flags but keeps the counts.
    _, s2, ch2, _ = step(jax.random.key(3), s1, grid.LEFT, params)
    assert not bool(s2.goal_green | s2.goal_blue) and not bool(ch2.event)
    assert int(s2.green_goals + s2.blue_goals) == 1 and int(s2.step_count) == 7


def test_blocked_forward_costs_and_turns_are_free():
    params = make_params(1)
    s = _state((5, 5), (5, 1), agent=(1, 1), direction=0, blocks=[(2, 1)])
    _, s1, ch, _ = step(jax.random.key(4), s, grid.FORWARD, params)
    assert np.array_equal(s1.agent_pos, [1, 1]) and np.array_equal(s1.walls, s.walls)
    assert float(ch.extrinsic) == pytest.approx(-0.045) and float(ch.social) == 0.0 and not bool(ch.event)
    _, s2, ch, _ = step(jax.random.key(4), s1, grid.RIGHT, params)
    assert int(s2.agent_dir) == 1 and float(ch.extrinsic) == 0.0
    _, s3, ch, _ = step(jax.random.key(4), s2, grid.FORWARD, params)
    assert np.array_equal(s3.agent_pos, [1, 2]) and float(ch.extrinsic) == pytest.approx(-0.045)
    assert int(s3.step_count) == 3 and not bool(ch.events["goal"])


def test_truncated_at_max_steps_and_counters_zero_after_reset():
    params = make_params(1)
    s = _state((2, 1), (5, 5), agent=(1, 1), direction=0)
    truncs = []
    for i in range(20):
        _, s, _, trunc = step(jax.random.key(i), s, grid.FORWARD if i == 0 else grid.LEFT, params)
        truncs.append(bool(trunc))
    assert truncs == [False] * 19 + [True]
    assert int(s.green_goals) == 1, "the goal counted on step 1 survives to the end of the episode"
    _, fresh = jax.jit(WORLD.reset)(jax.random.key(9), params)
    assert int(fresh.green_goals) == int(fresh.blue_goals) == int(fresh.step_count) == 0


def _goal_counts(policy, params, n_envs, n_steps, seed=0):
    out = run_policy_jit(policy, jax.random.key(seed), params, n_envs, n_steps, world=WORLD)
    ev = out.channels.events
    return (int(ev["goal_green"].sum()), int(ev["goal_blue"].sum()), int(ev["goal"].sum()),
            np.asarray(ev["goal_green"]), np.asarray(ev["goal_blue"]))


def test_nearest_goal_policy_reaches_both_colours_often():
    params = make_params(1)
    green, blue, goals, _, _ = _goal_counts(nearest_goal_policy, params, 64, 100)
    assert goals == green + blue, "every goal is one colour"
    assert goals / (64 * 5) > 4.0, "a shortest-path walker reaches several goals per 20-step episode"
    assert 0.25 < green / goals < 0.75


def test_green_policy_reaches_only_green_goals():
    green, blue, goals, _, _ = _goal_counts(goal_policy("green"), make_params(1), 64, 100, seed=1)
    assert blue == 0 and green == goals
    assert green / (64 * 5) >= 3.0


@pytest.mark.parametrize("colour", ["green", "blue"])
def test_each_goal_is_reached_in_every_episode_by_its_own_walker(colour):
    # 100 steps, as above, so the green walker's program is compiled once; 5 aligned episodes per env.
    _, _, _, g, b = _goal_counts(goal_policy(colour), make_params(0), 64, 100, seed=2)
    own, other = (g, b) if colour == "green" else (b, g)
    assert own.reshape(5, 20, 64).any(axis=1).all(), "every one of the 320 episodes reaches its goal"
    assert not other.any()


def test_episode_stats_are_the_episode_event_counts():
    params = make_params(1)

    @jax.jit
    def episode(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(WORLD.reset, in_axes=(0, None))(jax.random.split(k_reset, 32), params)

        def one(state, k):
            actions = jax.vmap(nearest_goal_policy, in_axes=(None, 0, None))(k, state, params)
            _, state, ch, trunc = jax.vmap(WORLD.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k, 32), state, actions, params)
            return state, (ch.events["goal_green"], ch.events["goal_blue"], trunc)

        return jax.lax.scan(one, state, jax.random.split(k_run, 20))

    state, (g, b, trunc) = episode(jax.random.key(5))
    assert np.asarray(trunc[-1]).all() and not np.asarray(trunc[:-1]).any()
    stats = WORLD.episode_stats(state)
    assert np.array_equal(stats["green_goals_per_episode"], np.asarray(g).sum(0).astype(np.float32))
    assert np.array_equal(stats["blue_goals_per_episode"], np.asarray(b).sum(0).astype(np.float32))
    assert stats["green_goals_per_episode"].dtype == jnp.float32 and float(stats["green_goals_per_episode"].sum()) > 0


def test_evaluate_and_rollouts_read_the_colour_counts():
    assert count_keys(WORLD) == {"green_goals": "goal_green", "blue_goals": "goal_blue"}
    assert set(WORLD.episode_counts.values()) <= set(WORLD.events)

    def apply_fn(_, obs):  # a uniformly random policy
        return jnp.zeros(obs.shape[:-3] + (3,)), jnp.zeros(obs.shape[:-3])

    out = jax.jit(lambda k: evaluate(apply_fn, None, WORLD, make_params(1), k, episodes=64, deterministic=False,
                                    horizon=20))(
        jax.random.key(6))
    both = float(out["green_goals_per_episode"] + out["blue_goals_per_episode"])
    assert both == pytest.approx(float(out["goals_per_episode"]), abs=1e-5) and both > 0
