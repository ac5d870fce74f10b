"""The empathy probe: stimuli, the index on calibration models, the ISR's self marker, the probe unit."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.isr import IsrConfig, encode_isr_input, isr_init_params
from internalize.empathy import probe as E
from internalize.empathy.study import EmpathyStudy
from internalize.empathy.unit import EmpathyProbe
from internalize.experiments.paper import QUICK_ISR, QUICK_LEARNER
from internalize.experiments.runner import Runner
from internalize.experiments.spec import Experiment, WorldSpec, world
from internalize.worlds import grid
from internalize.worlds.peer import SELF_CHANNEL, PeerNavigation, make_params

WORLD = PeerNavigation()


def _host(tree):
    return jax.tree.map(np.asarray, tree)


@pytest.mark.parametrize("view", E.VIEWS)
def test_goal_stimuli_differ_only_in_which_agent_is_about_to_step_onto_the_goal(view):
    st = E.build_stimuli(make_params(2, view=view), jax.random.key(3), 48)
    lg, pg, ln, pn = (_host(st.states[k]) for k in E.KINDS)
    for s in (pg, ln, pn):
        assert np.array_equal(s.walls, lg.walls) and np.array_equal(s.goal_pos, lg.goal_pos)
    # The goal pair swaps the two agents' poses and nothing else.
    assert np.array_equal(pg.peer_pos, lg.agent_pos) and np.array_equal(pg.peer_dir, lg.agent_dir)
    assert np.array_equal(pg.agent_pos, lg.peer_pos) and np.array_equal(pg.agent_dir, lg.peer_dir)
    front = lg.agent_pos + np.asarray(grid.DIR_TO_VEC)[lg.agent_dir]
    assert np.array_equal(front, lg.goal_pos), "the actor must face the goal from the cell next to it"
    # The other agent stands away from the goal, off blocks.
    assert np.all(np.abs(lg.peer_pos - lg.goal_pos).sum(axis=1) >= 2)
    n = np.arange(st.n)
    assert not lg.walls[n, lg.peer_pos[:, 1], lg.peer_pos[:, 0]].any()
    # Near misses: same actor cell and everything else, turned to a free cell that is not the goal.
    assert np.array_equal(ln.agent_pos, lg.agent_pos) and np.array_equal(ln.peer_pos, lg.peer_pos)
    assert np.array_equal(pn.peer_pos, pg.peer_pos) and np.array_equal(pn.agent_pos, pg.agent_pos)
    near = ln.agent_pos + np.asarray(grid.DIR_TO_VEC)[ln.agent_dir]
    assert not np.any(np.all(near == lg.goal_pos, axis=1))
    assert not lg.walls[n, near[:, 1], near[:, 0]].any()
    assert np.array_equal(pn.peer_dir, ln.agent_dir)
    # The action is marked on the actor's cell: the learner's own in learner_*, the peer's in peer_*.
    for kind in E.KINDS:
        obs, mark = np.asarray(st.obs[kind]), np.asarray(st.mark[kind])
        assert np.all(mark.sum(axis=(1, 2)) == 1)
        on_self = obs[..., SELF_CHANNEL][mark] == 1
        assert np.all(on_self) if kind.startswith("learner") else not np.any(on_self)


@pytest.mark.parametrize("view", E.VIEWS)
def test_a_ball_peers_goal_and_near_miss_are_the_same_input_so_the_kind_level_cannot_be_read(view):
    """A ball has no heading: turned toward the goal or away, the peer looks the same and the mark sits on the same
    cell, so its peer-goal and peer-near stimuli are identical inputs (the probe's stimuli_distinct reads 0 and the
    precondition fails); an agent-kind peer's always differ."""
    for similarity, distinct in (("kind", False), ("colour", True), ("identical", True)):
        st = E.build_stimuli(make_params(2, similarity=similarity, view=view), jax.random.key(4), 32)
        same = [np.array_equal(np.asarray(st.obs["peer_goal"][i]), np.asarray(st.obs["peer_near"][i]))
                and np.array_equal(np.asarray(st.mark["peer_goal"][i]), np.asarray(st.mark["peer_near"][i]))
                for i in range(32)]
        assert (not any(same)) if distinct else all(same), similarity


