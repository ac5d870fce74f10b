"""Differential test: our navigation world against minigrid itself.

What is compared: docs/paper-vs-reference.md, 'Navigation world' and 'Observation'.

The reference code builds its world from minigrid's ``MiniGridEnv`` and encodes it with ``Grid.encode``. Here a
minigrid twin of every layout is built from minigrid's public API (``Grid``, ``Wall``, ``Goal``, agent position
and direction) and stepped with minigrid's own ``step`` (left 0, right 1, forward 2), while our world runs the
same actions in JAX. Positions, directions, blocked moves, goal detection and the 9x9x4 observation must agree.

The reference observation is computed here in NumPy the way the reference code does it (pad by 5, crop 9x9
around the agent, ``rot90(k=1, axes=(1, 0))`` (dir + 2) times, flip axis 1, append is_goal), from minigrid's
``grid.encode()`` (indexed [x][y]) with the agent's cell overwritten as (10, 0, dir). Our world computes the
view with an index formula instead, so agreement is a real cross-check.

minigrid terminates on the goal step; our world draws a new layout and goes on. So each goal-entering move is
compared up to the position entering the goal, and the twin then restarts from our new layout.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Goal, Wall
from minigrid.minigrid_env import MiniGridEnv

from internalize.agents.scripted import shortest_path_action
from internalize.worlds.layouts import PAPER_MAPS
from internalize.worlds.navigation import Navigation, NavState, encode, make_params

GOLDEN = Path(__file__).parent / "data" / "egocentric_obs_golden.npz"
WORLD = Navigation()
N_ENVS, N_STEPS = 256, 40


class Twin(MiniGridEnv):
    """A minigrid world holding one of our layouts: walls, goal, agent position and direction."""

    def __init__(self, size: int = 7) -> None:
        self._layout: tuple[np.ndarray, tuple, tuple, int] | None = None
        super().__init__(
            mission_space=MissionSpace(mission_func=lambda: "get to the green goal square"),
            grid_size=size, max_steps=10**6, see_through_walls=True,
        )

    def _gen_grid(self, width: int, height: int) -> None:
        walls, goal, agent, direction = self._layout
        self.grid = Grid(width, height)
        for y, x in zip(*np.nonzero(walls), strict=True):
            self.grid.set(int(x), int(y), Wall())
        self.put_obj(Goal(), *goal)
        self.agent_pos = agent
        self.agent_dir = direction
        self.mission = "get to the green goal square"

    def load(self, walls: np.ndarray, goal, agent, direction) -> None:
        """Rebuild the grid as ``walls`` ([y, x] bool), goal and agent ``(x, y)``, ``direction`` 0..3."""
        self._layout = (np.asarray(walls), tuple(int(v) for v in goal), tuple(int(v) for v in agent), int(direction))
        self.reset(seed=0)


def full_encoding(env: MiniGridEnv) -> np.ndarray:
    """minigrid's ``grid.encode()`` ([x][y]) with the agent's cell set to (agent 10, red 0, direction)."""
    enc = env.grid.encode()
    x, y = env.agent_pos
    enc[x, y] = (10, 0, env.agent_dir)
    return enc


def reference_obs(enc: np.ndarray, agent_pos, agent_dir: int) -> np.ndarray:
    """The reference code's egocentric view of an [x][y] encoding: (9, 9, 4) uint8."""
    x, y = (int(v) for v in agent_pos)
    padded = np.pad(enc, ((5, 5), (5, 5), (0, 0)))
    crop = padded[x + 1:x + 10, y + 1:y + 10]  # 9x9 centred on the agent, which sits at padded (x + 5, y + 5)
    for _ in range(int(agent_dir) + 2):
        crop = np.rot90(crop, k=1, axes=(1, 0))
    crop = np.flip(crop, axis=1)
    is_goal = (crop[..., 0] == 8).astype(np.uint8)[..., None]
    return np.concatenate([crop, is_goal], axis=-1)


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _env_params(key: jax.Array):
    """Per-env parameters: random 0..8 blocks (half without the reachability check) or a paper map + 0..2."""
    configs = [dict(n_blocks=n, check_reachable=c) for n in range(9) for c in (True, False)]
    configs += [dict(n_blocks=n, map=name) for name in PAPER_MAPS for n in range(3)]
    table = _stack([make_params(**c) for c in configs])
    # A quarter of the envs on the hand-picked maps, the rest on random blocks.
    on_map = jax.random.uniform(jax.random.fold_in(key, 0), (N_ENVS,)) < 0.25
    random_cfg = jax.random.randint(jax.random.fold_in(key, 1), (N_ENVS,), 0, 18)
    map_cfg = jax.random.randint(jax.random.fold_in(key, 2), (N_ENVS,), 18, len(configs))
    index = jnp.where(on_map, map_cfg, random_cfg)
    return jax.tree.map(lambda x: x[index], table)


