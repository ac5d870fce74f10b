"""The ``internalize`` command line: list, run, reproduce, report, their options and every error path.

One tiny TOML experiment (socialization and ISR only, two seeds, 768 steps) runs through ``internalize run``
once per module; the other tests inspect copies of its output or stop before anything is computed (an error, or
a stand-in for ``run_many``). Each error must end the command with exit code 2 and one ``error: ...`` line on
stderr, never a traceback; usage errors (Typer's) also exit 2 and name the bad option.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import internalize.experiments.reproduce as reproduce_module
from internalize import __version__
from internalize.agents.isr_config import IsrConfig
from internalize.analysis.table import validate
from internalize.cli import app
from internalize.experiments.config_file import load_experiment
from internalize.experiments.paper import EXPERIMENTS, paper_experiment
from internalize.experiments.spec import learner_config
from internalize.schema import COLUMNS, KEY_COLUMNS, PHASES
from internalize.seeding import SEED_OFFSET_ENV
from internalize.storage import read_json_verified, write_json_verified
from internalize.studies.registry import STUDIES

WIDE = {"COLUMNS": "240"}  # rich tables and Typer's error boxes are not wrapped

# base = "paper": every [learner] / [isr] value below differs from the base's (cnn, 1 env x 2048, lr 1e-4;
# policy ISR, channel encoding, lr 3e-4, batch 1), so the manifest and the logged numbers show whose they are.
TINY_FILE = """\
[experiment]
name = "cli-tiny"
title = "Socialization and ISR only"
base = "paper"
seeds = [5, 6]
socialization_world = "blocks-1"
conditions = []
socialization_steps = 768
evaluation_episodes = 0
chunk_rollouts = 3

[learner]
torso = "mlp"
n_envs = 4
n_steps = 32
batch_size = 64
n_epochs = 2
learning_rate = 0.0015

[isr]
network = "mlp"
encoding = "onehot"
learning_rate = 0.002
batch_size = 32
data_sizes = [768]
"""
TINY_LEARNER = learner_config(torso="mlp", n_envs=4, n_steps=32, batch_size=64, n_epochs=2, learning_rate=0.0015)
TINY_ISR = IsrConfig(network="mlp", encoding="onehot", learning_rate=0.002, batch_size=32, data_sizes=(768,))


def invoke(args: list[str], **env: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={**WIDE, **env})


def assert_one_line_error(result, message: str) -> None:
    """Exit code 2, exactly ``error: message`` on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stderr == f"error: {message}\n", result.stderr
    assert result.stdout == "", result.stdout
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """``internalize run tiny.toml --no-report`` once: the file, the output directory and the CLI's result."""
    root = tmp_path_factory.mktemp("cli")
    path = root / "tiny.toml"
    path.write_text(TINY_FILE)
    out = root / "out"
    result = invoke(["run", path, "--out", out, "--no-report"])
    return SimpleNamespace(path=path, out=out, result=result)


def _copy(tiny_run, tmp_path: Path) -> Path:
    assert tiny_run.result.exit_code == 0, tiny_run.result.output
    out = tmp_path / "out"
    shutil.copytree(tiny_run.out, out)
    return out


@pytest.fixture
def no_compute(monkeypatch):
    """Stand-ins for run_many and write_report that record their calls (an error path must not reach them)."""
    calls = SimpleNamespace(runs=[], reports=[])

    def run_many(experiments, out, *, force=False, progress=True, log=print, layout="vmap", processes=None,
                 executor=None):
        calls.runs.append(SimpleNamespace(experiments=list(experiments), out=Path(out), force=force, layout=layout,
                                          processes=processes, executor=executor))
        return {}

    def write_report(out, extra=None):
        calls.reports.append(SimpleNamespace(out=Path(out), extra=extra))
        return Path(out) / "report.md"

    monkeypatch.setattr(reproduce_module, "run_many", run_many)
    monkeypatch.setattr(reproduce_module, "write_report", write_report)
    monkeypatch.delenv(SEED_OFFSET_ENV, raising=False)
    return calls


