"""Rules of the peer world (two-agent navigation, the empathy probe): costs, goals, the scripted peer, views."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds import grid
from internalize.worlds.base import step_autoreset
from internalize.worlds.navigation import Navigation, NavState
from internalize.worlds.peer import (
    PEER_CODES,
    SELF_CHANNEL,
    SIMILARITIES,
    PeerNavigation,
    border_walls,
    make_params,
    make_state,
)

WORLD = PeerNavigation()
step = jax.jit(WORLD.step)
batch_reset = jax.jit(jax.vmap(WORLD.reset, in_axes=(0, None)))
observe = jax.jit(WORLD.observe)
observe_marked = jax.jit(WORLD.observe_marked)

# Only way out of the bottom-right pocket is the column x = 1 (blocks on y = 2, x = 2..5):
#   #######
#   #....G#   goal (5, 1)
#   #.#####
#   #.....#
#   #.....#
#   #.....#
#   #######
CORRIDOR = border_walls(7)
CORRIDOR[2, 2:6] = True


def _bfs(free: np.ndarray, start) -> dict[tuple[int, int], int]:
    """Independent numpy BFS: distance from ``start`` (x, y) to every reachable free cell."""
    dist = {tuple(int(v) for v in start): 0}
    frontier = [tuple(int(v) for v in start)]
    while frontier:
        nxt = []
        for x, y in frontier:
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                c = (x + dx, y + dy)
                if free[c[1], c[0]] and c not in dist:
                    dist[c] = dist[(x, y)] + 1
                    nxt.append(c)
        frontier = nxt
    return dist


def test_learner_forward_costs_and_is_blocked_by_walls_and_the_peer():
    params = make_params(0, peer_noise=0.0)
    key = jax.random.key(0)
    into_wall = make_state(border_walls(), goal=(5, 5), agent=(1, 1), agent_dir=3, peer=(5, 3), peer_dir=1)
    _, s, ch, trunc = step(key, into_wall, grid.FORWARD, params)
    assert np.array_equal(s.agent_pos, [1, 1])
    assert float(ch.extrinsic) == pytest.approx(-0.045) and float(ch.social) == 0.0 and not bool(ch.event)
    into_peer = make_state(border_walls(), goal=(5, 5), agent=(1, 1), agent_dir=0, peer=(2, 1), peer_dir=2)
    _, s, ch, _ = step(key, into_peer, grid.FORWARD, params)
    assert np.array_equal(s.agent_pos, [1, 1]), "the peer's cell blocks the learner"
    assert float(ch.extrinsic) == pytest.approx(-0.045)
    _, s, ch, _ = step(key, into_peer, grid.RIGHT, params)
    assert int(s.agent_dir) == 1 and float(ch.extrinsic) == 0.0 and int(s.step_count) == 1 and not bool(trunc)
    _, s, ch, _ = step(key, s, grid.FORWARD, params)
    assert np.array_equal(s.agent_pos, [1, 2]) and float(ch.extrinsic) == pytest.approx(-0.045)


def test_learner_entering_goal_pays_social_reward_and_moves_only_the_goal():
    params = make_params(2, peer_noise=0.0)
    walls = border_walls()
    walls[3, 3] = walls[4, 4] = True
    s = make_state(walls, goal=(2, 1), agent=(1, 1), agent_dir=0, peer=(5, 5), peer_dir=2, step_count=5)
    keys = jax.random.split(jax.random.key(1), 200)
    _, s1, ch, trunc = jax.jit(jax.vmap(WORLD.step, in_axes=(0, None, None, None)))(keys, s, grid.FORWARD, params)
    assert bool(ch.event.all()) and not bool(trunc.any())
    assert np.allclose(ch.social, 0.4) and np.all(np.asarray(ch.extrinsic) == 0.0), "cost replaced, not added"
    assert (np.asarray(s1.walls) == walls).all(), "blocks stay"
    assert (np.asarray(s1.agent_pos) == [2, 1]).all() and (np.asarray(s1.step_count) == 6).all()
    peer, goal = np.asarray(s1.peer_pos), np.asarray(s1.goal_pos)
    assert (np.abs(peer - [5, 5]).sum(1) <= 1).all(), "the peer stays or takes one step of its own"
    assert not walls[goal[:, 1], goal[:, 0]].any()
    assert not (goal == [2, 1]).all(1).any() and not (goal == peer).all(1).any(), "goal on an agent"
    assert len({tuple(g) for g in goal}) > 10, "the new goal cell is random"


def test_noiseless_peer_walks_a_shortest_path_and_its_goal_pays_nothing():
    params = make_params(0, peer_noise=0.0)
    s = make_state(CORRIDOR, goal=(5, 1), agent=(3, 4), agent_dir=1, peer=(1, 5), peer_dir=0)
    distance = _bfs(~CORRIDOR, (1, 5))[(5, 1)]
    assert distance == 8
    expected_steps = distance + 2  # a left turn at the start, a right turn at the corner
    key = jax.random.key(2)
    for t in range(expected_steps):
        key, k = jax.random.split(key)
        _, s, ch, _ = step(k, s, grid.LEFT, params)  # the learner turns in place
        assert float(ch.extrinsic) == 0.0 and float(ch.social) == 0.0 and not bool(ch.event)
        if t == 0:
            assert np.array_equal(s.peer_pos, [1, 5]) and int(s.peer_dir) == 3, "first the cheaper (left) turn"
        assert int(s.peer_goals) == (1 if t == expected_steps - 1 else 0), t
    assert np.array_equal(s.peer_pos, [5, 1]) and int(s.peer_blocked) == 0
    assert not np.array_equal(s.goal_pos, [5, 1]) and not CORRIDOR[int(s.goal_pos[1]), int(s.goal_pos[0])]
    stats = WORLD.episode_stats(s)
    assert float(stats["peer_goals_per_episode"]) == 1.0 and stats["peer_goals_per_episode"].dtype == jnp.float32
    assert float(stats["peer_blocked_per_episode"]) == 0.0


def test_peer_turns_right_for_180_degrees_and_left_without_a_path():
    params = make_params(0, peer_noise=0.0)
    behind = make_state(CORRIDOR, goal=(5, 1), agent=(4, 4), agent_dir=0, peer=(1, 3), peer_dir=1)  # faces south
    _, s, _, _ = step(jax.random.key(4), behind, grid.LEFT, params)
    assert np.array_equal(s.peer_pos, [1, 3]) and int(s.peer_dir) == 2, "a right turn (south -> west)"
    walled = CORRIDOR.copy()
    walled[5, 2] = walled[4, 1] = True  # the peer at (1, 5) is shut in
    shut = make_state(walled, goal=(5, 1), agent=(4, 4), agent_dir=0, peer=(1, 5), peer_dir=0)
    _, s, _, _ = step(jax.random.key(4), shut, grid.LEFT, params)
    assert np.array_equal(s.peer_pos, [1, 5]) and int(s.peer_dir) == 3, "no path: a left turn"


def test_peer_is_blocked_by_the_learner_in_its_only_corridor():
    params = make_params(0, peer_noise=0.0)
    s = make_state(CORRIDOR, goal=(5, 1), agent=(1, 3), agent_dir=0, peer=(1, 4), peer_dir=3)
    for n in range(1, 4):
        _, s, ch, _ = step(jax.random.key(n), s, grid.LEFT, params)
        assert int(s.peer_blocked) == n and np.array_equal(s.peer_pos, [1, 4]) and int(s.peer_dir) == 3
        assert float(ch.social) == 0.0
    assert float(WORLD.episode_stats(s)["peer_blocked_per_episode"]) == 3.0


def test_peer_bumping_a_wall_is_not_counted_as_blocked():
    params = make_params(0, peer_noise=1.0)  # random actions only
    s = make_state(border_walls(), goal=(5, 5), agent=(4, 4), agent_dir=0, peer=(1, 1), peer_dir=3)
    keys = jax.random.split(jax.random.key(3), 64)
    _, s1, _, _ = jax.jit(jax.vmap(WORLD.step, in_axes=(0, None, None, None)))(keys, s, grid.LEFT, params)
    assert (np.asarray(s1.peer_pos) == [1, 1]).all() and (np.asarray(s1.peer_blocked) == 0).all()
    assert set(np.asarray(s1.peer_dir).tolist()) == {2, 3, 0}, "random left, right and (failed) forward"


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_egocentric_view_matches_navigation_except_on_the_peer_cell(similarity):
    params = make_params(2, similarity=similarity)
    walls = border_walls()
    walls[2, 3] = walls[4, 2] = True
    s = make_state(walls, goal=(5, 5), agent=(3, 3), agent_dir=3, peer=(3, 1), peer_dir=2)
    obs, mark = observe_marked(s, params, s.peer_pos)
    assert obs.shape == WORLD.observation_shape(params) == (9, 9, 5) and obs.dtype == jnp.uint8
    nav = Navigation().observe(NavState(s.walls, s.goal_pos, s.agent_pos, s.agent_dir, jnp.int32(0)))
    obs, mark, nav = np.asarray(obs), np.asarray(mark), np.asarray(nav)
    assert mark.sum() == 1 and mark[2, 4], "the peer two cells ahead of the north-facing learner"
    assert (obs[~mark][:, :4] == nav[~mark]).all()
    obj, colour = PEER_CODES[similarity]
    assert tuple(obs[2, 4]) == (obj, colour, 2 if obj == grid.AGENT else 0, 0, 0)
    assert tuple(obs[4, 4]) == (grid.AGENT, grid.RED, 3, 0, 1)
    assert obs[..., SELF_CHANNEL].sum() == 1
    assert (obs[..., 3] == (obs[..., 0] == grid.GOAL)).all() and obs[..., 3].sum() == 1


def test_allocentric_view_marks_self_and_an_identical_peer_differs_only_there():
    params = make_params(view="allocentric")
    s = make_state(border_walls(), goal=(5, 5), agent=(2, 4), agent_dir=1, peer=(4, 2), peer_dir=1)
    obs, mark = observe_marked(s, params, s.peer_pos)
    obs, mark = np.asarray(obs), np.asarray(mark)
    assert obs.shape == WORLD.observation_shape(params) == (7, 7, 5)
    assert obs[..., SELF_CHANNEL].sum() == 1 and obs[4, 2, SELF_CHANNEL] == 1
    assert tuple(obs[4, 2]) == (grid.AGENT, grid.RED, 1, 0, 1)
    assert (obs[2, 4, :SELF_CHANNEL] == obs[4, 2, :SELF_CHANNEL]).all() and obs[2, 4, SELF_CHANNEL] == 0
    assert mark.sum() == 1 and mark[2, 4]
    assert obs[5, 5, 3] == 1 and obs[5, 5, 0] == grid.GOAL
    assert (obs[0, :, 0] == grid.WALL).all(), "border included, not rotated"
    assert np.array_equal(obs, np.asarray(observe(s, params)))
    _, outside = observe_marked(s, params, jnp.array([-1, 3], jnp.int32))
    assert not np.asarray(outside).any(), "a cell outside the grid is marked nowhere (no wrap-around)"


def test_similarity_levels_have_the_documented_codes_and_share_one_program():
    expected = {"identical": (grid.AGENT, grid.RED), "colour": (grid.AGENT, grid.BLUE), "kind": (grid.BALL, grid.BLUE)}
    s = make_state(border_walls(), goal=(5, 5), agent=(1, 1), agent_dir=0, peer=(3, 3), peer_dir=2)
    trees = set()
    for similarity, (obj, colour) in expected.items():
        params = make_params(similarity=similarity, view="allocentric")
        assert (int(params.peer_object), int(params.peer_colour)) == (obj, colour)
        assert params.peer_object.dtype == jnp.int32
        cell = tuple(np.asarray(observe(s, params))[3, 3])
        assert cell == (obj, colour, 2 if similarity != "kind" else 0, 0, 0), similarity
        trees.add(jax.tree.structure(params))
    assert len(trees) == 1, "similarity is data, not structure"
    assert jax.tree.structure(make_params(view="egocentric")) != jax.tree.structure(make_params(view="allocentric"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"similarity": "twin"}, "similarity"),
        ({"view": "topdown"}, "view"),
        ({"n_blocks": -1}, "n_blocks"),
        ({"n_blocks": 7}, "n_blocks"),
        ({"n_blocks": 1.5}, "n_blocks"),
        ({"peer_noise": -0.1}, "peer_noise"),
        ({"peer_noise": 1.5}, "peer_noise"),
        ({"peer_noise": float("nan")}, "peer_noise"),
        ({"size": 4}, "size"),
        ({"max_steps": 0}, "max_steps"),
        ({"goal_reward": float("inf")}, "goal_reward"),
    ],
)
def test_bad_input_raises_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_params(**kwargs)


def test_bad_similarity_message_lists_what_is_allowed():
    with pytest.raises(ValueError, match="similarity: must be one of identical, colour, kind, got 'twin'"):
        make_params(similarity="twin")


@pytest.mark.parametrize("n_blocks", [2, 6])
def test_reset_under_vmap_places_a_goal_both_agents_can_reach(n_blocks):
    params = make_params(n_blocks)
    obs, st = batch_reset(jax.random.split(jax.random.key(n_blocks), 256), params)
    assert obs.shape == (256, 9, 9, 5)
    walls, goal = np.asarray(st.walls), np.asarray(st.goal_pos)
    agent, peer = np.asarray(st.agent_pos), np.asarray(st.peer_pos)
    idx = np.arange(256)
    assert (walls[:, 1:6, 1:6].sum((1, 2)) == n_blocks).all() and (walls[:, 0] & walls[:, -1]).all()
    for pos in (goal, agent, peer):
        assert not walls[idx, pos[:, 1], pos[:, 0]].any(), "something under a block"
    assert not (agent == peer).all(1).any() and not (agent == goal).all(1).any() and not (peer == goal).all(1).any()
    for i in range(256):
        reach = _bfs(~walls[i], goal[i])
        assert tuple(agent[i]) in reach and tuple(peer[i]) in reach, i
    assert set(np.asarray(st.agent_dir).tolist()) == set(np.asarray(st.peer_dir).tolist()) == {0, 1, 2, 3}
    assert (np.asarray(st.peer_goals) == 0).all() and (np.asarray(st.step_count) == 0).all()


def _rollout(params, n_envs: int, n_steps: int):
    def run(key):
        key_reset, key_run = jax.random.split(key)
        _, state = jax.vmap(WORLD.reset, in_axes=(0, None))(jax.random.split(key_reset, n_envs), params)

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (n_envs,), 0, 3)
            out = jax.vmap(step_autoreset, in_axes=(None, 0, 0, 0, None))(
                WORLD, jax.random.split(key_step, n_envs), state, actions, params
            )
            return out.state, (state, out.obs, out.channels, out.truncated)

        return jax.lax.scan(body, state, jax.random.split(key_run, n_steps))[1]

    return jax.jit(run)


@pytest.mark.parametrize("view", ["egocentric", "allocentric"])
def test_jit_vmap_autoreset_truncates_every_20_steps_and_is_deterministic(view):
    params = make_params(2, view=view, peer_noise=0.2)
    run = _rollout(params, n_envs=32, n_steps=100)
    states, obs, channels, truncated = run(jax.random.key(5))
    assert obs.shape == (100, 32, *WORLD.observation_shape(params))
    expected = (np.arange(1, 101) % 20 == 0)[:, None]
    assert (np.asarray(truncated) == expected).all()
    walls, goal = np.asarray(states.walls), np.asarray(states.goal_pos)
    agent, peer = np.asarray(states.agent_pos), np.asarray(states.peer_pos)
    t, n = np.indices(agent.shape[:2])
    assert not (agent == peer).all(-1).any() and not (agent == goal).all(-1).any() and not (peer == goal).all(-1).any()
    assert not walls[t, n, agent[..., 1], agent[..., 0]].any() and not walls[t, n, peer[..., 1], peer[..., 0]].any()
    assert (np.asarray(states.peer_goals).max() > 0) and np.asarray(channels.event).any()
    again = run(jax.random.key(5))
    for a, b in zip(jax.tree.leaves((states, obs, channels, truncated)), jax.tree.leaves(again), strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
