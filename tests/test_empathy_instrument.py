"""The empathy instrument: its stimuli along continua, its latent measures, its data source and its calibrations.

The learned controls and the study's run are in ``test_empathy.py``.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.empathy import instrument as ins
from internalize.empathy import latent
from internalize.empathy import probe as stim
from internalize.empathy.data import collect
from internalize.worlds import grid
from internalize.worlds.peer import PeerNavigation, make_params

CELLS = [ins.Cell(a, 0.0) for a in np.linspace(0, 1, 6)] + [ins.Cell(1.0, i) for i in np.linspace(0, 1, 6)[1:]]


@pytest.fixture(scope="module")
def cells():
    params = make_params(similarity="colour", view="allocentric", colours="rgb")
    bases = [stim.build_stimuli(params, jax.random.key(s), 32) for s in (0, 1)]
    return {c: ins.cell_stimuli(bases, params, c, 0.1) for c in CELLS}


def test_stimulus_pairs_differ_in_input_at_every_level_and_the_distance_follows_the_continua(cells):
    for cs in cells.values():
        assert np.all(cs.distinct == 1.0)  # every peer-goal stimulus differs from its near miss
    appearance = [cells[c].input_distance.mean() for c in CELLS[:6]]
    identity = [cells[CELLS[5]].input_distance.mean()] + [cells[c].input_distance.mean() for c in CELLS[6:]]
    assert np.all(np.diff(appearance) > 0)  # the peer's colour moves away from the learner's
    assert np.all(np.diff(identity) < 0)  # the peer carries more and more of the self-marker
    assert appearance[0] > 0  # same colour, but only the learner carries the marker
    assert identity[-1] > 0  # both carry the marker, but the peer is blue


def test_the_continua_change_only_the_peers_cell():
    params = make_params(similarity="colour", view="allocentric", colours="rgb")
    base = stim.build_stimuli(params, jax.random.key(3), 8)
    a = stim.rerender(base, ins.cell_params(params, ins.Cell(0.4, 0.0)))
    b = stim.rerender(base, ins.cell_params(params, ins.Cell(0.4, 0.6)))
    peer = base.states["learner_goal"].peer_pos
    for k in range(8):
        x, y = np.asarray(peer[k])
        diff = np.argwhere(np.any(np.asarray(a.obs["learner_goal"][k] != b.obs["learner_goal"][k]), axis=-1))
        assert diff.tolist() == [[y, x]]
        assert float(b.obs["learner_goal"][k, y, x, 4]) == pytest.approx(0.6)
        np.testing.assert_allclose(np.asarray(a.obs["learner_goal"][k, y, x, 5:8]), [6.0, 0.0, 4.0], atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_calibrations_read_exactly_0_and_1(cells, cell):
    readings = {name: ins.read(ins.oracle_reading(model), {cell: cells[cell]}, (0, 1),
                               ins.Thresholds(0, 0.0, 0.0))[cell] for name, model in ins.oracles("allocentric").items()}
    own = [r["empathy_index"] for r in readings["oracle-own"]]
    anyone = [r["empathy_index"] for r in readings["oracle-any"]]
    assert anyone == [1.0, 1.0]
    # Where the peer carries the whole self-marker, self and other are the same input: index 1 for any model.
    assert own == ([1.0, 1.0] if cell.identity == 1.0 else [0.0, 0.0])
    assert all(r["precondition_met"] == 1.0 for rs in readings.values() for r in rs)


def _direct_hsic(k: np.ndarray, ell: np.ndarray) -> float:
    """The unbiased HSIC as means over distinct index tuples (Song et al. 2012's U-statistic), term by term."""
    n = k.shape[0]
    pairs = [(i, j) for i, j in itertools.permutations(range(n), 2)]
    t1 = np.mean([k[i, j] * ell[i, j] for i, j in pairs])
    t2 = np.mean([k[i, j] * ell[q, r] for i, j, q, r in itertools.permutations(range(n), 4)])
    t3 = np.mean([k[i, j] * ell[i, q] for i, j, q in itertools.permutations(range(n), 3)])
    return t1 + t2 - 2 * t3


def test_latent_measures_on_hand_made_activations_match_direct_computations():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 5))
    b = rng.normal(size=(7, 3)) @ rng.normal(size=(3, 5))
    assert latent.self_other_distance(a, a) == 0.0
    assert latent.linear_cka(a, a) == pytest.approx(1.0)
    assert latent.linear_cka(a, 3.0 * a @ np.linalg.qr(rng.normal(size=(5, 5)))[0]) == pytest.approx(1.0)
    direct = _direct_hsic(a @ a.T, b @ b.T) / np.sqrt(_direct_hsic(a @ a.T, a @ a.T) * _direct_hsic(b @ b.T, b @ b.T))
    assert latent.linear_cka(a, b) == pytest.approx(direct)
    between = np.mean([np.sum((a[i] - a[j]) ** 2) for i, j in itertools.permutations(range(7), 2)])
    assert latent.self_other_distance(a, b) == pytest.approx(np.mean(np.sum((a - b) ** 2, axis=1)) / between)
    near = a - 1.0
    assert latent.event_alignment(a, near, a, near) == pytest.approx(1.0)
    e1, e2 = np.zeros((7, 5)), np.zeros((7, 5))
    e1[:, 0], e2[:, 1] = 1.0, 1.0
    assert latent.event_alignment(e1, np.zeros((7, 5)), e2, np.zeros((7, 5))) == 0.0
    assert latent.event_alignment(e1, np.zeros((7, 5)), -e1, np.zeros((7, 5))) == -1.0
    with pytest.raises(ValueError, match="n >= 4"):
        latent.linear_cka(a[:3], b[:3])


