"""Nothing silently wrong: every table the runner trusts is verified when read, and a file that fails is never
used — it is set aside with a one-line warning naming it and its unit is recomputed, to the same numbers.

Corruption is made the way disks and people make it: one flipped bit, a truncated file, a lost checksum file,
a damaged checkpoint, a damaged entry of the shared folder, a damaged resume checkpoint."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from internalize.experiments.runner import run_experiment
from internalize.experiments.shared import SHARED_DIR
from internalize.storage import (
    FILE_MODE,
    CorruptFile,
    checksum_path,
    read_parquet_verified,
    write_parquet_verified,
)
from test_experiments import tiny


def flip_bit(path: Path, at: float = 0.5) -> None:
    """Flip one bit of ``path``, ``at`` a fraction of the way into the file."""
    data = bytearray(path.read_bytes())
    i = int(len(data) * at)
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------------------------ storage
def test_a_verified_table_round_trips_and_any_damage_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "t.parquet"
    df = pd.DataFrame({"a": [1.0, 2.5, -3.0], "b": ["x", "y", "z"]})
    write_parquet_verified(path, df)
    pd.testing.assert_frame_equal(read_parquet_verified(path), df)

    flip_bit(path)
    with pytest.raises(CorruptFile, match=rf"^{path}: sha256 .* does not match .*changed on disk"):
        read_parquet_verified(path)
    write_parquet_verified(path, df)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CorruptFile, match=rf"^{path}: \d+ bytes, but \d+ were written"):
        read_parquet_verified(path)
    write_parquet_verified(path, df)
    checksum_path(path).unlink()
    with pytest.raises(CorruptFile, match=rf"^{path}: no checksum file t.parquet.sha256"):
        read_parquet_verified(path)
    checksum_path(path).write_text("not a checksum")
    with pytest.raises(CorruptFile, match="checksum file t.parquet.sha256 is unreadable"):
        read_parquet_verified(path)
    assert isinstance(CorruptFile("x"), ValueError)  # the CLI reports ValueErrors as one line, exit 2


def test_files_get_the_mode_the_umask_gives_not_a_private_one(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    assert FILE_MODE == 0o666 & ~mask
    write_parquet_verified(tmp_path / "t.parquet", pd.DataFrame({"a": [1]}))
    for p in (tmp_path / "t.parquet", checksum_path(tmp_path / "t.parquet")):
        assert stat.S_IMODE(p.stat().st_mode) == FILE_MODE, (p, oct(p.stat().st_mode))


# ------------------------------------------------------------------------------------------------ the runner
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny experiment and its table."""
    out = tmp_path_factory.mktemp("runs")
    exp = tiny("fig4a", conditions=("none", "isr"))  # test_run_lock's and test_watch's: compiled programs shared
    df = run_experiment(exp, out, progress=False, log=lambda _: None)
    return exp, out, df


def rerun(exp, out) -> tuple[pd.DataFrame, list[str]]:
    logs: list[str] = []
    return run_experiment(exp, out, progress=False, log=logs.append), logs


def warnings_of(logs: list[str]) -> list[str]:
    return [m for m in logs if m.startswith("warning: ")]


@pytest.mark.expensive
def test_every_file_the_run_leaves_is_readable_by_others(finished):
    exp, out, _ = finished
    files = [p for p in (out / exp.name).rglob("*") if p.is_file()]
    assert any(p.suffix == ".ckpt" for p in files) and any(p.name == "results.parquet" for p in files)
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {FILE_MODE}


@pytest.mark.expensive
def test_a_flipped_bit_in_the_results_table_is_rebuilt_from_the_units(finished):
    exp, out, df = finished
    flip_bit(out / exp.name / "results.parquet")
    again, logs = rerun(exp, out)
    (warning,) = warnings_of(logs)
    assert "results.parquet: sha256" in warning and "rebuilding it from the units" in warning, logs
    pd.testing.assert_frame_equal(again, df)


@pytest.mark.expensive
@pytest.mark.parametrize("damage", ["bit", "truncate", "checksum lost"])
def test_a_damaged_unit_table_is_recomputed_to_the_same_numbers(finished, damage):
    exp, out, df = finished
    unit = out / exp.name / "units" / "socialization.parquet"
    if damage == "bit":
        flip_bit(unit, 0.3)
    elif damage == "truncate":
        unit.write_bytes(unit.read_bytes()[:100])
    else:
        checksum_path(unit).unlink()
    (out / exp.name / "results.parquet").unlink()  # as if the run had stopped before the table was written
    again, logs = rerun(exp, out)
    (warning,) = warnings_of(logs)
    assert f"{unit}:" in warning and warning.endswith("recomputing unit socialization"), logs
    # Replaced by a verified copy: recomputed, or taken from the shared folder's intact copy of the same unit.
    read_parquet_verified(unit)
    pd.testing.assert_frame_equal(again, df)


@pytest.mark.expensive
def test_a_damaged_final_checkpoint_is_recomputed_not_loaded(finished):
    exp, out, df = finished
    flip_bit(out / exp.name / "checkpoints" / "isr" / "final.ckpt", 0.7)
    (out / exp.name / "results.parquet").unlink()
    again, logs = rerun(exp, out)
    (warning,) = warnings_of(logs)
    assert "final.ckpt: corrupt" in warning and warning.endswith("recomputing unit isr"), logs
    pd.testing.assert_frame_equal(again, df)


