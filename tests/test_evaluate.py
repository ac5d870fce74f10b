"""``agents.evaluate``'s ``caregiver_return`` (the paper's "Reward (OOD)", R_e + R_s) against hand computation.

What this pins: the per-episode means ``evaluate`` reports for the scripted shortest-path planner
(``agents.scripted.shortest_path_action``, run from the observation the policy network would see) equal the
values derived by hand from the navigation world's reward rules (``worlds.navigation``):

* a forward that does not enter the goal costs ``c`` (R_e = -c; ``c`` = step_cost, 0.9 / 20 = 0.045 by default),
  turns cost 0;
* the forward that enters the goal pays R_s = ``g`` (goal_reward, 0.4) and its cost is replaced (R_e = 0);
* a fresh layout is drawn and the episode goes on; it is truncated after ``max_steps`` steps, and the forwards
  of an unfinished path before that still cost ``c`` each.

So for one path of T turns and D forwards (the last one enters the goal), a "lap" lasts T + D steps and earns
g - (D - 1) c. Two settings:

1. A fixed layout (the same start after every goal; a thin wrapper around the real ``Navigation.step``) on an
   open 5x5 interior: the agent on (x, 3) for x = 1, 2, 3, the goal on (5, 3), so D = 5 - x, and T = 0, 1 or 2
   turns by its start direction. With H = max_steps (22) and L = T + D: k = H // L goals, r = H - k L
   leftover steps with f = max(0, r - T) forwards, and

       goals = k,  social = k g,  extrinsic = -c (k (D - 1) + f),  caregiver_return = k g - c (k (D - 1) + f).

   Exact (float32) for every episode.
2. The real world on a fixed 1x4 corridor map (walls everywhere else): every layout draws the goal uniformly on
   the 4 cells, the agent uniformly on the other 3 and the direction uniformly, so D = |x_goal - x_agent| has
   P(1, 2, 3) = (6, 4, 2) / 12 and the turns T = 0, 1, 2 have P = 1/4, 1/2, 1/4 (the goal lies east or west;
   the relative direction is uniform). The expected episode return is the renewal recursion over the steps left
   s (V(0) = 0):

       V(s) = sum_{T, D} P(T) P(D) * ( g - (D - 1) c + V(s - T - D)   if T + D <= s
                                       -c max(0, s - T)               otherwise ),

   likewise the expected goals and, for the tolerance, the second moment. ``evaluate``'s mean over many
   episodes must lie within 5 standard errors of it.
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.evaluate import evaluate
from internalize.agents.scripted import shortest_path_action
from internalize.worlds import grid
from internalize.worlds.navigation import Navigation, NavState, make_params

VIEW = grid.view_size(7)  # 9: the egocentric crop shows the whole interior from any cell
CENTRE = VIEW // 2


def _plan_from_obs(obs: jax.Array) -> jax.Array:
    """The shortest-path planner's action from one (9, 9, 4) observation.

    The crop is the world rotated so the agent (at its centre) faces up; planning in it is planning in the world
    (turns and forwards are the same in both frames). Walls: wall or unseen cells; goal: the is_goal channel.
    """
    obj = obs[..., 0]
    walls = (obj == grid.WALL) | (obj == grid.UNSEEN)
    flat = jnp.argmax(obs[..., 3].reshape(-1))
    goal = jnp.stack([flat % VIEW, flat // VIEW]).astype(jnp.int32)
    state = NavState(walls, goal, jnp.array([CENTRE, CENTRE], jnp.int32), jnp.int32(3),  # 3 = north = up
                     jnp.int32(0))
    return shortest_path_action(state, None)


def shortest_path_apply(params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``evaluate``'s ``apply_fn``: logits peaked on the planner's action, for a batch of observations."""
    del params
    actions = jax.vmap(_plan_from_obs)(obs)
    return 10.0 * jax.nn.one_hot(actions, 3), jnp.zeros(actions.shape)


class FixedStartNavigation:
    """Navigation whose every layout (reset and after each goal) is one fixed start; steps and rewards are the
    real ``Navigation.step``'s."""

    num_actions = Navigation.num_actions
    obs_scale = Navigation.obs_scale

    def __init__(self, start: NavState):
        self.nav, self.start = Navigation(), start

    def observation_shape(self, params):
        return self.nav.observation_shape(params)

    def reset(self, key, params):
        return self.nav.observe(self.start), self.start

    def step(self, key, state, action, params):
        _, nxt, channels, truncated = self.nav.step(key, state, action, params)
        restart = self.start.replace(step_count=nxt.step_count)
        nxt = jax.tree.map(lambda a, b: jnp.where(channels.event, a, b), restart, nxt)
        return self.nav.observe(nxt), nxt, channels, truncated


