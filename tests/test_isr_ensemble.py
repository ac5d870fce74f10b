"""ISR ensembles (``[isr] ensemble = K``) and the policy's KL from its departure policy.

K = 1 is the single ISR (same identity, same code path); members differ in initialization and bootstrap; the three
reductions compute their formulas; bootstraps are deterministic per seed; disagreement is 0 when members agree;
``kl_from_departure`` is the exact categorical KL and 0 at departure; evaluation rows carry the ensemble's metrics.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.isr import IsrConfig, isr_init, isr_init_params, isr_members, isr_reward, isr_update, train_isr
from internalize.agents.isr_data import balanced_sampler, isr_buffer_add, isr_buffer_init, isr_split
from internalize.agents.isr_ensemble import bootstrap_sampler, detection_auroc, disagreement, reduce_members
from internalize.agents.ppo import categorical_kl, make_train
from internalize.config_error import ConfigError
from internalize.experiments.spec import Experiment
from internalize.worlds.navigation import Navigation, make_params
from test_experiments import TINY_ISR, TINY_LEARNER, tiny

CFG = IsrConfig(network="mlp", encoding="onehot", learning_rate=1e-3, batch_size=32, n_updates=40, log_every=10,
                width=0.25)


def _buffer(n: int = 600, seed: int = 0):
    obs = jax.random.randint(jax.random.key(seed), (n, 9, 9, 4), 0, 11).astype(jnp.uint8)
    index = jnp.arange(n)
    social = jnp.where(index % 4 == 0, 0.4, 0.0)
    return isr_buffer_add(isr_buffer_init(n), obs, index % 3, social, jnp.ones(n, bool))


def _leaves_equal(a, b) -> bool:
    return all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_k1_is_the_single_isr_same_identity_same_numbers():
    assert Experiment.identity_of(tiny().to_dict()) == Experiment.identity_of(
        tiny(isr=dataclasses.replace(TINY_ISR, ensemble=1)).to_dict())
    buf = _buffer()
    params, _, _ = train_isr(CFG, buf, jax.random.key(3))
    # A K = 1 config has no member axis: its parameters have the single network's shapes ...
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, isr_init_params(CFG, jax.random.key(0)))
    # ... and its one member's prediction is R_i itself, bit for bit.
    obs, act = buf.obs[:50], buf.action[:50]
    assert jnp.array_equal(isr_members(CFG, params, obs, act)[0], isr_reward(CFG, params, obs, act))


@pytest.fixture(scope="module")
def ensemble():
    cfg = dataclasses.replace(CFG, ensemble=3)
    buf = _buffer()
    params, opt_state, curve = train_isr(cfg, buf, jax.random.key(3))
    return cfg, buf, params, curve


def test_members_differ_and_are_stacked(ensemble):
    cfg, buf, params, curve = ensemble
    assert all(x.shape[0] == 3 for x in jax.tree.leaves(params))
    preds = np.asarray(isr_members(cfg, params, buf.obs[:64], buf.action[:64]))
    assert preds.shape == (3, 64)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.allclose(preds[i], preds[j], atol=1e-6)
    assert float(jnp.mean(disagreement(jnp.asarray(preds)))) > 1e-4
    # The ensemble learns: its training loss falls, as each member's does.
    loss = np.asarray(curve.train_loss)
    assert loss[-1] < loss[0]


def test_members_differ_in_bootstrap_not_only_initialization(ensemble):
    cfg, buf, _, _ = ensemble
    split = isr_split(buf, cfg.holdout_fraction, cfg.split)
    sampler = balanced_sampler(buf, split.train)
    a, b = (bootstrap_sampler(sampler, jax.random.key(k)) for k in (1, 2))
    n_pos, n_all = int(sampler.n_pos), int(sampler.n_pos + sampler.n_neg)
    rewarded = np.asarray(buf.social) != 0
    train = np.asarray(split.train)
    for s in (a, b):
        order = np.asarray(s.order)
        assert (s.n_pos, s.n_neg) == (sampler.n_pos, sampler.n_neg)  # counts kept: same balance, same epoch
        assert rewarded[order[:n_pos]].all() and not rewarded[order[n_pos:n_all]].any()  # stratified
        assert train[order[:n_all]].all()  # never a held-out transition
        # A bootstrap repeats some transitions and leaves others out (about 1/e of them).
        assert len(np.unique(order[:n_all])) < 0.8 * n_all
    assert not np.array_equal(np.asarray(a.order[:n_all]), np.asarray(b.order[:n_all]))


def test_ensemble_training_is_deterministic_per_seed(ensemble):
    cfg, buf, params, _ = ensemble
    again, _, _ = train_isr(cfg, buf, jax.random.key(3))
    other, _, _ = train_isr(cfg, buf, jax.random.key(4))
    assert _leaves_equal(params, again)
    assert not _leaves_equal(params, other)


def test_reductions_compute_their_formulas_on_hand_made_members():
    members = jnp.asarray([[1.0, 2.0, -1.0], [3.0, 6.0, -1.0], [5.0, 1.0, -1.0]])
    m = np.asarray(members)
    mean, std = m.mean(0), m.std(0)
    for reduce, want in (("mean", mean), ("min", m.min(0)), ("lcb", mean - 0.5 * std)):
        cfg = IsrConfig(ensemble=3, ensemble_reduce=reduce, ensemble_lambda=0.5)
        np.testing.assert_allclose(np.asarray(reduce_members(cfg, members)), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(disagreement(members)), std, rtol=1e-6)
    assert float(disagreement(members)[2]) == 0.0


def test_identical_members_disagree_by_zero_and_every_reduction_is_the_member():
    one = isr_init_params(CFG, jax.random.key(5))
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 4), one)
    buf = _buffer(100)
    single = isr_reward(CFG, one, buf.obs, buf.action)
    for reduce in ("mean", "min", "lcb"):
        cfg = dataclasses.replace(CFG, ensemble=4, ensemble_reduce=reduce)
        members = isr_members(cfg, stacked, buf.obs, buf.action)
        assert float(jnp.max(disagreement(members))) == 0.0
        np.testing.assert_allclose(np.asarray(isr_reward(cfg, stacked, buf.obs, buf.action)), np.asarray(single),
                                   rtol=1e-6, atol=1e-7)


def test_continual_updates_train_every_member():
    cfg = dataclasses.replace(CFG, ensemble=2)
    state = isr_init(cfg, jax.random.key(0))
    new, loss = isr_update(state, _buffer(), jax.random.key(1), n_updates=5)
    assert math.isfinite(float(loss)) and int(new.updates) == 5
    for before, after in zip(jax.tree.leaves(state.params), jax.tree.leaves(new.params), strict=True):
        assert before.shape[0] == 2
        assert all(not jnp.array_equal(before[k], after[k]) for k in range(2))


def test_bad_ensemble_settings_name_the_field():
    for changes, field in (({"ensemble": 0}, "ensemble"), ({"ensemble": 65}, "ensemble"),
                           ({"ensemble_reduce": "max"}, "ensemble_reduce"),
                           ({"ensemble_lambda": -1.0}, "ensemble_lambda"), ({"ensemble": True}, "ensemble")):
        with pytest.raises(ConfigError, match=field):
            IsrConfig(**changes)


def test_detection_auroc_counts_pairs_ties_half():
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, 200).astype(float)  # many ties
    wrong = rng.random(200) < 0.3
    pos, neg = score[wrong], score[~wrong]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert detection_auroc(score, wrong) == pytest.approx(brute, abs=1e-12)
    assert detection_auroc(np.arange(4.0), np.array([0, 0, 1, 1], bool)) == 1.0
    assert math.isnan(detection_auroc(np.arange(4.0), np.zeros(4, bool)))


# ------------------------------------------------------------------------------------- KL from departure
def test_categorical_kl_matches_the_closed_form():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.1, 0.6, 0.3])
    want = float(np.sum(p * np.log(p / q)))
    got = float(categorical_kl(jnp.log(jnp.asarray(p)) + 1.7, jnp.log(jnp.asarray(q)) - 0.4))  # logits: any shift
    assert got == pytest.approx(want, rel=1e-5)
    assert float(categorical_kl(jnp.asarray([0.3, 2.0, -1.0]), jnp.asarray([0.3, 2.0, -1.0]))) == 0.0


def test_kl_from_departure_is_zero_at_departure_then_grows():
    learner = make_train(dataclasses.replace(TINY_LEARNER, total_timesteps=4 * 128), Navigation(),
                         make_params(n_blocks=1))
    state = learner.init(jax.random.key(0))
    departure = state.params
    _, metrics = jax.jit(lambda s, a: learner.run(s, 4, None, a))(state, departure)
    kl = np.asarray(metrics["kl_from_departure"])
    assert kl[0] == 0.0  # the first rollout is collected by the departure policy itself
    assert (kl[1:] > 0).all() and kl[-1] > kl[1]
    _, plain = jax.jit(lambda s: learner.run(s, 1))(learner.init(jax.random.key(0)))
    assert "kl_from_departure" not in plain


# ---------------------------------------------------------------------------------------- a whole run
@pytest.mark.expensive
def test_a_tiny_run_with_an_ensemble_logs_disagreement_kl_and_evaluation_metrics(tmp_path):
    from internalize.experiments.runner import run_experiment

    exp = tiny(isr=dataclasses.replace(TINY_ISR, ensemble=3, ensemble_reduce="lcb"))
    df = run_experiment(exp, tmp_path, progress=False)
    aut = df[df["phase"] == "autonomy"]
    dis = aut[aut["metric"] == "isr_disagreement"]
    assert set(dis["condition"]) == {"caregiver", "none", "isr"} and (dis["value"] > 0).all()
    kl = aut[aut["metric"] == "kl_from_departure"].sort_values("step")
    assert (kl.groupby(["condition", "seed"])["value"].first() == 0.0).all()
    ev = df[df["phase"] == "evaluation"].pivot_table(index=["condition", "seed"], columns="metric", values="value")
    assert (ev["isr_disagreement"] > 0).all()
    assert ev["isr_wrong_rate"].between(0, 1).all()
    auroc = ev["isr_detection_auroc"].dropna()
    assert auroc.between(0, 1).all()
    assert np.isfinite(ev["internal_return"]).all()
    # A single ISR's evaluation has none of the ensemble's rows.
    single = run_experiment(tiny(), tmp_path / "single", progress=False)
    assert not single["metric"].isin(["isr_disagreement", "isr_detection_auroc"]).any()
