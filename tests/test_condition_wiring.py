"""Which condition gets which reward, pinned on tiny real runs of the runner (fast, no learning claims).

Pins, row by row (condition, seed, step) of the autonomy phase, in every utility mode:

* ``caregiver`` (and ``frozen-continued``): U = R_e + R_s, caregiver present on every step;
* ``none``: U = R_e (minus the reference's goal-step cost where the mode charges it), R_s logged but left out,
  R_i exactly 0;
* ``isr``: U = R_e + R_i (``replace``: U = R_i), caregiver absent, R_i non-zero.

And, on the same run: ``frozen`` evaluates the socialization's final parameters bit for bit and never trains;
``frozen-continued`` trains (its parameters change) on the socialization world only; each trained condition's
final parameters are its own slice of the vmapped autonomy batch (the slice whose stored flags say it).

The expected meanings are written here (``MEANING``), not imported from ``experiments.phases.TRAINED``, so a swap
in the source wiring makes these tests fail rather than agree with it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
import pytest

from internalize.agents.checkpoint import read_checkpoint
from internalize.agents.isr_config import IsrConfig
from internalize.experiments import runner as runner_module
from internalize.experiments.paper import paper_experiment
from internalize.experiments.results import ResultsStore
from internalize.experiments.runner import run_experiment
from internalize.experiments.spec import Experiment, learner_config
from internalize.social.utility import UtilityConfig
from internalize.storage import read_parquet_verified, write_parquet_verified

pytestmark = pytest.mark.expensive  # end-to-end runs: in make test, not make test-fast

LEARNER = learner_config(torso="mlp", n_envs=4, n_steps=32, batch_size=64, n_epochs=2, learning_rate=1e-3)
ISR = IsrConfig(network="mlp", encoding="onehot", learning_rate=1e-3, batch_size=32)
STEPS = 2 * 4 * 32  # two rollouts per phase: every rollout of 32 steps ends at least one 20-step episode per env
MODES = ("additive", "additive-reference", "threshold-replace", "replace")
#: Per condition: (caregiver present in autonomy, ISR weight) -- the paper's meaning, independent of the source.
MEANING = {"caregiver": (True, 0.0), "none": (False, 0.0), "isr": (False, 1.0), "frozen-continued": (True, 0.0)}
#: Per-episode sums of ~20 float32 steps; the smallest signal checked is one goal's R_s = 0.4 over <= 8 episodes.
ATOL = 1e-4
CHANNELS = ["utility_return", "extrinsic_return", "social_return", "internal_return", "presence_return",
            "goals_per_episode"]


class Run(NamedTuple):
    exp: Experiment
    dir: Path  # OUT/<experiment>
    table: pd.DataFrame
    finals: dict[tuple[str, str], Any]  # what the runner handed to evaluation: (condition, world) -> params


def experiment(mode: str = "additive", **changes: Any) -> Experiment:
    """Figure 4b's shape (socialized on blocks-1, autonomous on blocks-5) with every condition, tiny budgets."""
    fields = dict(conditions=("caregiver", "none", "isr", "frozen", "frozen-continued"), seeds=(3, 4),
                  socialization_steps=STEPS, autonomy_steps=STEPS, evaluation_episodes=2, learner=LEARNER,
                  isr=ISR, utility=UtilityConfig(mode=mode), chunk_rollouts=2)
    return dataclasses.replace(paper_experiment("fig4b", "quick"), **(fields | changes))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One real additive run of all five conditions; the evaluation unit is spied on to see the final params."""
    exp, out = experiment(), tmp_path_factory.mktemp("wiring")
    finals: dict[tuple[str, str], Any] = {}
    original = runner_module.evaluation_unit

    def spy(runner: Any, given: dict, isr_params: Any = None) -> None:
        finals.update(jax.device_get(given))
        original(runner, given, isr_params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner_module, "evaluation_unit", spy)
        table = run_experiment(exp, out, progress=False, log=lambda _: None)
    return Run(exp, out / exp.name, table, finals)


@pytest.fixture(scope="module", params=MODES)
def mode_run(request: pytest.FixtureRequest, base: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The autonomy phase of caregiver/none/isr under each utility mode.

    The socialization and ISR units are copied from the additive run, as the runner's own shared units would be:
    with the caregiver always present every mode's utility is R_e + R_s, so they are the same numbers.
    """
    if request.param == "additive":
        return base
    exp = experiment(request.param, conditions=("caregiver", "none", "isr"), evaluation_episodes=0)
    out = tmp_path_factory.mktemp(request.param)
    # Adopted as this configuration's own: its manifest first, then the units recorded with its identity (a unit
    # of another configuration is otherwise recomputed, never used).
    store = ResultsStore(out, exp.name)
    store.claim(exp.to_dict())
    for unit in ("socialization", "isr"):
        write_parquet_verified(store.unit_path(unit), read_parquet_verified(base.dir / f"units/{unit}.parquet"),
                               store.identity)
        store.checkpoint_dir(unit).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base.dir / f"checkpoints/{unit}/final.ckpt", store.checkpoint_dir(unit) / "final.ckpt")
    table = run_experiment(exp, out, progress=False, log=lambda _: None)
    return Run(exp, out / exp.name, table, {})


