"""Rules of the navigation world: rewards, truncation, layouts, maps, batching, bad input.

The paper's rules: docs/paper-vs-reference.md, 'Navigation world'."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds import grid
from internalize.worlds.base import step_autoreset
from internalize.worlds.layouts import PAPER_MAPS, largest_component, parse_map
from internalize.worlds.navigation import Navigation, NavState, make_params

WORLD = Navigation()
reset = jax.jit(WORLD.reset)
step = jax.jit(WORLD.step)
batch_reset = jax.jit(jax.vmap(WORLD.reset, in_axes=(0, None)))


def _state(blocks=(), goal=(5, 5), agent=(1, 1), direction=0, steps=0) -> NavState:
    walls = np.ones((7, 7), bool)
    walls[1:6, 1:6] = False
    for x, y in blocks:
        walls[y, x] = True
    return NavState(
        jnp.asarray(walls), jnp.array(goal, jnp.int32), jnp.array(agent, jnp.int32),
        jnp.asarray(direction, jnp.int32), jnp.asarray(steps, jnp.int32),
    )


def test_forward_costs_also_when_blocked_and_turns_are_free():
    params = make_params(0)
    key = jax.random.key(0)
    s = _state(blocks=[(2, 1)], agent=(1, 1), direction=0)  # block right in front (east)
    _, s1, ch, trunc = step(key, s, grid.FORWARD, params)
    assert np.array_equal(s1.agent_pos, [1, 1]), "a blocked forward must not move"
    assert float(ch.extrinsic) == pytest.approx(-0.045) and float(ch.social) == 0.0 and not bool(ch.event)
    _, s2, ch, _ = step(key, s1, grid.RIGHT, params)  # now facing south, free cell ahead
    assert int(s2.agent_dir) == 1 and float(ch.extrinsic) == 0.0
    _, s3, ch, _ = step(key, s2, grid.FORWARD, params)
    assert np.array_equal(s3.agent_pos, [1, 2]) and float(ch.extrinsic) == pytest.approx(-0.045)
    _, s4, ch, _ = step(key, s3, grid.LEFT, params)
    assert int(s4.agent_dir) == 0 and float(ch.extrinsic) == 0.0
    assert int(s4.step_count) == 4 and not bool(trunc)


def test_wall_border_blocks_and_left_turn_wraps():
    params = make_params(0)
    s = _state(agent=(1, 1), direction=3)  # facing north into the border
    _, s1, ch, _ = step(jax.random.key(1), s, grid.FORWARD, params)
    assert np.array_equal(s1.agent_pos, [1, 1]) and float(ch.extrinsic) == pytest.approx(-0.045)
    _, s2, _, _ = step(jax.random.key(1), _state(direction=0), grid.LEFT, params)
    assert int(s2.agent_dir) == 3


def test_goal_step_pays_social_reward_instead_of_cost_and_draws_new_layout():
    params = make_params(3)
    s = _state(goal=(2, 1), agent=(1, 1), direction=0, steps=5)
    _, s1, ch, trunc = step(jax.random.key(2), s, grid.FORWARD, params)
    assert bool(ch.event)
    assert float(ch.social) == pytest.approx(0.4)
    assert float(ch.extrinsic) == 0.0, "the goal step's cost is replaced by the social reward"
    assert int(s1.step_count) == 6, "the episode goes on with the same step counter"
    assert int(s1.walls[1:6, 1:6].sum()) == 3, "a fresh 3-block layout"
    assert not bool(trunc)


def test_truncated_at_max_steps_and_not_before_with_several_goals():
    params = make_params(0)
    key = jax.random.key(3)
    _, s = reset(key, params)
    goals, truncs = 0, []
    for _ in range(20):
        key, k = jax.random.split(key)
        # Forward when that brings the agent closer to the goal, else turn: reaches goals on an open grid.
        front = np.asarray(s.agent_pos) + np.asarray(grid.DIR_TO_VEC[int(s.agent_dir)])
        closer = np.abs(front - np.asarray(s.goal_pos)).sum() < np.abs(np.asarray(s.agent_pos - s.goal_pos)).sum()
        action = grid.FORWARD if closer else grid.RIGHT
        _, s, ch, trunc = step(k, s, action, params)
        goals += int(ch.event)
        truncs.append(bool(trunc))
    assert truncs == [False] * 19 + [True]
    assert goals >= 2, "the goal can be reached several times in one episode"


def test_autoreset_after_truncation_gives_final_obs_of_ended_episode():
    params = make_params(3)
    s = _state(steps=19)
    out = jax.jit(lambda k, s: step_autoreset(WORLD, k, s, grid.LEFT, params))(jax.random.key(4), s)
    assert bool(out.truncated)
    assert int(out.state.step_count) == 0
    assert np.array_equal(out.final_obs, WORLD.observe(s.replace(agent_dir=jnp.int32(3), step_count=jnp.int32(20))))
    assert np.array_equal(out.obs, WORLD.observe(out.state))


@pytest.mark.parametrize("n_blocks", [0, 1, 3, 5, 8])
def test_layout_sampler_counts_and_placement(n_blocks):
    params = make_params(n_blocks)
    keys = jax.random.split(jax.random.key(n_blocks), 2000)
    _, states = batch_reset(keys, params)
    walls = np.asarray(states.walls)
    goal, agent = np.asarray(states.goal_pos), np.asarray(states.agent_pos)
    idx = np.arange(len(keys))
    assert (walls[:, 1:6, 1:6].sum((1, 2)) == n_blocks).all()
    assert (walls[:, 0].all() and walls[:, -1].all() and walls[:, :, 0].all() and walls[:, :, -1].all())
    assert not walls[idx, goal[:, 1], goal[:, 0]].any(), "goal under a block"
    assert not walls[idx, agent[:, 1], agent[:, 0]].any(), "agent under a block"
    assert not (goal == agent).all(1).any(), "agent on the goal"
    assert set(np.asarray(states.agent_dir).tolist()) == {0, 1, 2, 3}
    for i in range(len(keys)):  # reachability on (default): independent BFS in numpy
        assert _bfs_reachable(~walls[i], agent[i], goal[i])


def test_goal_positions_are_uniform_over_open_interior():
    params = make_params(0)
    keys = jax.random.split(jax.random.key(7), 25_000)
    _, states = batch_reset(keys, params)
    counts = np.zeros((7, 7))
    np.add.at(counts, (np.asarray(states.goal_pos[:, 1]), np.asarray(states.goal_pos[:, 0])), 1)
    inner = counts[1:6, 1:6].ravel()
    expected = 25_000 / 25
    assert np.abs(inner - expected).max() < 5 * np.sqrt(expected)


def test_reference_mode_without_reachability_check_can_wall_off_the_goal():
    on, off = make_params(8), make_params(8, check_reachable=False)
    keys = jax.random.split(jax.random.key(9), 3000)
    results = {}
    for name, params in (("on", on), ("off", off)):
        _, st = batch_reset(keys, params)
        w, g, a = np.asarray(st.walls), np.asarray(st.goal_pos), np.asarray(st.agent_pos)
        results[name] = sum(not _bfs_reachable(~w[i], a[i], g[i]) for i in range(len(keys)))
    assert results["on"] == 0
    assert results["off"] > 0, "with 8 blocks some unchecked layouts must be unsolvable"


def test_fixed_maps_are_exactly_paper_spec_section_6():
    expected = {
        "plus": [(3, 2), (2, 3), (3, 3), (4, 3), (3, 4)],
        "x": [(2, 2), (2, 4), (3, 3), (4, 2), (4, 4)],
        "U": [(2, 2), (2, 3), (4, 2), (4, 3), (3, 4)],
        "T": [(2, 2), (3, 2), (4, 2), (3, 3), (3, 4)],
        "four_rooms": [(3, 1), (1, 3), (3, 3), (5, 3), (3, 5)],
    }
    assert set(PAPER_MAPS) == set(expected)
    for name, cells in expected.items():
        walls = parse_map(name)
        interior = {(int(x), int(y)) for y, x in zip(*np.nonzero(walls[1:6, 1:6]), strict=True)}
        assert interior == {(x - 1, y - 1) for x, y in cells}, name
        params = make_params(0, map=name)
        keys = jax.random.split(jax.random.key(1), 500)
        _, st = batch_reset(keys, params)
        assert (np.asarray(st.walls) == walls).all(), "a fixed map keeps its walls at every reset"
        g = np.asarray(st.goal_pos)
        assert len({tuple(p) for p in g}) == int((~walls).sum()), "goal drawn over every free cell"


def test_map_with_separating_spaces_parses_like_compact_map():
    spaced = "\n".join(" ".join(row) for row in PAPER_MAPS["T"])
    assert (parse_map(spaced) == parse_map("T")).all()


def test_vmap_over_1024_envs_equals_single_env_runs():
    params = make_params(3)
    n, horizon = 1024, 25
    keys = jax.random.split(jax.random.key(11), n)

    def rollout(key):
        key, k0 = jax.random.split(key)
        obs, state = WORLD.reset(k0, params)

        def body(carry, _):
            key, state = carry
            key, ka, ks = jax.random.split(key, 3)
            action = jax.random.randint(ka, (), 0, 3)
            out = step_autoreset(WORLD, ks, state, action, params)
            return (key, out.state), (out.obs, out.channels.extrinsic, out.channels.social, out.truncated)

        return jax.lax.scan(body, (key, state), None, horizon)[1]

    batched = jax.jit(jax.vmap(rollout))(keys)
    single = jax.jit(rollout)
    for i in range(0, n, 97):
        one = single(keys[i])
        for b, s in zip(batched, one, strict=True):
            assert np.array_equal(np.asarray(b[i]), np.asarray(s)), i
    assert float(np.asarray(batched[2]).sum()) > 0, "some random agents reach goals"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_blocks": -1}, "n_blocks"),
        ({"n_blocks": 9}, "n_blocks"),
        ({"n_blocks": 2.5}, "n_blocks"),
        ({"map": "#####\n#...#\n#####"}, "map"),
        ({"map": ["#######"] + ["#.....#"] * 4 + ["#..?..#", "#######"]}, "map"),
        ({"map": ["#######"] + ["#######"] * 5 + ["#######"]}, "map"),
        ({"map": ["#######", "#.#.#.#", "#######", "#.#.#.#", "#######", "#.#.#.#", "#######"]}, "map"),
        ({"map": ["......."] + ["#.....#"] * 5 + ["#######"]}, "map"),
        ({"max_steps": 0}, "max_steps"),
        ({"size": 3}, "size"),
    ],
)
def test_bad_input_raises_clear_value_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_params(**kwargs)


def test_map_with_too_few_free_cells_for_its_blocks_is_rejected():
    three_free = ["#######", "#...###", "#######", "#######", "#######", "#######", "#######"]
    make_params(n_blocks=1, map=three_free)
    with pytest.raises(ValueError, match="n_blocks"):
        make_params(n_blocks=2, map=three_free)


def test_largest_component_helper():
    free = np.zeros((5, 5), bool)
    free[1, 1:4] = True
    free[3, 3] = True
    assert largest_component(free) == 3


def _bfs_reachable(free: np.ndarray, start, target) -> bool:
    """Independent numpy BFS: is ``target`` (x, y) reachable from ``start`` through free cells?"""
    seen = {tuple(start)}
    frontier = [tuple(start)]
    while frontier:
        x, y = frontier.pop()
        if (x, y) == tuple(target):
            return True
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nx, ny = x + dx, y + dy
            if free[ny, nx] and (nx, ny) not in seen:
                seen.add((nx, ny))
                frontier.append((nx, ny))
    return False