def test_observations_of_the_stimuli_are_the_worlds_own():
    params = make_params(2, similarity="colour", view="allocentric")
    st = E.build_stimuli(params, jax.random.key(5), 8)
    state = jax.tree.map(lambda x: x[2], st.states["peer_goal"])
    assert np.array_equal(np.asarray(st.obs["peer_goal"][2]), np.asarray(WORLD.observe(state, params)))


@pytest.mark.expensive
@pytest.mark.parametrize("view", E.VIEWS)
@pytest.mark.parametrize("similarity", ["identical", "colour"])
def test_index_is_0_for_a_self_only_reward_and_1_for_an_any_agent_reward(view, similarity):
    st = E.build_stimuli(make_params(2, similarity=similarity, view=view), jax.random.key(1), 64)
    own = E.empathy_index(E.score(E.own_goal_model(view), st))
    anyone = E.empathy_index(E.score(E.any_agent_goal_model(view), st))
    assert own.means["learner_goal"] == 1.0 and own.means["learner_near"] == 0.0
    assert own.index == 0.0
    assert anyone.index == 1.0
    # A model blind to the goal event has no defined index.
    flat = E.empathy_index(E.score(lambda o, a, m: jnp.zeros(o.shape[0]), st))
    assert np.isnan(flat.index)


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="similarity"):
        make_params(2, similarity="twin")
    with pytest.raises(ValueError, match="view"):
        E.own_goal_model("bird's-eye")
    with pytest.raises(ValueError, match="^width: got 3.0; allowed: one of widths"):
        EmpathyStudy(width=3.0)
    with pytest.raises(ValueError, match="^widths: got"):
        EmpathyStudy(widths=(1.0, 1.0))
    with pytest.raises(ValueError, match="^isr: .* network 'reference' or 'mlp'"):
        EmpathyStudy(isr=IsrConfig())
    with pytest.raises(ValueError, match="^seeds: got"):
        EmpathyStudy(seeds=(1,))
    with pytest.raises(ValueError, match="^peer_rgb: .*three numbers"):
        make_params(2, colours="rgb", peer_rgb=(11, 0, 0))
    with pytest.raises(ValueError, match="^colours: "):
        make_params(2, colours="hsv")
    with pytest.raises(ValueError, match="similarity"):
        WorldSpec("p", kind="peer", similarity="twin")
    with pytest.raises(ValueError, match="similarity"):
        WorldSpec("n", similarity="colour")  # a navigation world has no peer
    st = E.build_stimuli(make_params(2), jax.random.key(0), 4)
    empty = st._replace(obs={**st.obs, "peer_goal": st.obs["peer_goal"][:0]})
    with pytest.raises(ValueError, match="no peer_goal stimuli"):
        E.score(E.own_goal_model("egocentric"), empty)
    with pytest.raises(ValueError, match="learner_goal"):
        E.empathy_index({"peer_goal": np.ones(3), "learner_near": np.ones(3), "peer_near": np.ones(3)})
    with pytest.raises(ValueError, match="n: must be a positive integer"):
        E.build_stimuli(make_params(2), jax.random.key(0), 0)


def test_isr_marks_the_action_on_the_self_channel_not_on_a_lookalike_peer():
    params = make_params(2, similarity="identical", view="allocentric")
    st = E.build_stimuli(params, jax.random.key(2), 4)
    obs = st.obs["learner_goal"]
    by_colour = encode_isr_input(IsrConfig(network="mlp", encoding="onehot"), obs, st.action)
    by_self = encode_isr_input(IsrConfig(network="mlp", encoding="onehot", self_channel=SELF_CHANNEL), obs, st.action)
    assert np.all(np.asarray(by_colour[..., -3:]).sum(axis=(1, 2, 3)) == 2), "both red agents look like the learner"
    marked = np.asarray(by_self[..., -3:]).sum(axis=-1) > 0
    assert np.array_equal(marked, np.asarray(obs[..., SELF_CHANNEL]) == 1)
    # An explicit mark moves it (the probe's peer stimuli).
    moved = encode_isr_input(IsrConfig(network="mlp", encoding="onehot", self_channel=SELF_CHANNEL),
                             st.obs["peer_goal"], st.action, st.mark["peer_goal"])
    assert np.array_equal(np.asarray(moved[..., -3:]).sum(axis=-1) > 0, np.asarray(st.mark["peer_goal"]))


