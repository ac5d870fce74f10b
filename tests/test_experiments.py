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

import pandas as pd
import pytest
from typer.testing import CliRunner

from internalize.cli import app
from internalize.experiments.config_file import ExperimentFileError, load_experiment
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.results import KEY_COLUMNS
from internalize.experiments.spec import Experiment, ISRSpec, LearnerSpec, WorldSpec, world

TINY_LEARNER = LearnerSpec(torso="mlp", n_envs=4, n_steps=32, batch_size=64, n_epochs=2, learning_rate=1e-3)
TINY_ISR = ISRSpec(network="mlp", encoding="onehot", learning_rate=1e-3, batch_size=32)
TINY_STEPS = 4 * 32 * 6  # 6 rollouts


def tiny(name: str = "fig4a", **changes) -> Experiment:
    exp = paper_experiment(name, "quick")
    fields = dict(seeds=(3, 4), socialization_steps=TINY_STEPS, autonomy_steps=TINY_STEPS, evaluation_episodes=8,
                  learner=TINY_LEARNER, isr=TINY_ISR, chunk_rollouts=2)
    fields.update(changes)
    return dataclasses.replace(exp, **fields)


# ------------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_paper_presets_validate(name):
    for preset in ("quick", "paper"):
        exp = paper_experiment(name, preset)
        assert exp.seeds and exp.socialization_steps > 0


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
        (lambda: tiny(isr=dataclasses.replace(TINY_ISR, utility="multiplicative")), "utility"),
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
    (tmp_path / "fig4a" / "manifest.json").write_text(json.dumps(manifest))
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


@pytest.mark.slow
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
    # A different socialization (another seed) shares nothing; --force recomputes instead of reusing.
    logs.clear()
    run_experiment(dataclasses.replace(second, name="other", seeds=(5, 4)), tmp_path / "out", progress=False,
                   log=logs.append)
    assert not any("identical to a finished one" in m for m in logs), logs
    logs.clear()
    run_experiment(second, tmp_path / "out", force=True, progress=False, log=logs.append)
    assert not any("identical to a finished one" in m for m in logs)
