"""Experiments as data: validation, user files, the runner end to end, and kill-and-resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from internalize.agents.isr_config import IsrConfig
from internalize.cli import app
from internalize.experiments.config_file import ExperimentFileError, load_experiment
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.results import KEY_COLUMNS
from internalize.experiments.spec import Experiment, WorldSpec, learner_config, world
from internalize.social.utility import UtilityConfig
from internalize.storage import write_json_verified

TINY_LEARNER = learner_config(torso="mlp", n_envs=4, n_steps=32, batch_size=64, n_epochs=2, learning_rate=1e-3)
TINY_ISR = IsrConfig(network="mlp", encoding="onehot", learning_rate=1e-3, batch_size=32)
TINY_STEPS = 4 * 32 * 6  # 6 rollouts


def tiny(name: str = "fig4a", **changes) -> Experiment:
    exp = paper_experiment(name, "quick")
    fields = dict(seeds=(3, 4), socialization_steps=TINY_STEPS, autonomy_steps=TINY_STEPS, evaluation_episodes=8,
                  learner=TINY_LEARNER, isr=TINY_ISR, chunk_rollouts=2)
    fields.update(changes)
    return dataclasses.replace(exp, **fields)


# ------------------------------------------------------------------------------------------------ validation
# The paper's facts per figure (docs/paper-vs-reference.md, 'Phase lengths and seeds', 'ISR training' and
# 'Held-out evaluation'): worlds, conditions, budgets (SB3's learn(12e4) = 59 rollouts of 2048 = 120,832 steps;
# learn(24e4) = 241,664), seeds (1234-1243; Figure 6 is the single run of seed 1235), the ISR's learning rate /
# batch / epochs and the 100 held-out episodes.
_PAPER_SEEDS = tuple(range(1234, 1244))
_ISR_1B = dict(learning_rate=3e-4, batch_size=1, updates_fraction=1.0)  # one epoch of batch 1 (Figs 1b/4b/5)
_PAPER_FACTS = {
    "fig4a": dict(soc="blocks-3", aut=("blocks-3",), conditions={"caregiver", "none", "isr"},
                  steps=(120_832, 120_832), seeds=_PAPER_SEEDS, isr=_ISR_1B),
    "fig3": dict(soc="blocks-3", aut=(), conditions=set(), steps=(120_832, 0), seeds=_PAPER_SEEDS,
                 isr=dict(learning_rate=3e-5, batch_size=1, updates_fraction=1.0,
                          data_sizes=(10_240, 20_480, 30_720, 40_960, 81_920, 120_832))),
    "fig4b": dict(soc="blocks-1", aut=("blocks-5",), conditions={"frozen", "isr", "caregiver"},
                  steps=(120_832, 120_832), seeds=_PAPER_SEEDS, isr=_ISR_1B),
    "fig5": dict(soc="blocks-1", aut=("plus", "x", "U", "T", "four_rooms"), conditions={"frozen", "isr", "caregiver"},
                 steps=(120_832, 241_664), seeds=_PAPER_SEEDS, isr=_ISR_1B),
    "fig6": dict(soc="blocks-1", aut=("x",), conditions={"isr"}, steps=(120_832, 241_664), seeds=(1235,),
                 isr=dict(learning_rate=3e-4, batch_size=1, updates_fraction=1 / 12)),
    "fig7": dict(soc="prosocial", aut=("prosocial",), conditions={"caregiver", "none", "isr"},
                 steps=(241_664, 241_664), seeds=_PAPER_SEEDS,
                 isr=dict(learning_rate=3e-4, batch_size=10, updates_fraction=10.0)),
}


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_paper_presets_validate(name):
    facts = _PAPER_FACTS[name]
    paper = paper_experiment(name, "paper", 0)  # offset 0: independent of $INTERNALIZE_SEED_OFFSET
    quick = paper_experiment(name, "quick", 0)
    got = dict(soc=paper.socialization_world.name, aut=tuple(w.name for w in paper.autonomy_worlds),
               conditions=set(paper.conditions), steps=(paper.socialization_steps, paper.autonomy_steps),
               seeds=paper.seeds)
    assert got == {k: facts[k] for k in got}, (name, got)
    # The paper's learner: SB3's PPO defaults with the minigrid CNN, lr 1e-4, one env.
    assert paper.learner == learner_config(torso="cnn", n_envs=1, n_steps=2048, batch_size=64, n_epochs=10,
                                        learning_rate=1e-4, ent_coef=0.0), paper.learner
    for phase_steps in paper.socialization_steps, paper.autonomy_steps:
        assert phase_steps % 2048 == 0, f"{name}: {phase_steps} is not whole 2048-step rollouts"
    isr = {k: getattr(paper.isr, k) for k in facts["isr"]}
    assert isr == facts["isr"], (name, isr)
    assert paper.isr.holdout_fraction == 0.1, "the reference holds out the chronological last 10%"
    assert paper.utility.mode == "additive", "the paper's U = R_e + P R_s + (1 - P) R_i is the default"
    assert paper.evaluation_episodes == (100 if paper.conditions else 0), paper.evaluation_episodes
    # The quick preset changes budgets, learner, ISR and the number of seeds, never what is compared.
    assert quick.socialization_world == paper.socialization_world and quick.autonomy_worlds == paper.autonomy_worlds
    assert quick.conditions == paper.conditions and quick.figures == paper.figures
    assert quick.seeds == _PAPER_SEEDS[:len(quick.seeds)], quick.seeds
    assert len(quick.seeds) == {"fig6": 3, "fig7": 5}.get(name, 10), quick.seeds
    rollout = quick.learner.rollout_steps
    assert quick.socialization_steps % rollout == 0 and quick.autonomy_steps % rollout == 0, (name, rollout)
    if quick.socialization_world.kind == "navigation":
        # 48 rollouts of 8 envs x 128 steps (paper.py), twice that to socialize on 3 random blocks (Figs 1b/4a and
        # 3 share it); Figure 6 keeps the paper's longer autonomous phase (x2).
        want_socialization = 2 * 49_152 if quick.socialization_world.name == "blocks-3" else 49_152
        assert quick.socialization_steps == want_socialization, quick.socialization_steps
        want_autonomy = {"fig3": 0, "fig6": 2 * 49_152}.get(name, 49_152)
        assert quick.autonomy_steps == want_autonomy, quick.autonomy_steps
        assert (quick.learner.n_envs, quick.learner.n_steps, quick.learner.learning_rate) == (8, 128, 1e-3)
    if name == "fig3":
        # Figure 3b's data sizes: the paper's fractions (1, 2, 3, 4, 8, 12 twelfths) of the quick socialization.
        assert quick.isr.data_sizes == tuple(2 * 49_152 * k // 12 for k in (1, 2, 3, 4, 8, 12)), quick.isr.data_sizes
    if name == "fig6":
        assert quick.isr.updates_fraction == pytest.approx(1 / 12) and 1235 in quick.seeds


def test_paper_preset_budgets_are_the_papers():
    assert paper_experiment("fig4a", "paper").socialization_steps == 120_832
    assert paper_experiment("fig5", "paper").autonomy_steps == 241_664
    assert paper_experiment("fig1", "paper").name == "fig4a"
    assert len(paper_experiment("fig4b", "paper").seeds) == 10


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: paper_experiment("fig9"), "experiment"),
        (lambda: paper_experiment("fig4a", "slow"), "preset"),
        (lambda: tiny(conditions=("caregiver", "teacher")), "conditions"),
        (lambda: world("blocks-12"), "n_blocks"),
        (lambda: world("spiral"), "world"),
        (lambda: tiny(seeds=()), "seeds"),
        (lambda: tiny(seeds=(-1,)), "seeds"),
        (lambda: tiny(socialization_steps=0), "socialization_steps"),
        (lambda: tiny(autonomy_steps=-5), "autonomy_steps"),
        (lambda: tiny(learner=dataclasses.replace(TINY_LEARNER, batch_size=7)), "batch_size"),
        (lambda: tiny(isr=dataclasses.replace(TINY_ISR, holdout_fraction=1.0)), "holdout_fraction"),
        (lambda: tiny(utility=UtilityConfig(mode="multiplicative")), "mode"),
        (lambda: tiny(isr=dataclasses.replace(TINY_ISR, updates_fraction=0.0)), "updates_fraction"),
        (lambda: WorldSpec("bad", map="#####"), "map"),
        (lambda: WorldSpec("nav", n_walls=7), "n_walls"),
        (lambda: WorldSpec("p", kind="prosocial", n_blocks=2), "n_blocks"),
        (lambda: WorldSpec("p", kind="prosocial", drop="throw"), "drop"),
        (lambda: WorldSpec("p", kind="maze"), "kind"),
        # The autonomous phase continues the socialization model: a navigation model cannot enter Figure 7's world.
        (lambda: tiny(autonomy_worlds=(world("prosocial"),)), "autonomy_worlds"),
    ],
)
def test_bad_experiments_raise_naming_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_output_directory_of_another_experiment_is_refused_and_untouched(tmp_path):
    from internalize.experiments.runner import run_experiment

    (tmp_path / "fig4a").mkdir()
    manifest = {"experiment": "fig4b", "config": {}, "status": "complete"}
    write_json_verified(tmp_path / "fig4a" / "manifest.json", manifest)
    before = sorted(p.name for p in (tmp_path / "fig4a").iterdir())
    with pytest.raises(ValueError, match="holds results of experiment 'fig4b'"):
        run_experiment(tiny(), tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "fig4a").iterdir()) == before
    assert json.loads((tmp_path / "fig4a" / "manifest.json").read_text()) == manifest


# ------------------------------------------------------------------------------------------------ user files
USER_FILE = """
[experiment]
name = "corridors"
title = "ISR on a user's corridor map"
seeds = [5, 6]
socialization_world = "blocks-1"
autonomy_worlds = ["corridor"]
conditions = ["caregiver", "none", "isr"]
socialization_steps = 768
autonomy_steps = 768
evaluation_episodes = 8
chunk_rollouts = 3