# ------------------------------------------------------------------------------------------------ run a TOML file
@pytest.mark.expensive
def test_toml_learner_and_isr_are_recorded_in_the_manifest_and_used_by_the_run(tiny_run):
    result, store = tiny_run.result, tiny_run.out / "cli-tiny"
    assert result.exit_code == 0, result.output
    # paid_return, presence_rate, isr_heldout_true_corr and paid_heldout_true_corr included
    assert "cli-tiny: 280 rows -> " in result.output, result.output
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["experiment"] == "cli-tiny"
    config = manifest["config"]
    assert config["learner"] == dataclasses.asdict(TINY_LEARNER), config["learner"]
    assert config["isr"] == {**dataclasses.asdict(TINY_ISR), "data_sizes": [768]}, config["isr"]
    assert config == json.loads(json.dumps(load_experiment(tiny_run.path).to_dict())), "manifest = the file"
    assert (config["seeds"], config["socialization_steps"], config["title"]) == ([5, 6], 768,
                                                                                 "Socialization and ISR only")
    assert set(manifest["timings"]) == {"socialization", "isr"}, manifest["timings"]
    assert not (tiny_run.out / "report.md").exists() and not (tiny_run.out / "report.html").exists(), "--no-report"

    df = pd.read_parquet(store / "results.parquet")
    assert list(df.columns) == list(COLUMNS) and not df.duplicated(list(KEY_COLUMNS)).any()
    validate(df)  # the analysis layer reads what the runner wrote
    assert set(df["phase"]) == {"socialization", "isr"} and set(df["phase"]) <= set(PHASES)
    assert set(df["seed"]) == {5, 6} and set(df["world"]) == {"blocks-1"} and set(df["experiment"]) == {"cli-tiny"}
    assert np.isfinite(df["value"]).all()

    soc = df[df["phase"] == "socialization"].pivot_table(index=["seed", "step"], columns="metric", values="value")
    # A rollout is the file's n_envs x n_steps = 4 x 32 = 128 steps (the paper base's would be 2,048): six of them.
    for seed in (5, 6):
        assert soc.loc[seed].index.tolist() == [128, 256, 384, 512, 640, 768], soc.loc[seed].index.tolist()
        # 4 envs x 192 steps each = 4 x 9 whole 20-step episodes.
        assert soc.loc[seed, "episodes"].sum() == 36, soc.loc[seed, "episodes"]
    episode = df[(df["phase"] == "socialization") & (df["metric"] == "episodes")].groupby("seed")["episode"].max()
    assert (episode == 36).all(), episode
    np.testing.assert_allclose(soc["social_return"], 0.4 * soc["goals_per_episode"], atol=1e-5)
    assert (soc["extrinsic_return"] <= 0).all() and (soc["presence_return"] == 20).all()

    isr = df[df["phase"] == "isr"]
    final = isr.pivot_table(index="seed", columns="metric", values="value")
    # 768 stored transitions, the base's last 10% (77) held out; batches of the file's 32: ceil(691 / 32) = 22
    # updates (the paper base's batch 1 would make 691).
    assert (final["isr_n_train"] == 691).all() and (final["isr_n_heldout"] == 77).all(), final
    assert isr.groupby("seed")["step"].max().tolist() == [22, 22]
    assert set(isr["condition"]) == {"isr"}, "a data size equal to the whole socialization is the full-data ISR"


