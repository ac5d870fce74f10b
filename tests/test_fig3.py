"""Figure 3b's ISRs vs amount of data: one point per (seed, size), the whole socialization trained once, every size
scored on the same held-out transitions, and the update budget per size the preset chooses."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from internalize.agents.isr import IsrConfig, isr_init_params, train_isr
from internalize.agents.isr_data import first_transitions, isr_buffer_add, isr_buffer_init, isr_split
from internalize.agents.isr_metrics import isr_metrics, isr_metrics_seeds, isr_predict_all
from internalize.analysis.claims import claims
from internalize.analysis.table import isr_final_per_run, isr_heldout_shared
from internalize.experiments import phases
from internalize.experiments.paper import FIG3_SIZES, PAPER_PHASE, paper_experiment
from internalize.experiments.runner import Runner
from internalize.experiments.spec import learner_config

TINY_LEARNER = learner_config(torso="mlp", n_envs=4, n_steps=32, batch_size=64, n_epochs=2, learning_rate=1e-3)
TINY_STEPS = 4 * 32 * 6  # 6 rollouts = 768 stored transitions per seed
# The last size is the whole socialization. Fixed seeds (3, 4), as the suite's tiny() runs: the tests are about
# bookkeeping, and a tiny socialization's first few hundred transitions may hold no goal for some other seeds.
SIZES = (384, 576, TINY_STEPS)
TINY_ISR = IsrConfig(network="mlp", encoding="onehot", learning_rate=1e-3, batch_size=32, data_sizes=SIZES,
                   data_size_updates="full")


def tiny_fig3(**isr_changes):
    exp = paper_experiment("fig3", "quick")
    return dataclasses.replace(exp, seeds=(3, 4), socialization_steps=TINY_STEPS, learner=TINY_LEARNER,
                               isr=dataclasses.replace(TINY_ISR, **isr_changes), chunk_rollouts=2,
                               evaluation_episodes=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    exp = tiny_fig3()
    df = Runner(exp, tmp_path_factory.mktemp("fig3"), progress=False, log=lambda m: None).run()
    return exp, df


@pytest.mark.expensive
def test_the_full_data_isr_is_shared_and_the_sizes_are_a_unit_of_their_own(run, tmp_path):
    """Figure 3's full-data ISR is the ISR of an experiment with the same socialization and no data sizes
    (Figure 1b/4a's): trained once, taken from the shared units, with the numbers a computation alone gives."""
    from internalize.experiments.runner import run_experiment

    exp, alone = run
    fields = ("seeds", "socialization_steps", "learner", "chunk_rollouts")
    first = dataclasses.replace(paper_experiment("fig4a", "quick"), **{f: getattr(exp, f) for f in fields},
                                isr=dataclasses.replace(exp.isr, data_sizes=()), conditions=("isr",),
                                autonomy_steps=TINY_LEARNER.n_envs * TINY_LEARNER.n_steps, evaluation_episodes=0)
    run_experiment(first, tmp_path, progress=False, log=lambda _: None)
    logs: list[str] = []
    shared = run_experiment(exp, tmp_path, progress=False, log=logs.append)
    assert any("fig3/isr: identical" in m for m in logs) and not any("isr-sizes: identical" in m for m in logs), logs
    order = ["condition", "world", "seed", "phase", "step", "metric"]
    pd.testing.assert_frame_equal(shared.sort_values(order).reset_index(drop=True),
                                  alone.sort_values(order).reset_index(drop=True))
    timings = json.loads((tmp_path / "fig3" / "manifest.json").read_text())["timings"]
    assert set(timings) == {"socialization", "isr", "isr-sizes"} and timings["isr"] == 0.0, timings
    sizes = pd.read_parquet(tmp_path / "fig3" / "units" / "isr-sizes.parquet")
    assert set(sizes["condition"]) == {f"isr-data-{n}" for n in SIZES[:-1]}


@pytest.mark.expensive
def test_an_interrupted_directory_of_an_earlier_version_keeps_its_sizes_in_the_isr_unit(tmp_path):
    """Before isr-sizes existed the isr unit held the data-size ISRs: resuming such a directory must not train
    them again (their rows would be duplicates and the table refused)."""
    from internalize.experiments.results import ResultsStore
    from internalize.experiments.runner import run_experiment
    from internalize.storage import remove_verified, write_json_verified, write_parquet_verified

    exp = tiny_fig3()
    done = run_experiment(exp, tmp_path, progress=False, log=lambda _: None)
    store = ResultsStore(tmp_path, exp.name)
    manifest = store.read_manifest()
    store.identity = manifest["identity"]
    old = pd.concat([store.read_unit("isr"), store.read_unit("isr-sizes")], ignore_index=True)
    write_parquet_verified(store.unit_path("isr"), old, store.identity)
    remove_verified(store.unit_path("isr-sizes"))
    remove_verified(store.table_path)
    del manifest["timings"]["isr-sizes"]
    write_json_verified(store.manifest_path, {**manifest, "status": "running"})

    again = run_experiment(exp, tmp_path, progress=False, log=lambda _: None)
    pd.testing.assert_frame_equal(again, done)
    assert "isr-sizes" not in store.read_manifest()["timings"] and not store.unit_path("isr-sizes").exists()


def _n_train(n: int) -> int:
    return math.floor(0.9 * n)  # the chronological split of the first n transitions (holdout_fraction 0.1)


# ------------------------------------------------------------------------------------------------ tiny real run
@pytest.mark.expensive
def test_each_seed_and_size_is_one_point(run):
    exp, df = run
    runs = isr_final_per_run(df)
    assert not runs.duplicated(["seed", "n_train"]).any(), runs
    assert sorted(runs["n_train"].unique()) == [_n_train(n) for n in SIZES]
    assert (runs.groupby("n_train")["seed"].apply(sorted) == [list(exp.seeds)] * len(SIZES)).all()
    # Claim 6 counts every (seed, size) once.
    (c6,) = [c for c in claims({"fig3": df}) if c.number == 6]
    assert c6.n == len(exp.seeds) * len(SIZES)


@pytest.mark.expensive
def test_the_whole_socialization_is_trained_once_as_the_full_data_isr(run):
    exp, df = run
    isr = df[df.phase == "isr"]
    assert set(isr.condition) == {"isr", "isr-data-384", "isr-data-576"}
    runs = isr_final_per_run(df)
    assert set(runs.loc[runs.n_train == _n_train(TINY_STEPS), "condition"]) == {"isr"}
    assert phases.isr_data_sizes(exp, TINY_STEPS) == (384, 576)


@pytest.mark.expensive
def test_every_size_is_scored_on_the_same_heldout_transitions(run):
    exp, df = run
    held = df[(df.phase == "isr") & (df.metric == "isr_n_heldout")]
    expected = TINY_STEPS - _n_train(TINY_STEPS)  # the socialization's last 10%, not each size's own tail
    assert set(held.condition) == {"isr", "isr-data-384", "isr-data-576"}
    assert (held["value"] == expected).all(), held
    assert isr_heldout_shared(df) == expected
    # The data-size ISRs log no held-out curve sampled from their own split: only the final, common, value.
    curve = df[(df.phase == "isr") & (df.metric == "isr_heldout_mse")]
    assert (curve[curve.condition != "isr"].groupby(["condition", "seed"]).size() == 1).all()
    assert (curve[curve.condition == "isr"].groupby("seed").size() > 1).all()


@pytest.mark.expensive
def test_full_budget_gives_every_size_the_full_data_isrs_updates(run):
    exp, df = run
    runs = isr_final_per_run(df)
    full = math.ceil(_n_train(TINY_STEPS) / TINY_ISR.batch_size)
    assert (runs["updates"] == full).all(), runs


# ------------------------------------------------------------------------------------------- configs, helpers
def test_update_budget_per_size():
    n_full = _n_train(TINY_STEPS)
    for design, expect in (("epoch", lambda n: math.ceil(n / 32)), ("full", lambda n: math.ceil(n_full / 32))):
        exp = tiny_fig3(data_size_updates=design)
        for n in SIZES[:-1]:
            cfg = phases.isr_size_config(exp, n, _n_train(n), n_full)
            assert (cfg.n_data, cfg.n_updates) == (n, expect(_n_train(n))), design


def test_presets():
    quick, paper = paper_experiment("fig3", "quick"), paper_experiment("fig3", "paper")
    assert quick.isr.data_size_updates == "full"
    # The paper preset keeps the reference's one epoch per size; its largest size is the whole socialization.
    assert paper.isr.data_size_updates == "epoch" and paper.isr.data_sizes == FIG3_SIZES
    assert phases.isr_data_sizes(paper, phases.socialization_capacity(paper)) == FIG3_SIZES[:-1]
    assert FIG3_SIZES[-1] == PAPER_PHASE
    n = phases.socialization_capacity(quick)
    assert quick.isr.data_sizes[-1] == n and phases.isr_data_sizes(quick, n) == quick.isr.data_sizes[:-1]
    with pytest.raises(ValueError, match="data_size_updates"):
        IsrConfig(data_size_updates="twice")


def _buffer(n: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, 11, (n, 9, 9, 4)).astype(np.uint8)
    social = np.where(rng.random(n) < 0.3, 0.4, 0.0).astype(np.float32)
    return isr_buffer_add(isr_buffer_init(n), jnp.asarray(obs), jnp.asarray(rng.integers(0, 3, n)),
                          jnp.asarray(social))


def test_isr_metrics_scores_the_given_heldout_part():
    buf = _buffer()
    full = IsrConfig(network="mlp", encoding="onehot")
    part = dataclasses.replace(full, n_data=100)
    params = isr_init_params(full, jax.random.key(0))
    own = isr_metrics(part, params, buf)
    common = isr_metrics(part, params, buf, holdout=full)
    ref = isr_metrics(full, params, buf)
    assert float(own["holdout/n"]) == 10 and float(common["holdout/n"]) == 20
    for k in ("holdout/mse", "holdout/balanced_mse", "holdout/pearson"):
        assert float(common[k]) == pytest.approx(float(ref[k]), rel=1e-6)
    assert float(common["holdout/mse"]) != pytest.approx(float(own["holdout/mse"]), rel=1e-3)
    # The training part is still the ISR's own.
    assert float(common["train/n"]) == float(own["train/n"]) == 90
    # A "held-out" part that overlaps the training part is refused (NaN), never scored.
    bad = isr_metrics(full, params, buf, holdout=part)
    assert float(bad["holdout/n"]) == 0 and np.isnan(float(bad["holdout/mse"]))


def test_predict_all_skips_only_chunks_no_part_needs():
    buf = _buffer(200)
    cfg = IsrConfig(network="mlp", encoding="onehot")
    params = isr_init_params(cfg, jax.random.key(1))
    every = np.asarray(isr_predict_all(cfg, params, buf, chunk=32))
    needed = np.zeros(200, bool)
    needed[[5, 70, 199]] = True  # chunks 0 and 2 (slots 0-31, 64-95) and the 8-slot remainder (192-199)
    some = np.asarray(isr_predict_all(cfg, params, buf, chunk=32, needed=jnp.asarray(needed)))
    computed = np.zeros(200, bool)
    computed[0:32] = computed[64:96] = computed[192:200] = True
    # Whole chunks are computed; XLA may round a cond branch's program differently (1 ulp at -O0).
    np.testing.assert_allclose(some[computed], every[computed], rtol=1e-6, atol=1e-9)
    assert np.all(some[~computed] == 0.0) and np.all(every[~computed] != 0.0)


def test_an_isr_on_the_first_n_transitions_is_the_same_computation_with_n_as_data():
    # Figure 3b's sizes train on the buffer cut to its first n transitions under the config without n_data: the
    # same split, the same updates and bit-identical parameters and curve as n_data=n, in one program for every n.
    buf = _buffer(200)
    cfg = IsrConfig(network="mlp", encoding="onehot", batch_size=16, n_updates=12, log_every=4)
    key = jax.random.key(5)
    full_cfg = dataclasses.replace(cfg, n_data=None)
    fit = jax.jit(lambda b, k: train_isr(full_cfg, b, k))
    for n in (60, 120):
        sized = dataclasses.replace(cfg, n_data=n)
        static = jax.jit(lambda b, k, c=sized: train_isr(c, b, k))(buf, key)
        as_data = fit(first_transitions(buf, n), key)
        assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(np.array_equal(a, b, equal_nan=True)),
                                                static, as_data))), n
        for part in ("train", "holdout"):
            np.testing.assert_array_equal(getattr(isr_split(first_transitions(buf, n)), part),
                                          getattr(isr_split(buf, n_data=n), part))
    lowered = [fit.lower(first_transitions(buf, n), key).as_text() for n in (60, 120)]
    assert lowered[0] == lowered[1], "every size must run the same program"
    trained = [fit(first_transitions(buf, n), key)[0] for n in (60, 120)]
    assert not np.array_equal(jax.tree.leaves(trained[0])[0], jax.tree.leaves(trained[1])[0]), "n is an input"


