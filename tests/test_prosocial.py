"""The prosocial world: learner actions, the helped agent, rewards, events, caregivers, bad input.

The paper's world and the authors' code: docs/paper-vs-reference.md, 'Prosocial world'."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds import grid
from internalize.worlds.prosocial import (
    DROP,
    PICKUP,
    UNREACHABLE,
    Prosocial,
    ProsocialState,
    distance_map,
    make_params,
    toward,
)
from internalize.worlds.prosocial_layouts import parse_layout

WORLD = Prosocial()
reset = jax.jit(WORLD.reset)
step = jax.jit(WORLD.step)
L, R, F = grid.LEFT, grid.RIGHT, grid.FORWARD
KEY = jax.random.key(0)

# H must pass the boulder B to reach G; the learner L can only get to B from below.
CORRIDOR = """
#######
#H.B.G#
####.##
####L##
#######
#######
#######
"""
# Two routes of 8 moves from H to G; the learner is shut in behind the boulder, off both.
TWO_ROUTES = """
#######
#H....#
#.###.#
#.#L#.#
#.#B#.#
#....G#
#######
"""


def _state(text: str, learner_dir: int = 3, helped_dir: int = 0) -> ProsocialState:
    u = parse_layout(text)

    def i(v) -> jax.Array:
        return jnp.asarray(v, jnp.int32)

    no = jnp.array(False)
    return ProsocialState(
        walls=jnp.asarray(u.walls), layout_id=i(0), boulder_pos=i(u.boulder), boulder_on_grid=jnp.array(True),
        carrying=no, goal_pos=i(u.goal), learner_pos=i(u.learner), learner_dir=i(learner_dir),
        helped_pos=i(u.helped), helped_dir=i(helped_dir), step_count=i(0), helped_goals=i(0), lifts=i(0),
        pointless_lifts=i(0),
        helped_goal=no, lifted=no,
    )


def _run(state, actions, params, key=KEY):
    out = []
    for t, a in enumerate(actions):
        obs, state, ch, trunc = step(jax.random.fold_in(key, t), state, a, params)
        out.append((obs, state, ch, trunc))
    return out


# The scripted learner sequence that clears the corridor: up, lift, back down, drop below, stand aside.
CLEAR = [F, F, L, PICKUP, L, F, DROP, L, L, L]


def test_lift_move_and_drop_lets_the_helped_agent_reach_its_goal():
    params = make_params(layout=CORRIDOR)
    out = _run(_state(CORRIDOR), CLEAR, params)
    helped = [tuple(np.asarray(s.helped_pos)) for _, s, _, _ in out]
    assert helped[:5] == [(1, 1)] * 5, "the helped agent waits while the boulder (then the learner) blocks"
    assert bool(out[3][1].lifted) and bool(out[3][1].carrying) and not bool(out[3][1].boulder_on_grid)
    assert helped[5:8] == [(2, 1), (3, 1), (4, 1)]
    s = out[6][1]
    assert np.array_equal(s.boulder_pos, [4, 3]) and bool(s.boulder_on_grid) and not bool(s.carrying)
    social = [float(ch.social) for _, _, ch, _ in out]
    assert social == [0.0] * 8 + [pytest.approx(0.4)] + [0.0], "paid on the helped agent's goal step only"
    events = [bool(ch.event) for _, _, ch, _ in out]
    assert events == [False] * 8 + [True, False]
    after = out[8][1]
    assert int(after.step_count) == 9 and int(after.helped_goals) == 1 and int(after.lifts) == 1
    # A user layout comes back with its fixed positions; the boulder is on the grid again.
    assert np.array_equal(after.helped_pos, [1, 1]) and np.array_equal(after.boulder_pos, [3, 1])
    assert bool(after.boulder_on_grid) and not bool(after.carrying)


def test_fresh_bank_layout_after_the_goal_and_the_episode_goes_on():
    params = make_params()
    out = _run(_state(CORRIDOR), CLEAR[:9], params)
    _, after, ch, trunc = out[8]
    assert bool(ch.event) and not bool(trunc) and int(after.step_count) == 9
    walls = np.asarray(after.walls)
    assert not np.array_equal(walls, parse_layout(CORRIDOR).walls) and walls[1:-1, 1:-1].sum() == 7
    assert np.array_equal(walls, np.asarray(params.bank)[int(after.layout_id)])
    assert bool(after.helped_goal) and int(after.helped_goals) == 1 and not bool(after.carrying)


def test_noop_drop_loses_the_boulder_and_the_path_stays_clear():
    params = make_params(layout=CORRIDOR, drop="noop")
    out = _run(_state(CORRIDOR), CLEAR[:7] + [DROP, DROP], params)
    for _, s, _, _ in out[3:8]:
        assert bool(s.carrying) and not bool(s.boulder_on_grid), "reference: drop does nothing, it stays carried"
    assert bool(out[8][2].event), "the helped agent still gets through"


def test_drop_needs_a_free_front_cell():
    params = make_params(layout=CORRIDOR)
    s = _run(_state(CORRIDOR), [F, F, L, PICKUP], params)[-1][1]  # at (4, 1) facing west, carrying
    for turn in ([], [R, R], [R]):  # west: free (3, 1); east: the goal; north: a wall
        after = _run(s, turn + [DROP], params)[-1][1]
        front = tuple(np.asarray(grid.front_cell(after.learner_pos, after.learner_dir)))
        placed = bool(after.boulder_on_grid)
        assert placed == (front == (3, 1)) and placed != bool(after.carrying)
        if placed:
            assert np.array_equal(after.boulder_pos, front)


def test_forward_costs_also_when_blocked_other_actions_are_free():
    params = make_params(layout=CORRIDOR)
    s = _run(_state(CORRIDOR), [F, F], params)[-1][1]  # learner at (4, 1) facing north (a wall)
    for turn, blocker in (([], "wall"), ([L], "boulder"), ([R], "goal")):
        out = _run(s, turn + [F], params)
        _, after, ch, _ = out[-1]
        assert np.array_equal(after.learner_pos, [4, 1]), f"{blocker} blocks"
        assert float(ch.extrinsic) == pytest.approx(-0.009) and float(ch.social) == 0.0
    for _, _, ch, _ in _run(s, [L, R, PICKUP, DROP, 7, -1], params):
        assert float(ch.extrinsic) == 0.0
    helped_ahead = _state(CORRIDOR.replace("#H.B", "#.HB"), learner_dir=3)
    s = _run(helped_ahead, [F, F, L, PICKUP, F], params)[-1][1]  # carrying, at (3, 1), facing the helped agent
    assert np.array_equal(s.learner_pos, [3, 1]) and np.array_equal(s.helped_pos, [2, 1])
    _, after, ch, _ = step(KEY, s, F, params)
    assert np.array_equal(after.learner_pos, [3, 1]) and float(ch.extrinsic) == pytest.approx(-0.009)


def test_invalid_actions_do_nothing():
    params = make_params(layout=CORRIDOR)
    s = _state(CORRIDOR)
    for a in (5, 99, -3):
        _, after, ch, _ = step(KEY, s, a, params)
        assert np.array_equal(after.learner_pos, s.learner_pos) and int(after.learner_dir) == int(s.learner_dir)
        assert float(ch.extrinsic) == 0.0 and int(after.step_count) == 1


def test_helped_agent_takes_a_shortest_path_with_fewest_turns():
    params = make_params(layout=TWO_ROUTES)
    s = _state(TWO_ROUTES, helped_dir=2)  # facing west into the wall
    free = ~parse_layout(TWO_ROUTES).walls
    dist = np.asarray(distance_map(jnp.asarray(free), jnp.zeros((7, 7), bool).at[5, 5].set(True)))
    assert dist[1, 1] == 8
    out = _run(s, [L] * 12, params)
    events = [bool(ch.event) for _, _, ch, _ in out]
    # 8 forwards and 2 turns (left to face south, left at the corner to face east): the goal on step 10.
    assert events.index(True) == 9 and sum(events) == 1
    cells = [(1, 1)] + [tuple(np.asarray(st.helped_pos)) for _, st, _, _ in out[:9]]
    moves = [(a, b) for a, b in zip(cells, cells[1:], strict=False) if a != b]
    assert len(moves) == 7 and all(dist[b[1], b[0]] == dist[a[1], a[0]] - 1 for a, b in moves)


def test_helped_agent_waits_when_blocked_and_the_reference_one_bumps():
    s = _state(CORRIDOR, helped_dir=1)
    out = _run(s, [L] * 20, make_params(layout=CORRIDOR))
    assert all(np.array_equal(st.helped_pos, [1, 1]) and int(st.helped_dir) == 1 for _, st, _, _ in out)
    out = _run(s, [L] * 20, make_params(layout=CORRIDOR, helper="reference-dfs"))
    last = out[-1][1]
    assert np.array_equal(last.helped_pos, [2, 1]) and int(last.helped_dir) == 0, "walks up to the boulder"
    assert not any(bool(ch.event) for _, _, ch, _ in out)
    # The reference turns by direction index: from south (1) to east (0) is a left turn.
    assert int(out[0][1].helped_dir) == 0


def test_instrumental_caregiver_pays_on_the_lift_step():
    params = make_params(layout=CORRIDOR, rewarded_event="boulder_lift")
    out = _run(_state(CORRIDOR), CLEAR, params)
    assert [float(ch.social) for _, _, ch, _ in out] == [0.0] * 3 + [pytest.approx(0.4)] + [0.0] * 6
    assert bool(out[8][1].helped_goal) and not bool(out[8][2].event), "the goal still happens, unrewarded"
    assert [float(ch.social) > 0 for _, _, ch, _ in out] == [bool(ch.event) for _, _, ch, _ in out]


def test_observation_channels():
    params = make_params(layout=CORRIDOR)
    s = _state(CORRIDOR, learner_dir=3)
    obs = np.asarray(WORLD.observe(s))
    assert obs.shape == WORLD.observation_shape(params) == (9, 9, 7) and obs.dtype == np.uint8
    assert tuple(obs[4, 4, :3]) == (grid.AGENT, grid.RED, 3) and obs[4, 4, 6] == 0
    # Facing north from (4, 3): H (1, 1) is 2 ahead and 3 left, B (3, 1) 2 ahead 1 left, G (5, 1) 2 ahead 1 right.
    assert tuple(obs[2, 1, :3]) == (grid.AGENT, grid.GREEN, 0) and obs[..., 5].sum() == obs[2, 1, 5] == 1
    assert tuple(obs[2, 3, :2]) == (grid.BALL, grid.BLUE) and obs[..., 4].sum() == obs[2, 3, 4] == 1
    assert tuple(obs[2, 5, :2]) == (grid.GOAL, grid.GREEN) and obs[..., 3].sum() == obs[2, 5, 3] == 1
    carried = np.asarray(_run(s, [F, F, L, PICKUP], params)[-1][0])
    assert carried[4, 4, 6] == 1 and carried[..., 6].sum() == 1 and carried[..., 4].sum() == 0


def test_batched_resets_draw_fresh_placements_and_truncate_at_100():
    params = make_params()
    obs, states = jax.jit(jax.vmap(WORLD.reset, in_axes=(0, None)))(jax.random.split(KEY, 256), params)
    obs = np.asarray(obs)
    assert obs.shape == (256, 9, 9, 7) and (obs[:, 4, 4, 0] == grid.AGENT).all() and (obs[:, 4, 4, 1] == grid.RED).all()
    assert (obs[..., 3].sum((1, 2)) == 1).all() and (obs[..., 4].sum((1, 2)) == 1).all()
    assert (obs[..., 5].sum((1, 2)) == 1).all()
    assert len({np.asarray(states.layout_id)[i] for i in range(256)}) > 150
    s = jax.tree.map(lambda x: x[0], states)
    flags = [bool(t) for *_, t in _run(s, [L] * 100, params)]
    assert flags == [False] * 99 + [True]


def _near(mask: jax.Array) -> jax.Array:
    p = jnp.pad(mask, 1)
    return p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]


def _cell(pos: jax.Array) -> jax.Array:
    return jnp.zeros((7, 7), bool).at[pos[1], pos[0]].set(True)


def clear_action(state: ProsocialState, params) -> jax.Array:
    """A scripted learner: lift the boulder if it is on the helped agent's path, put it down off the path (with
    a no-op drop just keep it), and step off the path; otherwise turn in place."""

    def at(mask: jax.Array, pos: jax.Array) -> jax.Array:  # mask[y, x] at an (x, y) position
        return mask[pos[1], pos[0]]

    free = ~state.walls
    goal, helped, learner = _cell(state.goal_pos), _cell(state.helped_pos), _cell(state.learner_pos)
    boulder = _cell(state.boulder_pos) & state.boulder_on_grid
    d_goal, d_helped = distance_map(free, goal), distance_map(free, helped)
    path = free & (d_goal + d_helped == at(d_goal, state.helped_pos))  # the tree path, boulder removed
    room = free & ~goal & ~helped & ~boulder
    pos, direction = state.learner_pos, state.learner_dir
    front = grid.front_cell(pos, direction)

    def go(targets: jax.Array) -> jax.Array:  # the first action toward the nearest target cell
        return toward(pos, direction, distance_map(room, targets))[0]

    lift = jnp.where(at(boulder, front), PICKUP, go(boulder))
    drop_cells = room & ~path & ~learner
    stand = room & ~path & _near(drop_cells)
    face = toward(pos, direction, jnp.where(drop_cells, 0, UNREACHABLE))[0]
    put = jnp.where(at(stand, pos), jnp.where(at(drop_cells, front), DROP, face), go(stand))
    leave = jnp.where(at(path, pos), go(room & ~path), L)
    need_lift = ~state.carrying & state.boulder_on_grid & at(path, state.boulder_pos)
    return jnp.where(need_lift, lift, jnp.where(state.carrying & params.drop_places, put, leave)).astype(jnp.int32)


def _episode(key, params, clear):
    k0, k1 = jax.random.split(key)
    _, state = WORLD.reset(k0, params)

    def one(s, k):
        a = jnp.where(clear, clear_action(s, params), L)
        _, s, ch, trunc = WORLD.step(k, s, a, params)
        return s, (ch.social, ch.event, s.helped_goal, s.lifted, trunc)

    return jax.lax.scan(one, state, jax.random.split(k1, 100))


rollout = jax.jit(jax.vmap(_episode, in_axes=(0, None, None)))
EPISODE_KEYS = jax.random.split(jax.random.key(42), 192)


@pytest.mark.expensive
@pytest.mark.parametrize("kwargs", [{}, {"drop": "noop"}, {"n_walls": 8, "wall_rule": "reference"}])
def test_clearing_the_path_earns_social_reward_and_idling_never_does(kwargs):
    params = make_params(**kwargs)
    final, (social, event, goal, lifted, trunc) = jax.tree.map(np.asarray, rollout(EPISODE_KEYS, params, True))
    assert (trunc[:, -1]).all() and not trunc[:, :-1].any()
    assert (event == goal).all() and np.allclose(social, 0.4 * goal)
    assert (final.helped_goals == goal.sum(1)).all() and (final.lifts == lifted.sum(1)).all()
    assert (goal.sum(1) > 0).mean() > 0.9, "a learner that clears the path nearly always helps"
    assert goal.sum(1).mean() > 2.5, "and helps several times per 100-step episode"
    assert (lifted.sum(1) >= goal.sum(1)).all(), "no goal without a lift: the boulder always blocks at first"
    _, (social, event, goal, lifted, _) = jax.tree.map(np.asarray, rollout(EPISODE_KEYS, params, False))
    assert social.sum() == 0 and not event.any() and not goal.any() and not lifted.any()


def test_instrumental_caregiver_pays_the_clearing_learner_for_lifts():
    params = make_params(rewarded_event="boulder_lift")
    _, (social, event, goal, lifted, _) = jax.tree.map(np.asarray, rollout(EPISODE_KEYS, params, True))
    assert (event == lifted).all() and np.allclose(social, 0.4 * lifted) and goal.sum() > 0


def test_distance_map_and_toward():
    free = jnp.ones((7, 7), bool)
    target = jnp.zeros((7, 7), bool).at[3, 3].set(True)
    dist = distance_map(free & ~jnp.zeros((7, 7), bool).at[3, 2].set(True), target)
    assert int(dist[3, 0]) == 5 and int(dist[3, 1]) == 4, "around the obstacle"
    assert int(distance_map(jnp.zeros((7, 7), bool), target)[0, 0]) == UNREACHABLE
    action, ok = toward(jnp.array([3, 5]), jnp.int32(2), distance_map(free, target))
    assert bool(ok) and int(action) == R, "from west to north is one right turn"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_walls": 99}, "n_walls"), ({"n_walls": 7, "wall_rule": "reference"}, "n_walls"),
    ({"wall_rule": "grid"}, "wall_rule"), ({"drop": "throw"}, "drop"), ({"helper": "astar"}, "helper"),
    ({"rewarded_event": "goal"}, "rewarded_event"), ({"max_steps": 0}, "max_steps"),
    ({"goal_reward": float("inf")}, "goal_reward"), ({"layout": CORRIDOR.replace("B", ".")}, "layout: needs"),
    ({"layout": CORRIDOR.replace("#H.B", "##.B").replace("####.##\n####L", "#H##.##\n####L")}, "unsolvable"),
])
def test_bad_params_are_clear_value_errors(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_params(**kwargs)


def test_rules_are_static_and_layouts_are_data_so_one_program_serves_every_layout():
    # The runner passes world parameters as an argument of its programs. The world's rules (drop, helper, rewarded
    # event) are static: each program holds only its own rule, as when the parameters were constants. Layouts and
    # reward sizes are data: another layout, bank or reward of the same shapes runs the same program.
    def lowered(params):
        def step(key, params):
            obs, state = WORLD.reset(key, params)
            return WORLD.step(key, state, jnp.int32(F), params)
        return jax.jit(step).lower(KEY, params).as_text()

    base = make_params()
    assert lowered(make_params(layout=CORRIDOR)) == lowered(make_params(layout=TWO_ROUTES, goal_reward=1.0))
    assert lowered(base) == lowered(make_params(max_steps=50, step_cost=0.02, goal_reward=1.0))
    for rule in ({"drop": "noop"}, {"helper": "reference-dfs"}, {"rewarded_event": "boulder_lift"}):
        assert lowered(make_params(**rule)) != lowered(base), rule
    leaves = jax.tree.leaves(base)
    assert not any(isinstance(x, bool) for x in leaves) and len(leaves) == 6  # the switches are no leaves