@pytest.mark.expensive
def test_report_command_writes_the_report_of_a_finished_run(tiny_run, tmp_path):
    out = _copy(tiny_run, tmp_path)
    result = invoke(["report", out])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"report: {out / 'report.md'}\n", result.stdout
    md = (out / "report.md").read_text()
    assert "PPO, MLP policy, 4 env(s) x 32 steps per rollout, batch 64, 2 epochs, lr 0.0015" in md
    assert "isr = mlp network, onehot action encoding, batch 32, lr 0.002, 1 epoch(s), utility additive" in md
    assert "socialization 768 steps on blocks-1" in md and "seeds = 2 (5, 6)" in md
    assert (out / "report.html").stat().st_size > 0
    # Without reproduce's record, the run-wide facts come from the experiments' manifests.
    assert "| commit | " in md and "| versions | " in md and "jax 0.12" in md and "| compute time | " in md, md[:900]
    assert "| finished experiments | 1, " in md and "No run metadata given." not in md
    # What reproduce recorded (run.json) travels with a copied directory: its report says how it was produced.
    write_json_verified(out / "run.json", {"preset": "quick", "wall time": "1,234 s"})
    assert invoke(["report", out]).exit_code == 0
    md = (out / "report.md").read_text()
    assert "| preset | quick |" in md and "| wall time | 1,234 s |" in md, md[:600]