def test_the_scripted_learner_is_paid_often_and_the_peer_samples_show_its_actions():
    params = make_params(similarity="colour", view="allocentric", colours="rgb")
    s = jax.jit(lambda k: collect(params, k, 4, 200))(jax.random.key(0))
    assert s.obs.shape == (800, 7, 7, 12) and s.obs.dtype == jnp.uint8
    paid = np.asarray(s.paid > 0)
    assert paid.mean() > 0.05  # a goal every few steps, not 0.01 per episode
    assert set(np.unique(np.asarray(s.paid))) <= {0.0, np.float32(0.4)}
    # The mark is on the learner's cell (is_self), the peer mark on the other agent's.
    np.testing.assert_array_equal(np.asarray(s.mark), np.asarray(s.obs[..., 4] == 1))
    peer_cell = np.asarray((s.obs[..., 0] == grid.AGENT) & (s.obs[..., 4] == 0))
    np.testing.assert_array_equal(np.asarray(s.peer_mark), peer_cell)
    # A peer that reached the goal moved forward from the cell in front of it.
    reached = np.flatnonzero(np.asarray(s.peer_reached))
    assert reached.size > 20
    assert np.all(np.asarray(s.peer_action)[reached] == grid.FORWARD)


def test_a_naive_peer_never_reaches_the_goal():
    params = make_params(similarity="colour", view="allocentric", colours="rgb", peer_noise=1.0,
                         peer_enters_goal=False)
    s = jax.jit(lambda k: collect(params, k, 4, 300))(jax.random.key(1))
    assert not np.any(np.asarray(s.peer_reached))
    assert np.asarray(s.paid > 0).mean() > 0.05


