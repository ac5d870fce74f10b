"""Sweeps (``internalize sweep``): a grid over dotted keys of an experiment file, one ordinary experiment per
point, gathered into one table with a column per swept key; bad keys, values and grids refused before compute;
an interrupted sweep resumes without recomputing finished points."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from internalize.cli import app
from internalize.experiments import layout as layout_module
from internalize.experiments.config_file import ExperimentFileError, load_experiment
from internalize.experiments.runner import run_experiment
from internalize.experiments.sweep import POINTS_DIR, SweepError, load_sweep, point_name, read_sweep, run_sweep
from internalize.schema import COLUMNS

BASE = """
[experiment]
name = "{name}"
seeds = [3, 4]
socialization_world = "blocks-1"
autonomy_worlds = ["blocks-1"]
conditions = {conditions}
socialization_steps = 768
autonomy_steps = 768
evaluation_episodes = 8
chunk_rollouts = 2

[learner]
torso = "mlp"
n_envs = 4
n_steps = 32
batch_size = 64
n_epochs = 2
learning_rate = 0.001

[isr]
network = "mlp"
encoding = "onehot"
learning_rate = 0.001
batch_size = 32

[caregiver]
noise = {noise}

[conditions.fade]
isr = true
presence = {{ kind = "linear", p0 = 1.0, p1 = 0.0, end = 768 }}
"""


def _file(tmp_path: Path, name: str = "grid", noise: float = 0.0, lr: float | None = None, sweep: str = "",
          conditions: str = '["caregiver", "isr", "fade"]') -> Path:
    text = BASE.format(name=name, noise=noise, conditions=conditions)
    if "fade" not in conditions:  # a condition the file defines must be run
        text = text[:text.index("[conditions.fade]")]
    if lr is not None:
        text = text.replace("learning_rate = 0.001\nbatch_size = 32", f"learning_rate = {lr}\nbatch_size = 32")
    path = tmp_path / f"{name}.toml"
    path.write_text(text + textwrap.dedent(sweep))
    return path


def _quiet(_: str) -> None:
    pass


@pytest.mark.expensive
def test_a_two_by_two_grid_is_the_four_experiments_run_alone_with_a_column_per_key(tmp_path):
    path = _file(tmp_path, conditions='["isr"]')
    plan = load_sweep(path, ["caregiver.noise=0,0.3", "isr.learning_rate=1e-3,3e-3"])
    table = run_sweep(plan, tmp_path / "out", progress=False, log=_quiet)

    assert list(table.columns) == [*COLUMNS, "caregiver.noise", "isr.learning_rate"]
    assert table["caregiver.noise"].dtype == np.float64 and table["isr.learning_rate"].dtype == np.float64
    blocks = table.groupby(["caregiver.noise", "isr.learning_rate", "seed"]).size()
    assert len(blocks) == 4 * 2 and set(table["experiment"]) == {"grid"}
    for noise in (0.0, 0.3):
        for lr in (1e-3, 3e-3):
            alone_dir = tmp_path / f"alone-{noise}-{lr}"
            alone_dir.mkdir()
            alone = run_experiment(load_experiment(_file(alone_dir, "alone", noise, lr, conditions='["isr"]')),
                                   alone_dir / "out", progress=False, log=_quiet)
            part = table[(table["caregiver.noise"] == noise) & (table["isr.learning_rate"] == lr)]
            part = part[list(COLUMNS)].drop(columns="experiment").reset_index(drop=True)
            pd.testing.assert_frame_equal(part, alone.drop(columns="experiment").reset_index(drop=True))
    # The socialization depends on the noise, not on the ISR's learning rate: two computed, two taken.
    shared = sorted(p.name.split("-")[0] for p in (tmp_path / "out" / "grid" / POINTS_DIR / ".shared").iterdir())
    assert shared.count("socialization") == 2, shared
    stored, manifest = read_sweep(tmp_path / "out" / "grid")
    pd.testing.assert_frame_equal(stored, table)
    assert manifest["grid"] == {"caregiver.noise": [0.0, 0.3], "isr.learning_rate": [1e-3, 3e-3]}
    assert [p["values"] for p in manifest["points"]] == [dict(p.values) for p in plan.points]


@pytest.mark.expensive
def test_an_interrupted_sweep_resumes_without_recomputing_finished_points(tmp_path, monkeypatch):
    path = _file(tmp_path, conditions='["fade"]', sweep="""
        [sweep]
        grid = { "conditions.fade.presence.end" = [256, 512] }
        outcome = "goals_per_episode"
    """)
    plan = load_sweep(path)
    real = layout_module.Runner
    ran: list[str] = []

    class KilledAtTheSecondPoint(real):
        def run(self):
            if ran:
                raise KeyboardInterrupt
            ran.append(self.exp.name)
            return super().run()

    monkeypatch.setattr(layout_module, "Runner", KilledAtTheSecondPoint)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, tmp_path / "out", progress=False, log=_quiet)
    first = tmp_path / "out" / "grid" / POINTS_DIR / plan.points[0].name / "results.parquet"
    before = first.stat().st_mtime_ns
    assert not (tmp_path / "out" / "grid" / "results.parquet").exists()

    monkeypatch.setattr(layout_module, "Runner", real)
    logged: list[str] = []
    table = run_sweep(plan, tmp_path / "out", progress=False, log=logged.append)
    assert any(plan.points[0].name in m and "skipped" in m for m in logged), logged
    assert not any(plan.points[1].name in m and "skipped" in m for m in logged), logged
    assert first.stat().st_mtime_ns == before, "a finished point was recomputed"
    assert sorted(table["conditions.fade.presence.end"].unique()) == [256, 512]
    assert table["conditions.fade.presence.end"].dtype == np.int64
    # The socialization does not depend on the fade's schedule: published once, taken by the second point.
    shared = [p.name for p in (tmp_path / "out" / "grid" / POINTS_DIR / ".shared").iterdir()]
    assert sum(n.startswith("socialization") for n in shared) == 1, shared


@pytest.mark.parametrize("grid, named, allowed", [
    (["caregiver.nosie=0.1"], "caregiver.nosie", "allowed: event, false_reward"),
    (["caregiver.noise=abc"], "caregiver.noise", "must be of type float, got str 'abc'"),
    (["caregiver.noise=0,-1"], "caregiver.noise", "allowed"),
    (["caregiver.noise="], "caregiver.noise", "no values"),
    (["caregiver.noise=0.1,0.1"], "caregiver.noise", "listed twice"),
    (["conditions.weaning.isr=true"], "conditions.weaning.isr", "defined: fade"),
    (["conditions.fade.presence.halflife=5"], "conditions.fade.presence.halflife", "allowed:"),
    (["lerner.n_envs=8"], "lerner.n_envs", "unknown section"),
    (["experiment.seeds=[1]"], "experiment.seeds", "cannot be swept"),
    (["learner.batch_size=7"], "learner.batch_size", "batch_size"),
    ([], "sweep.grid", "empty grid"),
    (["noequals"], "--grid", "KEY=V1,V2"),
])
def test_bad_keys_values_and_grids_are_one_line_before_any_compute(tmp_path, monkeypatch, grid, named, allowed):
    def never(*args, **kwargs):
        raise AssertionError("a sweep with bad input started running")

    monkeypatch.setattr(layout_module, "run_all", never)
    path = _file(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sweep", str(path), *[a for g in grid for a in ("--grid", g)], "--out",
                                      str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert named in lines[0] and allowed in lines[0], lines[0]
    assert not out.exists()


def test_grid_values_take_the_keys_types_and_the_command_line_replaces_the_files(tmp_path):
    path = _file(tmp_path, sweep="""
        [sweep]
        grid = { "caregiver.noise" = [0, 1], "learner.n_envs" = [4] }
    """)
    plan = load_sweep(path, ["learner.n_envs=4,8", "learner.torso=mlp,\"cnn\""])
    assert plan.spec.grid == (("caregiver.noise", (0.0, 1.0)), ("learner.n_envs", (4, 8)),
                              ("learner.torso", ("mlp", "cnn")))
    assert len(plan.points) == 8
    first = plan.points[0].experiment
    assert first.caregiver.noise == 0.0 and first.learner.n_envs == 4 and first.learner.torso == "mlp"
    last = plan.points[-1].experiment
    assert last.caregiver.noise == 1.0 and last.learner.n_envs == 8 and last.learner.torso == "cnn"
    assert len({p.name for p in plan.points}) == 8
    assert point_name("g", [("a.x", 0.1)]) != point_name("g", [("b.x", 0.1)])


def test_zip_takes_the_lists_together_and_refuses_lists_of_unequal_length(tmp_path):
    path = _file(tmp_path, sweep="""
        [sweep]
        grid = { "caregiver.noise" = [0.0, 0.1, 0.2], "learner.learning_rate" = [0.001, 0.001, 0.002] }
        zip = true
    """)
    plan = load_sweep(path)
    assert [tuple(v for _, v in p.values) for p in plan.points] == [(0.0, 0.001), (0.1, 0.001), (0.2, 0.002)]
    assert [(p.experiment.caregiver.noise, p.experiment.learner.learning_rate) for p in plan.points] == \
        [(0.0, 0.001), (0.1, 0.001), (0.2, 0.002)]
    assert plan.manifest()["zip"] is True
    # The same lists without zip: their product (a value listed twice in one key is then refused).
    product = load_sweep(path, ["caregiver.noise=0,0.1", "learner.learning_rate=0.001,0.002"])
    assert len(product.points) == 2, "--grid replaces the file's lists; the file's zip still pairs them"
    plain = _file(tmp_path, name="plain", sweep="""
        [sweep]
        grid = { "caregiver.noise" = [0.0, 0.1], "learner.learning_rate" = [0.001, 0.002] }
    """)
    assert len(load_sweep(plain).points) == 4 and len(load_sweep(plain, zip_lists=True).points) == 2
    with pytest.raises(SweepError, match=r"zip = true takes lists of one length, got caregiver.noise: 3, "
                                         r"learner.learning_rate: 2"):
        load_sweep(path, ["learner.learning_rate=0.001,0.002"])
    with pytest.raises(SweepError, match="a point is listed twice"):
        load_sweep(path, ["caregiver.noise=0,0,0.2", "learner.learning_rate=0.001,0.001,0.002"])
    result = CliRunner().invoke(app, ["sweep", str(plain), "--zip", "--grid", "caregiver.noise=0,0.1,0.2",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "zip = true takes lists of one length" in result.output
    assert not (tmp_path / "out").exists()


def test_a_sweep_file_is_refused_by_run_and_a_nested_schedule_key_is_set_in_place(tmp_path):
    path = _file(tmp_path, sweep="""
        [sweep]
        grid = { "conditions.fade.presence.p1" = [0.0, 0.5] }
    """)
    with pytest.raises(ExperimentFileError, match="internalize sweep"):
        load_experiment(path)
    plan = load_sweep(path)
    fades = [next(c for c in p.experiment.defined_conditions if c.name == "fade") for p in plan.points]
    assert [f.presence.p1 for f in fades] == [0.0, 0.5] and all(f.presence.end == 768 for f in fades)


def test_a_point_that_breaks_another_key_names_the_point(tmp_path):
    # The fade ends at step 768: a socialization of 512 steps is fine, the schedule is checked against autonomy.
    path = _file(tmp_path)
    with pytest.raises(SweepError, match=r"the point experiment.autonomy_steps = 256: .*end"):
        load_sweep(path, ["experiment.autonomy_steps=256,768"])


def test_set_applies_a_key_to_every_point_without_sweeping_it(tmp_path):
    path = _file(tmp_path)
    plan = load_sweep(path, ["caregiver.noise=0,0.1"], ["experiment.n_seeds=3", "isr.batch_size=16"])
    assert plan.fixed == (("experiment.n_seeds", 3), ("isr.batch_size", 16)) and plan.spec.keys == ("caregiver.noise",)
    assert all(p.experiment.seeds == (0, 1, 2) and p.experiment.isr.batch_size == 16 for p in plan.points)
    assert plan.manifest()["fixed"] == {"experiment.n_seeds": 3, "isr.batch_size": 16}
    with pytest.raises(SweepError, match="--set takes one value"):
        load_sweep(path, ["caregiver.noise=0,0.1"], ["isr.batch_size=16,32"])
    with pytest.raises(SweepError, match="experiment.name: cannot be swept"):
        load_sweep(path, ["caregiver.noise=0,0.1"], ["experiment.name=other"])