@pytest.mark.expensive
def test_a_damaged_resume_checkpoint_restarts_the_unit(finished):
    exp, out, df = finished
    unit = f"autonomy-{exp.autonomy_worlds[0].name}"
    for p in (out / exp.name / "units").glob(f"{unit}.parquet*"):
        p.unlink()
    (out / exp.name / "results.parquet").unlink()
    (out / exp.name / "checkpoints" / unit / "partial.ckpt").write_bytes(b"INTERNALIZE-CHECKPOINT 1\ngarbage")
    again, logs = rerun(exp, out)
    (warning,) = warnings_of(logs)
    assert f"{unit}: checkpoint not usable" in warning and "starting the unit again" in warning, logs
    assert not any("resuming after rollout" in m for m in logs), logs
    pd.testing.assert_frame_equal(again, df)


@pytest.mark.expensive
def test_a_damaged_shared_unit_is_deleted_not_copied(finished):
    exp, out, df = finished
    other = dataclasses.replace(exp, name="fig4a-again")
    entries = sorted((out / SHARED_DIR).glob("socialization-*"))
    assert len(entries) == 1, entries
    flip_bit(entries[0] / "rows.parquet")
    shared, logs = rerun(other, out)
    (warning,) = warnings_of(logs)
    assert f"shared socialization {entries[0]}" in warning and "computing the unit instead" in warning, logs
    assert not any("identical to a finished one" in m and "socialization" in m for m in logs), logs
    pd.testing.assert_frame_equal(shared.drop(columns="experiment"), df.drop(columns="experiment"))
    # Computed afresh, it is published again, intact, and the next experiment reuses it.
    third, logs = rerun(dataclasses.replace(exp, name="fig4a-third"), out)
    assert any("fig4a-third/socialization: identical to a finished one" in m for m in logs), logs
    assert not warnings_of(logs), logs
    pd.testing.assert_frame_equal(third.drop(columns="experiment"), df.drop(columns="experiment"))


# ------------------------------------------------------------------------------------------------ a full disk
def _disk_full(monkeypatch) -> None:
    import errno

    import internalize.storage as storage

    def fsync(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", fsync)


def test_a_full_disk_keeps_the_previous_good_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    from internalize.storage import WriteFailed, read_verified, write_verified

    path = tmp_path / "t.bin"
    write_verified(path, b"the good version")
    _disk_full(monkeypatch)
    with pytest.raises(WriteFailed) as err:
        write_verified(path, b"a new version that does not fit")
    assert str(err.value) == f"{path}: cannot be written (No space left on device); the previous version is kept"
    assert isinstance(err.value, ValueError) and isinstance(err.value, OSError)
    monkeypatch.undo()
    assert read_verified(path) == b"the good version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin", "t.bin.sha256"], "no temporary file left"


def test_a_full_disk_during_a_run_is_one_line_and_exit_2(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from internalize.cli import app

    path = tmp_path / "tiny.toml"
    path.write_text('[experiment]\nname = "full"\nsocialization_steps = 256\nconditions = []\n'
                    'evaluation_episodes = 0\n[learner]\nn_envs = 2\nn_steps = 64\n')
    _disk_full(monkeypatch)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--no-report"])
    assert result.exit_code == 2, result.output
    manifest = tmp_path / "out" / "full" / "manifest.json"
    assert result.stderr == f"error: {manifest}: cannot be written (No space left on device); nothing was written\n"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("dies_at", [1, 2, 3])
def test_a_writer_killed_at_any_instant_leaves_a_pair_that_verifies(tmp_path, monkeypatch, dies_at):
    # A rewrite replaces two files (the data and its checksum file); a process killed between any two of its
    # steps must leave the old or the new version readable, never a file that cannot be verified (a run killed
    # just after writing its manifest was refused on resume).
    import internalize.storage as storage

    path = tmp_path / "manifest.json"
    storage.write_verified(path, b"old version", identity="config-a")
    real, calls = storage.atomic_write_bytes, []

    def dying(target, data, **kw):
        calls.append(target)
        if len(calls) == dies_at:
            raise KeyboardInterrupt("killed")
        real(target, data, **kw)

    monkeypatch.setattr(storage, "atomic_write_bytes", dying)
    with pytest.raises(KeyboardInterrupt):
        storage.write_verified(path, b"the new version", identity="config-b")
    monkeypatch.undo()
    got = storage.read_verified(path)
    assert got == (b"old version" if dies_at <= 2 else b"the new version"), (dies_at, got)
    # Each version keeps its own identity: the old one is not taken for the new configuration.
    if dies_at <= 2:
        assert storage.read_verified(path, "config-a") == b"old version"
        with pytest.raises(storage.StaleFile):
            storage.read_verified(path, "config-b")
    else:
        assert storage.read_verified(path, "config-b") == b"the new version"
    # The next complete write leaves one record again.
    storage.write_verified(path, b"final", identity="config-b")
    assert len(storage.checksum_path(path).read_text().splitlines()) == 1