def test_rgb_encoding_places_colours_as_vectors_and_observe_values_keeps_fractions():
    world = PeerNavigation()
    params = make_params(similarity="colour", view="allocentric", colours="rgb", peer_rgb=(2.5, 0, 7.5),
                         peer_self=0.25)
    _, state = world.reset(jax.random.key(0), params)
    obs, _ = world.observe_values(state, params, state.agent_pos)
    ax, ay = np.asarray(state.agent_pos)
    px, py = np.asarray(state.peer_pos)
    gx, gy = np.asarray(state.goal_pos)
    np.testing.assert_allclose(np.asarray(obs[ay, ax, 5:8]), [10, 0, 0])
    np.testing.assert_allclose(np.asarray(obs[py, px, 5:8]), [2.5, 0, 7.5])
    np.testing.assert_allclose(np.asarray(obs[gy, gx, 5:8]), [0, 10, 0])
    np.testing.assert_allclose(np.asarray(obs[0, 0, 5:8]), [5, 5, 5])
    assert float(obs[py, px, 4]) == 0.25 and float(obs[ay, ax, 4]) == 1.0
    assert np.all(np.asarray(obs[..., 1]) == 0)  # no colour code in the rgb encoding
    assert world.observe(state, params).shape == (7, 7, 12)
    code = make_params(similarity="colour", view="allocentric")
    assert world.observe(state, code).shape == (7, 7, 5)


def test_condition_labels_read_back():
    label = ins.condition("isr", 0.25, "naive", ins.Cell(0.6, 0.0))
    assert ins.parse_condition(label) == {"probe_model": "isr", "width": 0.25, "arm": "naive", "appearance": 0.6,
                                          "identity": 0.0}
    with pytest.raises(ValueError, match="not a probe_model"):
        ins.parse_condition("isr-width-1")


def test_rgb_headings_are_one_hot_on_agent_cells_only():
    world = PeerNavigation()
    params = make_params(similarity="colour", view="allocentric", colours="rgb")
    _, state = world.reset(jax.random.key(4), params)
    obs = np.asarray(world.observe(state, params))
    heading = obs[..., 8:]
    for pos, d in ((state.agent_pos, state.agent_dir), (state.peer_pos, state.peer_dir)):
        x, y = np.asarray(pos)
        np.testing.assert_array_equal(heading[y, x], 10 * np.eye(4)[int(d)])
    assert heading.sum() == 20  # nowhere else


def test_the_stopping_rule_reads_the_fall_of_the_heldout_mse_over_the_window_against_the_variance():
    from internalize.empathy.reward_model import has_converged

    var = np.array([1.0, 1.0, 1.0])
    # Checkpoints 100 updates apart, window 200: compare the last MSE with the one two checkpoints before.
    mse = np.array([[0.5, 0.1, 0.0500, 0.0495],     # fell by 0.0505 over the window: still learning
                    [0.5, 0.0102, 0.0101, 0.0101],  # fell by 0.0001 < 1e-3 * var: converged
                    [0.5, 0.0100, 0.0300, 0.0200]])  # rose (noise): converged
    assert has_converged(mse, var, 100, 200, 1e-3).tolist() == [False, True, True]
    assert has_converged(mse * 10, var * 10, 100, 200, 1e-3).tolist() == [False, True, True]  # scale-free
    assert not has_converged(mse[:, :2], var, 100, 200, 1.0).any()  # the window has not run yet
    assert has_converged(mse[:, :3], var, 100, 200, 1.0).all()


def test_training_to_convergence_stops_once_every_seed_meets_the_rule_and_else_at_the_budget():
    import dataclasses

    from internalize.empathy import reward_model as rm
    from internalize.empathy.study import _data, _isr, empathy_study

    study = dataclasses.replace(empathy_study("quick"), seeds=(0, 1), n_envs=4, n_steps=256)
    data = jax.vmap(lambda s: rm.training_data(s, "none", 0.4))(_data(study, "exposed"))
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    config = dataclasses.replace(_isr(), width=0.25)
    loose = rm.train_to_convergence(config, data, keys, 100, 3000, 200, 0.5)  # a loose rule holds early
    assert loose.heldout_mse.shape[1] < 30 and loose.converged.all()  # of a 30-chunk budget
    strict = rm.train_to_convergence(config, data, keys, 100, 500, 200, 1e-9)  # an impossible rule: the budget
    assert strict.heldout_mse.shape[1] == 5 and not strict.converged.any()
    assert jax.tree.leaves(strict.params)[0].shape[:2] == (2, 5)