@jax.jit
def _run(key: jax.Array, params, explore: jax.Array):
    """Reset every env and run N_STEPS actions: random with probability ``explore``, else shortest-path moves
    (so goals are reached often). Returns the start, then per step (pre-state, action, obs, post-state, event),
    each with leading axes (env, step)."""

    def one_env(key, params, explore):
        key_reset, key_run = jax.random.split(key)
        obs0, state0 = WORLD.reset(key_reset, params)

        def body(state, key):
            k_act, k_coin, k_step = jax.random.split(key, 3)
            random_action = jax.random.randint(k_act, (), 0, 3)
            action = jnp.where(jax.random.uniform(k_coin) < explore, random_action,
                               shortest_path_action(state, params))
            obs, nxt, channels, _ = WORLD.step(k_step, state, action, params)
            return nxt, (state, action, obs, nxt, channels.event)

        _, traj = jax.lax.scan(body, state0, jax.random.split(key_run, N_STEPS))
        return obs0, state0, traj

    # lax.map, not vmap: the same result, and XLA compiles the unbatched loops in half the time on CPU.
    return jax.lax.map(lambda args: one_env(*args), (jax.random.split(key, N_ENVS), params, explore))


def _host(tree):
    return jax.tree.map(np.asarray, tree)


def _at(state: NavState, *index) -> NavState:
    return jax.tree.map(lambda x: x[index], state)


@pytest.fixture(scope="module")
def trajectories():
    """Our world's side of the comparison: N_ENVS starts and N_STEPS steps each, as NumPy arrays."""
    k_params, k_explore, k_run = jax.random.split(jax.random.key(2024), 3)
    params = _env_params(k_params)
    explore = jnp.where(jax.random.uniform(k_explore, (N_ENVS,)) < 0.5, 1.0, 0.3)
    return _host(_run(k_run, params, explore))