@pytest.mark.expensive
def test_rerun_skips_a_finished_run_and_force_recomputes_it(tiny_run, tmp_path):
    out = _copy(tiny_run, tmp_path)
    store = out / "cli-tiny"
    table, manifest = (store / "results.parquet").read_bytes(), (store / "manifest.json").read_text()
    unit = store / "units" / "socialization.parquet"
    unit_mtime = unit.stat().st_mtime_ns

    again = invoke(["run", tiny_run.path, "--out", out])
    assert again.exit_code == 0, again.output
    assert "cli-tiny: complete in " in again.stdout and "skipped (use --force to recompute)" in again.stdout
    assert (store / "results.parquet").read_bytes() == table and (store / "manifest.json").read_text() == manifest
    assert unit.stat().st_mtime_ns == unit_mtime
    assert f"report: {out / 'report.md'}" in again.stdout and (out / "report.md").exists(), "--report is the default"

    forced = invoke(["run", tiny_run.path, "--out", out, "--force", "--no-report"])
    assert forced.exit_code == 0, forced.output
    assert "skipped" not in forced.output and "identical to a finished one" not in forced.output, forced.output
    assert unit.stat().st_mtime_ns > unit_mtime, "--force recomputes the units"
    new_manifest = json.loads((store / "manifest.json").read_text())
    assert new_manifest["status"] == "complete" and new_manifest["config"] == json.loads(manifest)["config"]
    # Deterministic on CPU: the recomputed table is the same table.
    first = pd.read_parquet(tiny_run.out / "cli-tiny" / "results.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(store / "results.parquet"), first)


@pytest.mark.expensive
def test_the_runner_refuses_a_changed_configuration_or_another_experiments_directory(tiny_run, tmp_path):
    out = _copy(tiny_run, tmp_path)
    changed = tmp_path / "changed.toml"
    changed.write_text(TINY_FILE.replace("learning_rate = 0.0015", "learning_rate = 0.003"))
    before = {p: p.read_bytes() for p in sorted((out / "cli-tiny").rglob("*")) if p.is_file()}
    result = invoke(["run", changed, "--out", out])
    assert_one_line_error(result, f"output directory {out / 'cli-tiny'} holds results of 'cli-tiny' with a different "
                                  "configuration (preset, seeds or budgets changed); choose another --out or pass "
                                  "--force to start afresh.")
    assert {p: p.read_bytes() for p in sorted((out / "cli-tiny").rglob("*")) if p.is_file()} == before
    # A directory holding another experiment's results.
    other = tmp_path / "other"
    (other / "cli-tiny").mkdir(parents=True)
    write_json_verified(other / "cli-tiny" / "manifest.json", {"experiment": "fig4b", "config": {}})
    result = invoke(["run", tiny_run.path, "--out", other])
    assert_one_line_error(result, f"output directory {other / 'cli-tiny'} holds results of experiment 'fig4b', not "
                                  "'cli-tiny'; choose another --out or pass --force to overwrite.")
    assert sorted(p.name for p in (other / "cli-tiny").iterdir()) == ["manifest.json", "manifest.json.sha256"]


# ------------------------------------------------------------------------------------------------ list
def _blocks(output: str) -> dict[str, dict[str, str]]:
    """``internalize list``'s blocks by label: the title and each field, wrapped lines joined."""
    blocks: dict[str, dict[str, str]] = {}
    for block in output.split("\n\n")[1:]:
        head, *fields = block.splitlines()
        label, _, title = head.partition(": ")
        entry = {"title": title}
        key = "title"
        for line in fields:
            if line.startswith("  ") and not line.startswith("    "):
                key, value = line.split(None, 1)
                entry[key] = value
            else:  # a wrapped line of the title or of a field
                entry[key] += " " + line.strip()
        blocks[label] = entry
    return blocks


@pytest.mark.parametrize("preset", ["quick", "paper"])
@pytest.mark.parametrize("columns", ["80", "200"])
def test_list_shows_every_experiment_with_its_worlds_conditions_budgets_and_seeds(preset, columns, monkeypatch):
    monkeypatch.delenv(SEED_OFFSET_ENV, raising=False)
    result = invoke(["list", "--preset", preset], COLUMNS=columns)
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= (80 if columns == "80" else 120)
    paper_part, header, studies_part = result.output.partition("\nStudies beyond the paper")
    rows = _blocks(paper_part)
    assert list(rows) == ["fig4a (fig1)", "fig3", "fig4b", "fig5", "fig6", "fig7"], list(rows)
    studies = _blocks(header + studies_part)
    assert list(studies) == list(STUDIES), list(studies)
    for name, s in STUDIES.items():
        plan = s.sweep(preset)
        exp = plan.points[0].experiment
        assert studies[name]["title"] == s.title
        assert studies[name]["points"] == f"{len(plan.points)} x {len(exp.seeds)} seeds"
        assert studies[name]["steps"] == f"{exp.socialization_steps:,} + {exp.autonomy_steps:,}"
    for name in EXPERIMENTS:
        label = next(k for k in rows if k.split(" ")[0] == name)
        exp = paper_experiment(name, preset, 0)
        row = rows[label]
        assert row["title"] == exp.title, (name, row)
        auto = ", ".join(w.name for w in exp.autonomy_worlds) or "-"
        assert row["worlds"] == f"{exp.socialization_world.name} -> {auto}", (name, row)
        assert row["conditions"] == (", ".join(exp.conditions) or "-"), (name, row)
        assert row["steps"] == f"{exp.socialization_steps:,} + {exp.autonomy_steps:,}", (name, row)
        assert row["seeds"] == str(len(exp.seeds)), (name, row)
    if preset == "paper":  # the paper's budgets (docs/paper-vs-reference.md, 'Phase lengths and seeds'), written out
        assert [rows[k]["steps"] for k in rows] == ["120,832 + 120,832", "120,832 + 0", "120,832 + 120,832",
                                                    "120,832 + 241,664", "120,832 + 241,664",
                                                    "241,664 + 241,664"]
        assert [rows[k]["seeds"] for k in rows] == ["10", "10", "10", "10", "1", "10"]


def test_list_errors_are_one_line_exit_2(monkeypatch):
    monkeypatch.delenv(SEED_OFFSET_ENV, raising=False)
    assert_one_line_error(invoke(["list", "--preset", "slow"]),
                          "preset: unknown preset 'slow'; allowed: quick | paper.")
    assert_one_line_error(invoke(["list"], **{SEED_OFFSET_ENV: "abc"}),
                          f"{SEED_OFFSET_ENV}: got 'abc'; allowed: an integer >= 0 (e.g. 0, 1000, 2000).")


# ------------------------------------------------------------------------------------------------ error paths
BAD_FILE = '[experiment]\nname = "x"\nsocialization_steps = 10\ncolour = 3\n'
EXPERIMENT_KEYS = ("autonomy_steps, autonomy_worlds, base, chunk_rollouts, conditions, evaluation_episodes, "
                   "n_seeds, name, seeds, socialization_steps, socialization_world, title")
ALLOWED_EXPERIMENTS = "fig4a, fig3, fig4b, fig5, fig6, fig7, fig1, fig1b (or a path to a .toml file)"
BAD_OFFSET = "allowed: an integer >= 0 (e.g. 0, 1000, 2000)."


@pytest.mark.parametrize(("args", "env", "message"), [
    (["run", "fig9"], {}, f"experiment: unknown experiment 'fig9'; allowed: {ALLOWED_EXPERIMENTS}."),
    (["run", "fig4a", "--preset", "slow"], {}, "preset: unknown preset 'slow'; allowed: quick | paper."),
    (["run", "empathy", "--preset", "slow"], {}, "preset: unknown preset 'slow'; allowed: quick | paper."),
    (["run", "fig4a", "--seed-offset", "ten"], {}, f"seed offset: got 'ten'; {BAD_OFFSET}"),
    (["run", "fig4a", "--seed-offset", "-3"], {}, f"seed offset: got '-3'; {BAD_OFFSET}"),
    (["run", "fig4a", "--seed-offset", "1.5"], {}, f"seed offset: got '1.5'; {BAD_OFFSET}"),
    (["run", "fig4a"], {SEED_OFFSET_ENV: "-5"}, f"{SEED_OFFSET_ENV}: got '-5'; {BAD_OFFSET}"),
    (["run", "{tmp}/missing.toml"], {}, "{tmp}/missing.toml: cannot read the experiment file (No such file or "
                                        "directory)."),
    (["run", "{tmp}/bad.toml"], {}, f"{{tmp}}/bad.toml, line 4: experiment.colour: unknown key; allowed: "
                                    f"{EXPERIMENT_KEYS}"),
    (["reproduce", "--preset", "slow"], {}, "preset: unknown preset 'slow'; allowed: quick | paper."),
    (["reproduce", "--seed-offset", "x"], {}, f"seed offset: got 'x'; {BAD_OFFSET}"),
    (["reproduce"], {SEED_OFFSET_ENV: "1e3"}, f"{SEED_OFFSET_ENV}: got '1e3'; {BAD_OFFSET}"),
    (["run", "fig4a", "--layout", "threads"], {}, "--layout: unknown layout 'threads'; allowed: vmap | per-core."),
    (["reproduce", "--layout", "gpu"], {}, "--layout: unknown layout 'gpu'; allowed: vmap | per-core."),
])
def test_errors_end_with_exit_2_and_one_line(tmp_path, no_compute, args, env, message):
    (tmp_path / "bad.toml").write_text(BAD_FILE)
    out = tmp_path / "out"
    result = invoke([a.replace("{tmp}", str(tmp_path)) for a in args] + ["--out", out], **env)
    assert_one_line_error(result, message.replace("{tmp}", str(tmp_path)))
    assert no_compute.runs == [] and no_compute.reports == [], "nothing runs after an error"
    assert not out.exists(), "nothing is written after an error"


@pytest.mark.expensive
def test_report_of_a_directory_without_finished_runs_is_a_one_line_error(tmp_path, tiny_run):
    for out in (tmp_path / "empty", tmp_path / "nowhere"):
        if out.name == "empty":
            out.mkdir()
        assert_one_line_error(invoke(["report", out]),
                              f"report: no complete experiment under {out} (expected {out}/NAME/results.parquet).")
        assert not (out / "report.md").exists()
    # A run that has not finished (manifest status "running") is not reported either.
    running = _copy(tiny_run, tmp_path / "running")
    manifest = json.loads((running / "cli-tiny" / "manifest.json").read_text())
    write_json_verified(running / "cli-tiny" / "manifest.json", {**manifest, "status": "running"})
    assert_one_line_error(invoke(["report", running]), f"report: no complete experiment under {running} (expected "
                                                       f"{running}/NAME/results.parquet).")


def test_a_non_finite_number_during_a_run_is_a_one_line_error(tmp_path, monkeypatch):
    def diverging(experiments, out, **kwargs):
        raise FloatingPointError("fig4a/socialization: non-finite value_loss at rollout 3")

    monkeypatch.setattr(reproduce_module, "run_many", diverging)
    monkeypatch.delenv(SEED_OFFSET_ENV, raising=False)
    assert_one_line_error(invoke(["run", "fig4a", "--out", tmp_path / "out"]),
                          "fig4a/socialization: non-finite value_loss at rollout 3")
    assert_one_line_error(invoke(["reproduce", "--out", tmp_path / "out"]),
                          "fig4a/socialization: non-finite value_loss at rollout 3")


@pytest.mark.parametrize(("args", "message"), [
    (["run"], "Missing argument 'experiment'."),
    (["run", "fig4a", "--seeds", "0"], "Invalid value for '--seeds': Input should be greater than or equal to 1"),
    (["reproduce", "--seeds", "-2"], "Invalid value for '--seeds': Input should be greater than or equal to 1"),
    (["run", "fig4a", "--layout", "per-core", "--processes", "0"], "Invalid value for '--processes'"),
    (["report"], "Missing argument 'out'."),
    (["demo"], "Missing option '--out'."),
    (["frobnicate"], "No such command 'frobnicate'."),
    (["play", "meadow", "--out", "{tmp}/a.gif"], "Invalid value for 'world': Value error, 'meadow' is not one of "
                                                 "'navigation', 'prosocial', 'peer', 'two-goal'."),
    (["play", "navigation", "--out", "{tmp}/a.gif", "--map", "nowhere"], "Invalid value: map: a map must be 7 rows"),
    (["play", "navigation", "--out", "{tmp}/a.gif", "--agent", "oracle"], "Invalid value for '--agent'"),
    (["play", "navigation", "--out", "{tmp}/a.gif", "--steps", "0"], "Invalid value for '--steps'"),
])
def test_usage_errors_exit_2_and_name_the_problem(tmp_path, no_compute, args, message):
    result = invoke([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    assert result.stdout == "" and message in result.stderr, result.stderr
    assert no_compute.runs == [] and list(tmp_path.iterdir()) == [], "nothing runs or is written"


def test_the_installed_command_prints_one_error_line_and_exits_2(tmp_path):
    command = Path(sys.executable).parent / "internalize"
    if not command.exists():
        pytest.skip(f"no console script beside {sys.executable}")
    done = subprocess.run([str(command), "run", "fig9", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=300, env={"PATH": str(command.parent), "HOME": str(tmp_path)})
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == "" and done.stderr == (f"error: experiment: unknown experiment 'fig9'; allowed: "
                                                 f"{ALLOWED_EXPERIMENTS}.\n"), done.stderr
    version = invoke(["--version"])
    assert version.exit_code == 0 and version.stdout == f"internalize {__version__}\n"


# ------------------------------------------------------------------------------------------------ wiring
def test_run_passes_preset_seeds_force_and_report_on(tmp_path, no_compute):
    out = tmp_path / "out"
    result = invoke(["run", "fig5", "--preset", "paper", "--seeds", "3", "--out", out, "--force", "--no-report"])
    assert result.exit_code == 0, result.output
    [call] = no_compute.runs
    assert call.experiments == [paper_experiment("fig5", "paper", 0).with_seeds(3)] and call.out == out and call.force
    assert call.experiments[0].seeds == (1234, 1235, 1236) and no_compute.reports == []
    result = invoke(["run", "fig1", "--out", out])
    assert result.exit_code == 0, result.output
    assert no_compute.runs[-1].experiments == [paper_experiment("fig4a", "quick", 0)] and not no_compute.runs[-1].force
    assert [r.out for r in no_compute.reports] == [out] and result.stdout == f"report: {out / 'report.md'}\n"


def test_layout_and_processes_reach_the_runs(tmp_path, no_compute):
    out = tmp_path / "out"
    assert invoke(["run", "fig4a", "--out", out, "--no-report"]).exit_code == 0
    assert (no_compute.runs[-1].layout, no_compute.runs[-1].processes) == ("vmap", None)
    result = invoke(["run", "fig4a", "--out", out, "--no-report", "--layout", "per-core", "--processes", "3"])
    assert result.exit_code == 0, result.output
    assert (no_compute.runs[-1].layout, no_compute.runs[-1].processes) == ("per-core", 3)
    result = invoke(["reproduce", "--out", out, "--layout", "per-core"])
    assert result.exit_code == 0, result.output
    assert (no_compute.runs[-1].layout, no_compute.runs[-1].processes) == ("per-core", None)


def test_a_toml_file_keeps_its_seeds_and_directory_under_a_seed_offset(tmp_path, no_compute):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_FILE)
    out = tmp_path / "out"
    result = invoke(["run", path, "--out", out, "--seed-offset", "7", "--no-report"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"note: seed offset 7 ignored: {path} keeps its own seeds and writes into {out}.\n"
    [call] = no_compute.runs
    assert call.experiments == [load_experiment(path)] and call.experiments[0].seeds == (5, 6) and call.out == out


def test_reproduce_runs_every_paper_experiment_with_the_preset_and_options(tmp_path, no_compute):
    out = tmp_path / "out"
    result = invoke(["reproduce", "--preset", "paper", "--seeds", "2", "--force", "--out", out])
    assert result.exit_code == 0, result.output
    [call] = no_compute.runs
    assert [e.name for e in call.experiments] == list(EXPERIMENTS)
    assert call.experiments == [paper_experiment(n, "paper", 0).with_seeds(2) for n in EXPERIMENTS]
    assert all(len(e.seeds) == 2 for e in call.experiments) and call.out == out and call.force
    [report] = no_compute.reports
    assert report.out == out and report.extra["preset"] == "paper", report.extra
    assert read_json_verified(out / "run.json") == report.extra, "recorded beside the results"
    assert f"report: {out / 'report.md'}" in result.stdout


def test_more_seeds_than_a_file_lists_keep_the_listed_ones(tmp_path, no_compute):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_FILE.replace("seeds = [5, 6]", "seeds = [5, 9, 2]"))
    result = invoke(["run", path, "--out", tmp_path / "out", "--seeds", "4", "--no-report"])
    assert result.exit_code == 0, result.output
    seeds = no_compute.runs[0].experiments[0].seeds
    assert seeds == (5, 9, 2, 10), seeds  # the listed seeds, then the next after the largest


# ------------------------------------------------------------------------------------------------ bad input
def test_bad_input_that_used_to_crash_is_one_line_exit_2(tmp_path):
    # A file saved in another encoding: the file and the line of the first bad byte.
    latin = tmp_path / "latin.toml"
    latin.write_bytes(TINY_FILE.replace('title = "Socialization and ISR only"', 'title = "caf\xe9"')
                      .encode("latin-1"))
    offset = latin.read_bytes().index(b"\xe9")
    assert_one_line_error(invoke(["run", latin, "--out", tmp_path / "o", "--no-report"]),
                          f"{latin}, line 3: not UTF-8 text (byte 0xe9 at offset {offset}); TOML files must be saved "
                          "as UTF-8.")
    # A seed JAX cannot take (keys are 32-bit): refused, not cut to its low bits.
    big = tmp_path / "big.toml"
    big.write_text(TINY_FILE.replace("seeds = [5, 6]", "seeds = [5, 4294967296]"))
    result = invoke(["run", big, "--out", tmp_path / "o", "--no-report"])
    assert result.exit_code == 2 and "seeds" in result.stderr and "[0, 2**32 - 1]" in result.stderr, result.output
    assert "Traceback" not in result.output and not (tmp_path / "o").exists()
    # An --out that is a file.
    afile = tmp_path / "afile"
    afile.write_text("")
    for command in (["run", "fig4a"], ["reproduce"]):
        assert_one_line_error(invoke([*command, "--out", afile]),
                              f"--out: {afile} is a file; allowed: a directory (created if missing).")