def autonomy(run: Run) -> pd.DataFrame:
    """One row per (condition, world, seed, step) of the autonomy phase, one column per channel."""
    rows = run.table[run.table["phase"] == "autonomy"]
    return rows.pivot_table(index=["condition", "world", "seed", "step"], columns="metric", values="value")[CHANNELS]


def expected_utility(mode: str, condition: str, r: pd.DataFrame, cost: float) -> pd.Series | None:
    """The utility per episode from the logged channels (social.utility's formulas, summed over an episode)."""
    present, _ = MEANING[condition]
    if present:  # every mode: a present caregiver pays R_e + R_s
        return r["extrinsic_return"] + r["social_return"]
    # R_i enters only for isr: for none it is 0 by definition, *not* the logged column (which would hide a swap).
    r_i = r["internal_return"] if condition == "isr" else 0.0 * r["internal_return"]
    goal_cost = cost * r["goals_per_episode"]  # the reference modes charge the goal step's forward while absent
    if mode == "additive":
        return r["extrinsic_return"] + r_i
    if mode == "additive-reference":
        return r["extrinsic_return"] + r_i - goal_cost
    if mode == "replace":
        return r_i
    # threshold-replace: per step R_i if R_i > threshold else R_e - cost*event; none's R_i = 0 never fires.
    return r["extrinsic_return"] - goal_cost if condition == "none" else None


def test_utility_is_each_conditions_formula_row_by_row(mode_run: Run) -> None:
    exp, mode = mode_run.exp, mode_run.exp.utility.mode
    cost = float(exp.socialization_world.params().step_cost)
    table = autonomy(mode_run)
    trained = [c for c in exp.conditions if c in MEANING]
    assert sorted(table.index.unique("condition")) == sorted(trained)
    n_rollouts = exp.learner.rollouts(exp.autonomy_steps)
    for condition in trained:
        r = table.xs(condition, level="condition")
        assert len(r) == len(exp.seeds) * n_rollouts and not r.isna().any().any(), (condition, r)
        want = expected_utility(mode, condition, r, cost)
        if want is None:
            # threshold-replace isr: each step's U is R_i > threshold or R_e - cost*event, never below the latter.
            slack = r["utility_return"] - (r["extrinsic_return"] - cost * r["goals_per_episode"])
            assert (slack > -ATOL).all(), f"{mode}/{condition}: U below R_e - c*goals:\n{slack.to_string()}"
            continue
        err = (r["utility_return"] - want).abs()
        assert (err < ATOL).all(), (
            f"{mode}/{condition}: logged utility is not its formula\n"
            f"{pd.concat([r[CHANNELS[:4]], want.rename('expected'), err.rename('error')], axis=1).to_string()}")


def test_left_out_channels_are_really_there(mode_run: Run) -> None:
    """Without these the formula test could pass with the channels swapped: R_s must be non-zero where it is
    left out, R_i non-zero for isr, and presence on for every step of a present caregiver only."""
    exp = mode_run.exp
    table = autonomy(mode_run)
    worlds = [exp.socialization_world, *exp.autonomy_worlds]
    episode = {w.name: float(w.params().max_steps) for w in worlds}  # steps per episode = presence sum when present
    for condition in (c for c in exp.conditions if c in MEANING):
        r = table.xs(condition, level="condition")
        present, weight = MEANING[condition]
        want_presence = r.index.get_level_values("world").map(episode).to_numpy() * present
        assert np.allclose(r["presence_return"], want_presence), (
            condition, want_presence, r["presence_return"].to_string())
        if weight == 0.0:
            assert (r["internal_return"] == 0.0).all(), (condition, r["internal_return"].to_string())
        else:
            assert (r["internal_return"].abs() > ATOL).all(), (condition, r["internal_return"].to_string())
    none = table.xs("none", level="condition")
    assert (none["social_return"] > ATOL).any(), (
        f"none earned no R_s at all: the test cannot see it left out\n{none.to_string()}")
    # ... and it is left out: R_e + R_s differs from none's utility on those rows.
    hidden = (none["extrinsic_return"] + none["social_return"] - none["utility_return"]).abs()
    assert (hidden > ATOL).any(), f"none's utility includes R_s?\n{none.to_string()}"


def _ckpt(path: Path) -> dict[str, np.ndarray]:
    """Every leaf of a runner checkpoint by its path (no template needed)."""
    _, records, arrays = read_checkpoint(path)
    return {r["path"]: a for r, a in zip(records, arrays, strict=True)}


