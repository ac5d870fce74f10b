"""``internalize clean OUT``: finished experiments lose what only a resume needed, keep what a reader needs, and
rerun as complete; an unfinished one is left as it is."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from internalize.cli import app
from internalize.experiments.layout import PER_CORE_DIR
from internalize.experiments.runner import run_experiment
from internalize.experiments.shared import SHARED_DIR
from test_experiments import tiny


@pytest.mark.expensive
def test_clean_frees_checkpoints_of_finished_runs_and_keeps_results_and_unfinished_ones(tmp_path):
    out = tmp_path / "runs"
    exp = tiny("fig4b", conditions=("isr", "caregiver"), evaluation_episodes=0)
    df = run_experiment(exp, out, progress=False, log=lambda _: None)
    unfinished = dataclasses.replace(exp, name="half")
    run_experiment(unfinished, out, progress=False, log=lambda _: None)
    (out / "half" / "results.parquet").unlink()  # as if it had stopped before its table
    for unit in (out / "half" / "units").glob("autonomy-*"):
        unit.unlink()
    (out / "report.md").write_text("# report\n")
    cache = out / PER_CORE_DIR / "xla-cache"  # per-core workers' compiled programs (no cache given)
    cache.mkdir(parents=True)
    (cache / "program").write_bytes(b"x" * 100)
    before = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    half = {p: p.read_bytes() for p in (out / "half").rglob("*") if p.is_file()}

    result = CliRunner().invoke(app, ["clean", str(out)])
    assert result.exit_code == 0, result.output
    assert "half: unfinished, kept" in result.output and "cleaned 1 experiment(s), kept 1 unfinished" in result.output
    assert not (out / exp.name / "checkpoints").exists()
    assert (out / SHARED_DIR).exists(), "the unfinished experiment may still reuse the shared units"
    assert (cache / "program").exists(), "and the compiled programs"
    assert {p: p.read_bytes() for p in (out / "half").rglob("*") if p.is_file()} == half, "left as it was"
    after = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    assert {p for p in before - after if "checkpoints" not in p.parts} == set(), before - after
    for kept in ("results.parquet", "manifest.json", "units/socialization.parquet"):
        assert (out / exp.name / kept).exists(), kept
    assert (out / "report.md").exists()

    logs: list[str] = []
    again = run_experiment(exp, out, progress=False, log=logs.append)
    assert any("complete" in m and "skipped" in m for m in logs), logs
    pd.testing.assert_frame_equal(again, df)

    shutil.rmtree(out / "half")
    result = CliRunner().invoke(app, ["clean", str(out)])
    assert result.exit_code == 0 and not (out / SHARED_DIR).exists() and not cache.exists(), result.output


def test_clean_of_a_missing_directory_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["clean", str(tmp_path / "nope")])
    assert result.exit_code == 2 and result.stderr == f"error: clean: {tmp_path / 'nope'} is not a directory of runs.\n"
