"""One run per output directory, stale work never reused, what a killed run leaves cleaned up — with real
processes, real signals and real files.

* two ``internalize run`` of one experiment into one directory at once: exactly one computes, the other is refused
  at once with one line naming the directory and the holder; a lock left by a SIGKILLed run is taken over;
* a deleted or damaged manifest with units present: refused (exit 2) with what to do, nothing reused; a unit
  file carried over from another configuration is recomputed, not used;
* stray temporary files of an interrupted write are removed by the next run;
* with umask 022 every output (results, manifest, units, checkpoints, figures, report) is mode 0644.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from internalize.experiments.runner import run_experiment
from internalize.storage import checksum_path
from test_experiments import tiny

pytestmark = pytest.mark.expensive  # end-to-end runs: in make test, not make test-fast

# Long enough (several seconds of training) that a second process starts while the first still computes.
SLOW_FILE = """\
[experiment]
name = "locked"
seeds = [1, 2]
socialization_world = "blocks-1"
autonomy_worlds = ["blocks-1"]
conditions = ["none", "isr"]
socialization_steps = {steps}
autonomy_steps = {steps}
evaluation_episodes = 4
chunk_rollouts = 1

[learner]
n_envs = 4
n_steps = 32
batch_size = 64
n_epochs = 2
"""


def _cli(*args: str, umask: int | None = None) -> subprocess.Popen:
    code = "import os, sys; {}from internalize.cli import app; sys.argv = ['internalize', *sys.argv[1:]]; app()"
    code = code.format(f"os.umask({umask}); " if umask is not None else "")
    env = dict(os.environ, JAX_PLATFORMS="cpu", COLUMNS="200")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _started(out: Path) -> bool:
    """The first run holds the lock and has written its manifest (so it is computing)."""
    lock = out / ".locked.lock"
    return lock.exists() and lock.read_text().startswith("pid ") and (out / "locked" / "manifest.json").exists()


def _first_run_started(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen]:
    """The experiment file, the output directory, and a first run that holds the lock and computes."""
    path = tmp_path / "locked.toml"
    path.write_text(SLOW_FILE.format(steps=128 * 40))
    out = tmp_path / "out"
    first = _cli("run", str(path), "--out", str(out), "--no-report")
    _wait_for(lambda: _started(out))
    return path, out, first


def test_a_second_run_is_refused_while_the_first_computes_and_takes_the_lock_over_once_it_is_killed(tmp_path):
    path, out, first = _first_run_started(tmp_path)
    second = _cli("run", str(path), "--out", str(out), "--no-report")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2, err
    assert err.startswith(f"error: output directory {out / 'locked'} is being written by another run (pid "
                          f"{first.pid} on "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert first.poll() is None, "refused at once, while the first still runs"
    # The refused run touched nothing; killed without warning, the first leaves its lock behind.
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert f"pid {first.pid} on " in (out / ".locked.lock").read_text(), "the dead run's lock is left behind"
    again = _cli("run", str(path), "--out", str(out), "--no-report")
    stdout, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    assert f"taking over the lock of a run that stopped without releasing it (pid {first.pid} on " in stdout + err
    assert (out / "locked" / "results.parquet").exists()
    assert (out / ".locked.lock").read_text() == "", "released cleanly"


# ------------------------------------------------------------------------------------------------ stale work
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    exp = tiny("fig4a", conditions=("none", "isr"))  # test_integrity's and test_watch's: compiled programs shared
    return exp, out, run_experiment(exp, out, progress=False, log=lambda _: None)


def _copy(finished, tmp_path: Path) -> tuple:
    exp, out, df = finished
    shutil.copytree(out, tmp_path / "out")
    return exp, tmp_path / "out", df


def test_a_deleted_manifest_with_other_seeds_is_refused_and_nothing_is_reused(finished, tmp_path):
    exp, out, _ = _copy(finished, tmp_path)
    (out / exp.name / "manifest.json").unlink()
    before = {p: p.read_bytes() for p in (out / exp.name).rglob("*") if p.is_file()}
    other = dataclasses.replace(exp, seeds=(5, 6))
    with pytest.raises(ValueError) as err:
        run_experiment(other, out, progress=False, log=lambda _: None)
    assert str(err.value) == (f"output directory {out / exp.name} holds units but no manifest.json, so nothing says "
                              "which configuration they belong to; pass --force to recompute them, or choose another "
                              "--out.")
    assert {p: p.read_bytes() for p in (out / exp.name).rglob("*") if p.is_file()} == before, "untouched"
    logs: list[str] = []
    df = run_experiment(other, out, force=True, progress=False, log=logs.append)
    assert set(df["seed"]) == {5, 6} and not any("loaded" in m or "reused" in m for m in logs), logs


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_damaged_manifest_is_refused_with_what_to_do(finished, tmp_path, damage):
    exp, out, df = _copy(finished, tmp_path)
    manifest = out / exp.name / "manifest.json"
    data = bytearray(manifest.read_bytes())
    if damage == "truncated":
        data = data[:40]
    else:
        data[len(data) // 2] ^= 0x01
    manifest.write_bytes(bytes(data))
    with pytest.raises(ValueError) as err:
        run_experiment(exp, out, progress=False, log=lambda _: None)
    assert str(err.value).startswith(f"{manifest}: ") and str(err.value).endswith(
        f"without it the units in {out / exp.name} cannot be matched to a configuration: pass --force to recompute "
        "them, or choose another --out."), err.value
    again = run_experiment(exp, out, force=True, progress=False, log=lambda _: None)
    pd.testing.assert_frame_equal(again, df)


def test_a_unit_of_another_configuration_is_recomputed_not_used(finished, tmp_path):
    exp, out, df = _copy(finished, tmp_path)
    other = dataclasses.replace(exp, seeds=(5, 6))
    run_experiment(other, tmp_path / "elsewhere", progress=False, log=lambda _: None)
    # Someone copies the other configuration's socialization over this one's (checksum and all: intact).
    unit = out / exp.name / "units" / "socialization.parquet"
    for src in (tmp_path / "elsewhere" / exp.name / "units" / "socialization.parquet",):
        shutil.copy(src, unit)
        shutil.copy(checksum_path(src), checksum_path(unit))
    (out / exp.name / "results.parquet").unlink()
    logs: list[str] = []
    again = run_experiment(exp, out, progress=False, log=logs.append)
    (warning,) = [m for m in logs if m.startswith("warning: ")]
    assert f"{unit}: written for another configuration" in warning and warning.endswith(
        "recomputing unit socialization"), warning
    pd.testing.assert_frame_equal(again, df)


def test_stray_temporary_files_of_a_killed_write_are_removed(finished, tmp_path):
    exp, out, df = _copy(finished, tmp_path)
    stray = [out / exp.name / "units" / ".socialization.parquet.x1y2.tmp",
             out / exp.name / "checkpoints" / "socialization" / ".final.ckpt.a9b8.tmp"]
    for p in stray:
        p.write_bytes(b"half a file")
    (out / exp.name / "results.parquet").unlink()
    logs: list[str] = []
    again = run_experiment(exp, out, progress=False, log=logs.append)
    assert not any(p.exists() for p in stray)
    assert f"{exp.name}: removed 2 temporary file(s) left by an interrupted run" in logs, logs
    pd.testing.assert_frame_equal(again, df)


def test_with_umask_022_every_output_is_0644(tmp_path):
    path = tmp_path / "locked.toml"
    path.write_text(SLOW_FILE.format(steps=128 * 4))
    out = tmp_path / "out"
    run = _cli("run", str(path), "--out", str(out), umask=0o022)
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err
    files = [p for p in out.rglob("*") if p.is_file()]
    kinds = {p.suffix for p in files}
    assert {".parquet", ".json", ".ckpt", ".sha256", ".md", ".html"} <= kinds, kinds
    modes = {p.relative_to(out).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {"0o644"}, modes