@pytest.mark.expensive
def test_isr_width_scales_the_network_and_is_refused_for_the_policy_network():
    def size(w: float) -> int:
        params = isr_init_params(IsrConfig(network="reference", width=w), jax.random.key(0), (9, 9, 5))
        return sum(x.size for x in jax.tree.leaves(params))

    assert size(0.5) < size(1.0) < size(2.0)
    with pytest.raises(ValueError, match="width"):
        IsrConfig(network="policy", width=2.0)
    assert world("peer-kind-allocentric").params().view == "allocentric"


@pytest.mark.expensive
def test_the_probe_unit_scores_an_experiments_own_isr_with_its_null_and_calibrations(tmp_path):
    w = WorldSpec("peer-identical-egocentric", kind="peer", n_blocks=2, similarity="identical", view="egocentric")
    exp = Experiment(name="peer-probe", title="probe", socialization_world=w, autonomy_worlds=(w,), conditions=(),
                     socialization_steps=4 * 1024, autonomy_steps=1024, seeds=(0, 1), evaluation_episodes=0,
                     learner=QUICK_LEARNER, isr=dataclasses.replace(QUICK_ISR, updates_fraction=3.0),
                     probes=(EmpathyProbe(isr_widths=(1.0,), n_stimuli=32),))
    df = Runner(exp, tmp_path, progress=False, log=lambda _: None).run()
    probe = df[df["phase"] == "empathy"]
    met = probe[probe["metric"] == "precondition_met"]
    assert set(met["condition"]) == {"isr-width-1", "untrained"} and met["value"].isin([0.0, 1.0]).all()
    assert (met.loc[met["condition"] == "untrained", "value"] == 0).all()
    calib = probe[probe["condition"].str.startswith("oracle")].groupby("condition")["value"].mean()
    assert calib["oracle-own"] == 0.0 and calib["oracle-any"] == 1.0
    own = probe[(probe["metric"] == "own_gap") & (probe["condition"] == "isr-width-1")]
    assert len(own) == 2 and np.isfinite(own["value"]).all()


@pytest.mark.expensive
def test_evaluation_counts_the_peers_goals_and_blocked_moves_per_episode():
    from internalize.agents.evaluate import evaluate

    params = make_params(2, peer_noise=0.0)

    def stand_still(p, obs):
        return jnp.zeros(obs.shape[:-3] + (3,)).at[..., grid.LEFT].set(1.0), None

    out = jax.jit(lambda k: evaluate(stand_still, None, WORLD, params, k, 16))(jax.random.key(0))
    # A learner turning in place never reaches the goal; a noiseless peer walks to it again and again.
    assert float(out["goals_per_episode"]) == 0.0
    assert float(out["peer_goals_per_episode"]) >= 1.5

    # The same episodes stepped by hand (evaluate's key schedule): the counts are the peer's own events.
    k_reset, k_run = jax.random.split(jax.random.key(0))
    _, state = jax.vmap(WORLD.reset, in_axes=(0, None))(jax.random.split(k_reset, 16), params)
    goals = np.zeros(16)
    step = jax.jit(jax.vmap(WORLD.step, in_axes=(0, 0, None, None)))
    for k in jax.random.split(k_run, int(params.max_steps)):
        before = np.asarray(state.peer_pos)
        goal = np.asarray(state.goal_pos)
        _, state, _, _ = step(jax.random.split(jax.random.split(k)[1], 16), state, grid.LEFT, params)
        front = np.asarray(state.peer_pos)
        goals += np.all(front == goal, axis=1) & np.any(front != before, axis=1)
    assert float(out["peer_goals_per_episode"]) == pytest.approx(goals.mean())
    assert float(out["peer_blocked_per_episode"]) == pytest.approx(np.asarray(state.peer_blocked).mean())