def _params(leaves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {p.removeprefix(".params"): a for p, a in leaves.items() if p.startswith(".params")}


def _flat(tree: Any) -> dict[str, np.ndarray]:
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_frozen_is_the_socialization_policy_bit_for_bit(base: Run) -> None:
    auto = base.exp.autonomy_worlds[0].name
    soc = _params(_ckpt(base.dir / "checkpoints/socialization/final.ckpt"))
    frozen = _flat(base.finals[("frozen", auto)])
    assert frozen.keys() == soc.keys()
    for path, value in frozen.items():
        assert np.array_equal(value, soc[path]), f"frozen {path} differs from socialization's by " \
                                                 f"{np.max(np.abs(value - soc[path]))}"
    # No learning: no autonomy rows, and it is evaluated at the socialization's step count.
    rows = base.table[base.table["condition"] == "frozen"]
    assert "autonomy" not in set(rows["phase"]), sorted(set(rows["phase"]))
    steps = base.table[base.table["phase"] == "evaluation"].groupby("condition")["step"].unique()
    assert list(steps["frozen"]) == [STEPS], steps
    assert all(list(steps[c]) == [2 * STEPS] for c in ("caregiver", "none", "isr", "frozen-continued")), steps


def test_frozen_continued_trains_on_the_socialization_world(base: Run) -> None:
    soc_world, auto = base.exp.socialization_world.name, base.exp.autonomy_worlds[0].name
    assert soc_world != auto  # else the world column could not tell them apart
    rows = base.table[base.table["phase"] == "autonomy"]
    worlds = rows.groupby("condition")["world"].unique().map(sorted)
    assert worlds["frozen-continued"] == [soc_world], worlds
    assert all(worlds[c] == [auto] for c in ("caregiver", "none", "isr")), worlds
    soc = _params(_ckpt(base.dir / "checkpoints/socialization/final.ckpt"))
    leaves = _ckpt(base.dir / "checkpoints/autonomy-frozen-continued/final.ckpt")
    continued = _flat(base.finals[("frozen-continued", auto)])  # what is evaluated on the autonomy world
    assert all(np.array_equal(v, _params(leaves)[p]) for p, v in continued.items())
    change = max(float(np.max(np.abs(v - soc[p]))) for p, v in continued.items())
    assert change > 1e-6, f"frozen-continued's parameters did not move from socialization's ({change})"
    assert leaves[".actors.reward_state.caregiver"].all(), leaves[".actors.reward_state.caregiver"]
    assert (leaves[".actors.reward_state.isr_weight"] == 0).all(), leaves[".actors.reward_state.isr_weight"]


def test_each_condition_gets_its_own_slice_of_the_autonomy_batch(base: Run) -> None:
    """The params evaluated as condition c are a block of the vmapped autonomy state whose stored flags are c's."""
    auto, S = base.exp.autonomy_worlds[0].name, len(base.exp.seeds)
    leaves = _ckpt(base.dir / f"checkpoints/autonomy-{auto}/final.ckpt")
    params = _params(leaves)
    caregiver, weight = leaves[".actors.reward_state.caregiver"], leaves[".actors.reward_state.isr_weight"]
    blocks = len(caregiver) // S
    assert blocks == 3, caregiver  # caregiver, none, isr
    used = set()
    for condition in ("caregiver", "none", "isr"):
        final = _flat(base.finals[(condition, auto)])
        match = [b for b in range(blocks)
                 if all(np.array_equal(v, params[p][b * S:(b + 1) * S]) for p, v in final.items())]
        assert len(match) == 1, f"{condition}: its params match autonomy blocks {match}"
        b = match[0]
        used.add(b)
        flags = (caregiver[b * S:(b + 1) * S].tolist(), weight[b * S:(b + 1) * S].tolist())
        want = MEANING[condition]
        assert flags == ([want[0]] * S, [want[1]] * S), f"{condition} was trained with flags {flags}, not {want}"
    assert used == set(range(blocks))


def test_the_paper_caregiver_pays_exactly_the_worlds_reward_whenever_present(base: Run) -> None:
    """The default caregiver (no noise, no misses, always present) pays R_s itself: while it is there the paid
    reward is the noise-free one, rollout by rollout, in socialization and for the conditions that keep it."""
    rows = base.table[((base.table["phase"] == "socialization") & (base.table["condition"] == "caregiver"))
                      | ((base.table["phase"] == "autonomy")
                         & base.table["condition"].isin(["caregiver", "frozen-continued"]))]
    wide = rows.pivot_table(index=["phase", "condition", "seed", "step"], columns="metric", values="value")
    assert (wide["social_return"] > 0).sum() >= 4, "too few rewarded rollouts to tell paid from deserved"
    np.testing.assert_array_equal(wide["paid_return"], wide["social_return"])
    assert (wide["presence_rate"] == 1).all(), wide["presence_rate"]