def test_world_matches_minigrid_step_by_step(trajectories):
    obs0, state0, (pre, actions, obs, post, event) = trajectories
    twin = Twin()
    counts = {"goals": 0, "blocked": 0, "moves": 0, "turns": 0, "steps": 0}
    for e in range(N_ENVS):
        s0 = _at(state0, e)
        twin.load(s0.walls, s0.goal_pos, s0.agent_pos, s0.agent_dir)
        np.testing.assert_array_equal(reference_obs(full_encoding(twin), twin.agent_pos, twin.agent_dir), obs0[e])
        for t in range(N_STEPS):
            before, after, action = _at(pre, e, t), _at(post, e, t), int(actions[e, t])
            where = f"env {e} step {t} action {action}"
            assert tuple(twin.agent_pos) == tuple(before.agent_pos) and twin.agent_dir == before.agent_dir, where
            old_pos = tuple(twin.agent_pos)
            _, _, terminated, _, _ = twin.step(action)
            counts["steps"] += 1
            assert bool(terminated) == bool(event[e, t]), f"{where}: goal detection differs"
            if terminated:
                # minigrid stops with the agent on the goal; ours drew a new layout. Compare the move itself.
                assert tuple(twin.agent_pos) == tuple(before.goal_pos), where
                counts["goals"] += 1
                twin.load(after.walls, after.goal_pos, after.agent_pos, after.agent_dir)
            else:
                assert tuple(twin.agent_pos) == tuple(after.agent_pos), f"{where}: position differs"
                assert twin.agent_dir == int(after.agent_dir), f"{where}: direction differs"
                np.testing.assert_array_equal(after.walls, before.walls, err_msg=where)
                if action == 2:
                    counts["blocked" if tuple(twin.agent_pos) == old_pos else "moves"] += 1
                else:
                    counts["turns"] += 1
            expected = reference_obs(full_encoding(twin), twin.agent_pos, twin.agent_dir)
            np.testing.assert_array_equal(expected, obs[e, t], err_msg=f"{where}: observation differs")
    # The comparison must have exercised every kind of transition many times.
    assert counts["steps"] == N_ENVS * N_STEPS
    assert counts["goals"] >= 200, counts
    assert counts["blocked"] >= 200, counts
    assert counts["moves"] >= 1000 and counts["turns"] >= 1000, counts


def test_full_grid_encoding_matches_minigrid_encode(trajectories):
    _, _, (pre, *_) = trajectories
    states = jax.tree.map(lambda x: x[:, ::10].reshape((-1,) + x.shape[2:]), pre)  # 4 states per env
    ours = np.asarray(jax.jit(jax.vmap(encode))(states))  # [y, x]
    twin = Twin()
    for i in range(len(ours)):
        s = _at(states, i)
        twin.load(s.walls, s.goal_pos, s.agent_pos, s.agent_dir)
        np.testing.assert_array_equal(full_encoding(twin).transpose(1, 0, 2), ours[i], err_msg=f"state {i}")


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as data:
        return {k: data[k] for k in data}


def _golden_states(g: dict[str, np.ndarray]) -> NavState:
    n = len(g["obs"])
    walls = np.ones((n, 7, 7), bool)
    walls[:, 1:6, 1:6] = g["blocks"].astype(bool)  # blocks are [y - 1, x - 1]
    return NavState(
        walls=jnp.asarray(walls),
        goal_pos=jnp.asarray(g["goal_xy"], jnp.int32),
        agent_pos=jnp.asarray(g["agent_xy"], jnp.int32),
        agent_dir=jnp.asarray(g["agent_dir"], jnp.int32),
        step_count=jnp.zeros(n, jnp.int32),
    )


def test_golden_observations_are_reproduced_exactly(golden):
    assert golden["obs"].shape == (500, 9, 9, 4)
    ours = np.asarray(jax.jit(jax.vmap(WORLD.observe))(_golden_states(golden)))
    mismatched = np.nonzero((ours != golden["obs"]).reshape(len(ours), -1).any(axis=1))[0]
    assert mismatched.size == 0, f"{mismatched.size} golden observations differ, first at index {mismatched[:5]}"
    # The file covers every direction and block count it claims to (0-5 blocks).
    assert set(np.unique(golden["agent_dir"])) == {0, 1, 2, 3}
    assert set(golden["blocks"].sum(axis=(1, 2))) == set(range(6))


def test_reference_procedure_in_this_test_reproduces_the_golden_file(golden):
    """The NumPy reference used above, on minigrid twins of the golden layouts, gives the golden observations."""
    states = _host(_golden_states(golden))
    twin = Twin()
    for i in range(len(golden["obs"])):
        s = _at(states, i)
        twin.load(s.walls, s.goal_pos, s.agent_pos, s.agent_dir)
        got = reference_obs(full_encoding(twin), twin.agent_pos, twin.agent_dir)
        np.testing.assert_array_equal(got, golden["obs"][i], err_msg=f"golden case {i}")