def test_seed_mapped_metrics_equal_the_vmapped_ones():
    bufs = jax.tree.map(lambda *x: jnp.stack(x), _buffer(200, 0), _buffer(200, 1))
    full = IsrConfig(network="mlp", encoding="onehot")
    part = dataclasses.replace(full, n_data=60)
    params = jax.vmap(lambda k: isr_init_params(full, k))(jax.random.split(jax.random.key(2), 2))
    for cfg, holdout in ((full, None), (part, full)):
        vmapped = jax.vmap(lambda p, b, cfg=cfg, holdout=holdout: isr_metrics(cfg, p, b, holdout=holdout))(params, bufs)
        mapped = isr_metrics_seeds(cfg, params, bufs, holdout=holdout)
        assert vmapped.keys() == mapped.keys()
        for k in vmapped:
            np.testing.assert_allclose(np.asarray(mapped[k]), np.asarray(vmapped[k]), rtol=1e-5, err_msg=k)
    assert float(mapped["train/n"][0]) == 54 and float(mapped["holdout/n"][0]) == 20


def test_old_tables_with_the_full_data_isr_trained_twice_count_each_seed_and_size_once():
    """Tables written before the fix hold the whole-socialization size twice: as ``isr`` and ``isr-data-N``."""
    rows = []
    for seed in (1, 2, 3):
        for cond, n, mse in (("isr-data-100", 90, 0.01), ("isr", 180, 0.001), ("isr-data-200", 180, 0.002)):
            for metric, value in (("isr_n_train", n), ("isr_heldout_mse", mse)):
                rows.append(dict(experiment="fig3", condition=cond, world="blocks-3", seed=seed, phase="isr",
                                 step=10, episode=np.nan, metric=metric, value=float(value)))
    df = pd.DataFrame(rows)
    runs = isr_final_per_run(df)
    assert len(runs) == 6 and not runs.duplicated(["seed", "n_train"]).any()
    assert set(runs.loc[runs.n_train == 180, "condition"]) == {"isr"}
    assert (runs.loc[runs.n_train == 180, "mse"] == 0.001).all()
    (c6,) = [c for c in claims({"fig3": df}) if c.number == 6]
    assert c6.n == 6