[learner]
torso = "mlp"
n_envs = 4
n_steps = 32
batch_size = 64
n_epochs = 2
learning_rate = 0.001

[isr]
network = "mlp"
batch_size = 32

[worlds.corridor]
map = '''
#######
#.....#
#.###.#
#.....#
#.###.#
#.....#
#######
'''
"""


@pytest.mark.expensive
def test_user_experiment_file_runs_end_to_end(tmp_path):
    path = tmp_path / "corridors.toml"
    path.write_text(USER_FILE)
    exp = load_experiment(path)
    assert exp.autonomy_worlds[0].name == "corridor" and exp.seeds == (5, 6)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "out" / "corridors" / "results.parquet")
    ev = df[(df.phase == "evaluation") & (df.metric == "goals_per_episode")]
    assert set(ev.world) == {"corridor"} and set(ev.condition) == {"caregiver", "none", "isr"}
    assert set(ev.seed) == {5, 6}
    assert (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize(
    ("edit", "key", "marker"),
    [
        (lambda s: s.replace("evaluation_episodes = 8", "evaluation_episodes = 8\ncolour = 3"),
         "experiment.colour", "colour = 3"),
        (lambda s: s.replace("n_envs = 4", 'n_envs = "four"'), "learner.n_envs", 'n_envs = "four"'),
        (lambda s: s.replace("#.###.#\n#.....#\n#######", "#.#?#.#\n#.....#\n#######"),
         "worlds.corridor", "map = '''"),
        (lambda s: s.replace('conditions = ["caregiver", "none", "isr"]', 'conditions = ["caregiver", "parent"]'),
         "conditions", "conditions = ["),
        (lambda s: s.replace('autonomy_worlds = ["corridor"]', 'autonomy_worlds = ["hallway"]'),
         "experiment.autonomy_worlds", "autonomy_worlds ="),
        (lambda s: s.replace("batch_size = 32", "batch_size = 0"), "isr.batch_size", "batch_size = 0"),
    ],
)
def test_malformed_user_file_names_file_key_and_line(tmp_path, edit, key, marker):
    path = tmp_path / "broken.toml"
    text = edit(USER_FILE)
    assert text != USER_FILE
    path.write_text(text)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith(marker))
    with pytest.raises(ExperimentFileError) as err:
        load_experiment(path)
    message = str(err.value)
    assert str(path) in message and key in message and f"line {line}:" in message, message


def test_invalid_toml_syntax_is_reported_with_the_file(tmp_path):
    path = tmp_path / "syntax.toml"
    path.write_text("[experiment\nname = 1\n")
    with pytest.raises(ExperimentFileError, match="syntax.toml.*not valid TOML"):
        load_experiment(path)


# ------------------------------------------------------------------------------------------------ end to end
@pytest.mark.expensive
def test_cli_run_fig4a_writes_table_manifest_figures_and_report(tmp_path, monkeypatch):
    import internalize.experiments.reproduce as reproduce

    monkeypatch.setattr(reproduce, "paper_experiment", lambda name, preset: tiny(name))
    result = CliRunner().invoke(app, ["run", "fig4a", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(tmp_path / "fig4a" / "results.parquet")
    assert not df.duplicated(list(KEY_COLUMNS)).any()
    assert df["value"].notna().all()
    learn = df[df.metric == "goals_per_episode"]
    for phase, conds in (("socialization", {"caregiver", "none", "isr"}), ("autonomy", {"caregiver", "none", "isr"})):
        rows = learn[learn.phase == phase]
        assert set(rows.condition) == conds
        per_run = rows.groupby(["condition", "seed"]).step.apply(sorted)
        # No gaps: every run logs every rollout of the phase.
        assert all(len(steps) == 6 and len(set(steps)) == 6 for steps in per_run)
    assert {"isr_train_mse", "isr_heldout_mse", "isr_heldout_corr"} <= set(df.metric)
    manifest = json.loads((tmp_path / "fig4a" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["config"]["seeds"] == [3, 4] and "jax" in manifest["versions"]
    assert (tmp_path / "figures" / "fig1_goals.png").exists()
    html = (tmp_path / "report.html").read_text()
    assert "data:image/png;base64" in html and "Paper claims vs this run" in html
    again = CliRunner().invoke(app, ["run", "fig4a", "--out", str(tmp_path)])
    assert again.exit_code == 0 and "skipped" in again.output, "a finished experiment is not recomputed"


RESUME_SCRIPT = textwrap.dedent(
    """
    import dataclasses, sys
    sys.path.insert(0, {tests!r})
    from test_experiments import tiny
    from internalize.experiments.runner import Runner
    exp = tiny("fig4a", socialization_steps=4 * 32 * 12, autonomy_steps=4 * 32 * 40, chunk_rollouts=1)
    Runner(exp, sys.argv[1], progress=False, checkpoint_seconds=0.0).run()
    """
)


def _run_script(out: Path, env: dict) -> subprocess.Popen:
    script = RESUME_SCRIPT.format(tests=str(Path(__file__).parent))
    return subprocess.Popen([sys.executable, "-c", script, str(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


@pytest.mark.expensive
def test_killed_runner_resumes_to_the_same_table(tmp_path):
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax-cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    straight = _run_script(tmp_path / "straight", env)
    out, _ = straight.communicate(timeout=600)
    assert straight.returncode == 0, out

    killed = _run_script(tmp_path / "killed", env)
    unit_dir = tmp_path / "killed" / "fig4a" / "checkpoints"
    deadline = time.time() + 300
    # Wait until the autonomy unit has checkpointed a chunk, then kill without warning (at once: its chunks take
    # milliseconds, so a later kill may find the unit finished).
    while time.time() < deadline and killed.poll() is None:
        if list(unit_dir.glob("autonomy-*/partial.ckpt")):
            break
        time.sleep(0.01)
    assert killed.poll() is None, "the run finished before it could be killed; make it longer"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "fig4a" / "results.parquet").exists()

    resumed = _run_script(tmp_path / "killed", env)
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out
    assert "resuming after rollout" in out
    a = pd.read_parquet(tmp_path / "straight" / "fig4a" / "results.parquet")
    b = pd.read_parquet(tmp_path / "killed" / "fig4a" / "results.parquet")
    assert not b.duplicated(list(KEY_COLUMNS)).any(), "nothing was written twice"
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.expensive
def test_fig7_runs_in_the_prosocial_world_end_to_end(tmp_path):
    exp = tiny("fig7", learner=dataclasses.replace(TINY_LEARNER, n_steps=100, batch_size=80), evaluation_episodes=2,
               socialization_steps=4 * 100 * 4, autonomy_steps=4 * 100 * 2)
    assert exp.socialization_world.kind == "prosocial"
    from internalize.experiments.runner import run_experiment

    df = run_experiment(exp, tmp_path, progress=False, log=lambda _: None)
    assert set(df["world"]) == {"prosocial"} and set(df["condition"]) == {"caregiver", "none", "isr"}
    # The ISR saw the 5 actions of the prosocial world and was trained on its socialization data.
    isr = df[(df["phase"] == "isr") & (df["metric"] == "isr_n_train")]
    assert len(isr) == 2 and (isr["value"] == 0.9 * 1600).all()
    soc = df[(df["phase"] == "socialization") & (df["metric"] == "episodes")]
    assert soc.groupby(["condition", "seed"])["value"].sum().eq(16).all()  # 1,600 steps = 16 episodes of 100
    # Without the caregiver nothing pays R_s into the utility, but what it would pay is still logged.
    none = df[(df["phase"] == "autonomy") & (df["condition"] == "none")]
    assert {"social_return", "utility_return", "internal_return"} <= set(none["metric"])
    assert set(df[df["phase"] == "evaluation"]["metric"]) >= {"goals_per_episode", "caregiver_return"}
    assert np.isfinite(df["value"]).all(), df[~np.isfinite(df["value"])]

    # Training rows, one per (phase, condition, seed, rollout): 4 envs x 100 steps = 4 whole 100-step episodes.
    train = df[df["phase"].isin(["socialization", "autonomy"])].pivot_table(
        index=["phase", "condition", "seed", "step"], columns="metric", values="value")
    assert len(train) == 3 * 2 * (4 + 2), train.index.tolist()
    assert (train["episodes"] == 4).all(), train["episodes"]
    # Helped-goal counts: a whole, non-negative number of the helped agent's successes in the rollout's episodes.
    helped = train["goals_per_episode"] * train["episodes"]
    assert (helped >= 0).all() and np.allclose(helped, helped.round(), atol=1e-4), helped
    # R_s is 0.4 per success of the helped agent, and positive only then (logged even while the caregiver is away);
    # R_e is -0.009 per forward, at most 100 per episode.
    np.testing.assert_allclose(train["social_return"], 0.4 * train["goals_per_episode"], atol=1e-5)
    assert ((train["social_return"] > 0) == (helped > 0.5)).all()
    forwards = -train["extrinsic_return"] * train["episodes"] / 0.009
    assert (forwards > -1e-3).all() and (forwards < 4 * 100 + 1e-3).all(), forwards
    assert np.allclose(forwards, forwards.round(), atol=1e-3), forwards
    # The utility each condition learned from: caregiver R_e + R_s, none R_e, isr R_e + R_i (additive); the
    # caregiver is present (100 steps per episode) in socialization and in the caregiver condition only.
    aut = train.loc["autonomy"]
    np.testing.assert_allclose(aut.loc["caregiver", "utility_return"],
                               aut.loc["caregiver", "extrinsic_return"] + aut.loc["caregiver", "social_return"],
                               atol=1e-4)
    np.testing.assert_allclose(aut.loc["none", "utility_return"], aut.loc["none", "extrinsic_return"], atol=1e-5)
    np.testing.assert_allclose(aut.loc["isr", "utility_return"],
                               aut.loc["isr", "extrinsic_return"] + aut.loc["isr", "internal_return"], atol=1e-4)
    assert (aut.loc[["none", "caregiver"], "internal_return"] == 0).all(), "only the isr condition has R_i"
    assert (train.loc["socialization", "presence_return"] == 100).all()
    assert (aut.loc["caregiver", "presence_return"] == 100).all()
    assert (aut.loc[["none", "isr"], "presence_return"] == 0).all()
    # Socialization is one shared run per seed (paired design): every condition logs the same numbers.
    soc_rows = train.loc["socialization"]
    for c in ("none", "isr"):
        pd.testing.assert_frame_equal(soc_rows.loc[c], soc_rows.loc["caregiver"])

    # Evaluation: one row per (condition, seed) and metric, after both phases, over the 2 held-out episodes.
    ev = df[df["phase"] == "evaluation"]
    assert set(ev["step"]) == {1600 + 800} and set(ev["episode"]) == {2.0}, (set(ev["step"]), set(ev["episode"]))
    table = ev.pivot_table(index=["condition", "seed"], columns="metric", values="value", aggfunc="count")
    assert table.index.tolist() == [(c, s) for c in ("caregiver", "isr", "none") for s in (3, 4)], table.index
    assert (table[["goals_per_episode", "caregiver_return", "social_return", "extrinsic_return"]] == 1).all().all()
    ev = ev.pivot_table(index=["condition", "seed"], columns="metric", values="value")
    helped = ev["goals_per_episode"] * 2
    assert (helped >= 0).all() and np.allclose(helped, helped.round(), atol=1e-4), helped
    np.testing.assert_allclose(ev["social_return"], 0.4 * ev["goals_per_episode"], atol=1e-5)
    np.testing.assert_allclose(ev["caregiver_return"], ev["social_return"] + ev["extrinsic_return"], atol=1e-5)
    assert ev["extrinsic_return"].between(-0.9 - 1e-6, 0).all(), ev["extrinsic_return"]


@pytest.mark.expensive
def test_identical_socialization_and_isr_are_computed_once_and_reused(tmp_path):
    from internalize.experiments.runner import run_experiment

    first = tiny("fig4b")
    second = dataclasses.replace(first, name="fig4b-again", conditions=("isr", "caregiver"))
    run_experiment(first, tmp_path / "out", progress=False, log=lambda _: None)
    logs: list[str] = []
    shared = run_experiment(second, tmp_path / "out", progress=False, log=logs.append)
    assert any("socialization: identical" in m for m in logs) and any("isr: identical" in m for m in logs), logs
    # Reused numbers are the numbers a computation from scratch gives, under the new experiment's labels.
    alone = run_experiment(second, tmp_path / "alone", progress=False, log=lambda _: None)
    pd.testing.assert_frame_equal(shared, alone)
    assert set(shared["experiment"]) == {"fig4b-again"} and "frozen" not in set(shared["condition"])
    # One file on disk, not three: both experiments' checkpoints and the shared entry are the same inode.
    for unit in ("socialization", "isr"):
        paths = [tmp_path / "out" / e / "checkpoints" / unit / "final.ckpt" for e in ("fig4b", "fig4b-again")]
        paths += list((tmp_path / "out" / ".shared").glob(f"{unit}-*/final.ckpt"))
        assert len(paths) == 3 and len({p.stat().st_ino for p in paths}) == 1, paths
    # A different socialization (another seed) shares nothing; --force recomputes instead of reusing.
    logs.clear()
    run_experiment(dataclasses.replace(second, name="other", seeds=(5, 4)), tmp_path / "out", progress=False,
                   log=logs.append)
    assert not any("identical to a finished one" in m for m in logs), logs
    logs.clear()
    run_experiment(second, tmp_path / "out", force=True, progress=False, log=logs.append)
    assert not any("identical to a finished one" in m for m in logs)