def _fixed_start(agent_x: int, direction: int) -> NavState:
    walls = np.zeros((7, 7), bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    return NavState(jnp.asarray(walls), jnp.array([5, 3], jnp.int32), jnp.array([agent_x, 3], jnp.int32),
                    jnp.int32(direction), jnp.int32(0))


# Turns to face east (the goal's side) from each start direction: east 0, south/north 1 (one turn), west 2.
_TURNS_TO_EAST = {0: 0, 1: 1, 2: 2, 3: 1}


@functools.cache
def _evaluate_fixed(max_steps: int):
    """A jitted ``evaluate`` on the fixed-start world for one horizon; start, g and c are data (one compile)."""
    base = make_params(0, max_steps=max_steps)  # built outside the trace: max_steps stays concrete

    @jax.jit
    def run(start: NavState, goal_reward, step_cost, key) -> dict[str, jax.Array]:
        params = base.replace(goal_reward=jnp.float32(goal_reward), step_cost=jnp.float32(step_cost))
        return evaluate(shortest_path_apply, None, FixedStartNavigation(start), params, key, episodes=3)

    return run


HORIZON = 22  # one horizon, one compile; the start cells and directions below give every kind of last path


@pytest.mark.parametrize("agent_x", [1, 2, 3])
@pytest.mark.parametrize("direction", [0, 1, 2, 3])
@pytest.mark.parametrize("goal_reward, step_cost", [(0.4, None), (1.0, 0.1)])
def test_caregiver_return_on_a_fixed_layout_by_hand(agent_x, direction, goal_reward, step_cost):
    max_steps = HORIZON
    g, c = goal_reward, (0.9 / max_steps if step_cost is None else step_cost)
    D, T = 5 - agent_x, _TURNS_TO_EAST[direction]  # (x, 3) -> (5, 3): D forwards, the last one onto the goal
    L = T + D
    k, r = divmod(max_steps, L)
    f = max(0, r - T)  # forwards already taken on the unfinished last path
    want = {"goals_per_episode": k, "social_return": k * g, "extrinsic_return": -c * (k * (D - 1) + f)}
    want["caregiver_return"] = want["social_return"] + want["extrinsic_return"]

    out = _evaluate_fixed(max_steps)(_fixed_start(agent_x, direction), g, c, jax.random.key(direction))
    for name, value in want.items():
        got = float(out[name])
        assert got == pytest.approx(value, abs=1e-5), (
            f"{name}: got {got:.6f}, by hand {value:.6f} (start x={agent_x}, dir {direction}: T={T}, D={D}, "
            f"H={max_steps}: k={k} goals, {f} forwards on the unfinished path, g={g}, c={c:.4f})")


def test_fixed_layout_cases_cover_unfinished_paths_with_and_without_forwards():
    # The hand formula's branches are all exercised by the cases above: f > 0 and f = 0 with r > 0.
    cases = [(5 - x, _TURNS_TO_EAST[d]) for x in (1, 2, 3) for d in range(4)]
    fs = [(HORIZON % (T + D), max(0, HORIZON % (T + D) - T)) for D, T in cases]
    assert any(f > 0 for _, f in fs) and any(r > 0 and f == 0 for r, f in fs) and any(r == 0 for r, _ in fs), fs


# ---- the real world on a fixed corridor map ---------------------------------------------------------

CORRIDOR = ("#######", "#######", "#######", "#....##", "#######", "#######", "#######")


def _corridor_expectation(g: float, c: float, horizon: int) -> tuple[float, float, float, float]:
    """(E[goals], Var[goals], E[return], Var[return]) of one episode on the 1x4 corridor, by the recursion in the
    module docstring (and the same recursion for the goal count and both second moments)."""
    cells = range(4)
    pairs = [(a, b) for a, b in itertools.permutations(cells, 2)]  # (goal, agent), 12 equally likely
    p_d = {d: sum(abs(a - b) == d for a, b in pairs) / len(pairs) for d in (1, 2, 3)}
    p_t = {0: 0.25, 1: 0.5, 2: 0.25}
    goals, goals2, mean, second = [0.0], [0.0], [0.0], [0.0]
    for s in range(1, horizon + 1):
        eg = eg2 = ev = em = 0.0
        for (t, pt), (d, pd) in itertools.product(p_t.items(), p_d.items()):
            p = pt * pd
            if t + d <= s:
                lap = g - (d - 1) * c
                rest = s - t - d
                eg += p * (1.0 + goals[rest])
                eg2 += p * (1.0 + 2.0 * goals[rest] + goals2[rest])
                ev += p * (lap + mean[rest])
                em += p * (lap * lap + 2.0 * lap * mean[rest] + second[rest])
            else:
                tail = -c * max(0, s - t)
                ev += p * tail
                em += p * tail * tail
        goals.append(eg), goals2.append(eg2), mean.append(ev), second.append(em)
    return (goals[horizon], goals2[horizon] - goals[horizon] ** 2,
            mean[horizon], second[horizon] - mean[horizon] ** 2)


def test_corridor_probabilities_by_enumeration():
    # The path-length law used above, from the 12 ordered (goal, agent) pairs: D = 1: 6, D = 2: 4, D = 3: 2.
    pairs = list(itertools.permutations(range(4), 2))
    assert [sum(abs(a - b) == d for a, b in pairs) for d in (1, 2, 3)] == [6, 4, 2]
    # One lap with no horizon limit: E[return] = g - c E[D - 1] = 0.4 - 0.045 * 8/12.
    g, c = 0.4, 0.045
    _, _, v, _ = _corridor_expectation(g, c, horizon=1000)
    e_lap_len = 1.0 + (6 * 1 + 4 * 2 + 2 * 3) / 12  # E[T] + E[D] = 1 + 5/3
    assert v / 1000 == pytest.approx((g - c * 8 / 12) / e_lap_len, rel=0.01)  # renewal reward rate


def test_caregiver_return_on_a_corridor_map_matches_the_expected_value():
    params = make_params(0, map=CORRIDOR)
    g, c, horizon = 0.4, 0.9 / 20, int(params.max_steps)
    e_goals, var_goals, e_return, var = _corridor_expectation(g, c, horizon)
    episodes = 1000
    out = jax.jit(lambda k: evaluate(shortest_path_apply, None, Navigation(), params, k, episodes))(
        jax.random.key(7))
    se = math.sqrt(var / episodes)
    got = float(out["caregiver_return"])
    assert abs(got - e_return) < 5 * se, (
        f"caregiver_return {got:.4f} vs expected {e_return:.4f} (5 SE = {5 * se:.4f}, {episodes} episodes)")
    goals, se_goals = float(out["goals_per_episode"]), math.sqrt(var_goals / episodes)
    assert abs(goals - e_goals) < 5 * se_goals, (
        f"goals/episode {goals:.4f} vs expected {e_goals:.4f} (SE {se_goals:.4f})")
    # Channels are kept apart: R_s is g per goal exactly; R_e is the rest; and R_e is clearly below 0 here.
    assert float(out["social_return"]) == pytest.approx(g * float(out["goals_per_episode"]), rel=1e-5)
    assert got == pytest.approx(float(out["social_return"]) + float(out["extrinsic_return"]), abs=1e-5)
    e_extrinsic = e_return - g * e_goals
    assert e_extrinsic < -0.1 and float(out["extrinsic_return"]) < -0.1, (e_extrinsic, float(out["extrinsic_return"]))


def test_a_traced_map_with_its_horizon_given_evaluates_exactly_as_the_concrete_map():
    # The runner evaluates every map of a world kind with one program: the map is an argument (traced) and the
    # horizon, which sets the scan length, is given as a static int.
    params = make_params(0, map=CORRIDOR)
    key = jax.random.key(3)
    concrete = jax.jit(lambda k: evaluate(shortest_path_apply, None, Navigation(), params, k, 50))(key)
    traced = jax.jit(lambda k, p: evaluate(shortest_path_apply, None, Navigation(), p, k, 50,
                                           horizon=int(params.max_steps)))(key, params)
    for name, value in concrete.items():
        assert np.array_equal(value, traced[name]), name
    with pytest.raises(ValueError, match="horizon"):
        jax.jit(lambda k, p: evaluate(shortest_path_apply, None, Navigation(), p, k, 50))(key, params)
