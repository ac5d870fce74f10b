"""Checkpoints: exact round trips, atomic writes, corruption and mismatch detection, and a real kill-and-resume
of a vmapped multi-seed run in a subprocess (which also fails, instead of hanging, if vmapped PPO deadlocks)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.agents.checkpoint import (
    MAGIC,
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)


def _tree():
    return {
        "params": {"w": jnp.arange(6, dtype=jnp.float32).reshape(2, 3) / 7, "b": jnp.array([np.nan, -0.0])},
        "raw_key": jax.random.split(jax.random.PRNGKey(3), 4),  # a batch of raw uint32 keys
        "typed_key": jax.random.key(5),
        "count": jnp.int32(7),
        "flags": jnp.array([True, False]),
        "empty": (),
    }


def _same(a, b) -> bool:
    def eq(x, y):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        return np.asarray(x).dtype == np.asarray(y).dtype and np.array_equal(x, y, equal_nan=True)
    return all(jax.tree.leaves(jax.tree.map(eq, a, b)))


def test_round_trip_is_exact_with_meta_and_leaves_no_temp_files(tmp_path):
    tree = _tree()
    path = save_checkpoint(tmp_path / "sub" / "a.ckpt", tree, {"done": 3, "note": "x"})
    loaded, meta = load_checkpoint(path, tree)
    assert meta == {"done": 3, "note": "x"}
    assert _same(loaded, tree)
    assert jnp.issubdtype(loaded["typed_key"].dtype, jax.dtypes.prng_key)
    # An abstract template (no data) works too.
    loaded2, _ = load_checkpoint(path, jax.eval_shape(lambda: _tree()))
    assert _same(loaded2, tree)
    # Overwriting replaces the file; no temporary files are left behind.
    save_checkpoint(path, jax.tree.map(lambda x: x, tree), {"done": 4})
    assert read_checkpoint(path)[0] == {"done": 4}
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.ckpt"]


def test_a_compressed_checkpoint_round_trips_exactly_and_is_smaller(tmp_path):
    """What a finished unit keeps: observations of small integer codes (as the ISR's buffer stores them) deflate
    to a fraction of their size and load back bit-exactly, with the rest of the state."""
    codes = jax.random.randint(jax.random.key(0), (64, 9, 9, 4), 0, 3).astype(jnp.uint8) * (
        jax.random.uniform(jax.random.key(1), (64, 9, 9, 4)) < 0.2)
    tree = {**_tree(), "buffer": codes.astype(jnp.uint8)}
    plain = save_checkpoint(tmp_path / "plain.ckpt", tree, {"done": 2})
    packed = save_checkpoint(tmp_path / "packed.ckpt", tree, {"done": 2}, compress=True)
    assert packed.stat().st_size < 0.5 * plain.stat().st_size, (packed.stat().st_size, plain.stat().st_size)
    loaded, meta = load_checkpoint(packed, tree)
    assert meta == {"done": 2} and _same(loaded, tree)


def test_a_resume_checkpoint_deflates_the_integer_arrays_and_stores_the_floats(tmp_path):
    """A unit in progress is checkpointed with compress="integers": the socialization buffer's small codes
    deflate faster than the raw bytes are written, float parameters would cost far more to deflate than to
    store. It round-trips exactly like the others."""
    import zipfile

    codes = (jax.random.uniform(jax.random.key(1), (256, 9, 9, 4)) < 0.1).astype(jnp.uint8)
    tree = {**_tree(), "buffer": codes}
    path = save_checkpoint(tmp_path / "r.ckpt", tree, {"done": 2}, compress="integers")
    loaded, meta = load_checkpoint(path, tree)
    assert meta == {"done": 2} and _same(loaded, tree)
    _, records, arrays = read_checkpoint(path)
    with open(path, "rb") as f:  # the payload is a zip archive after the header
        f.seek(len(MAGIC) + 65)
        f.seek(int.from_bytes(f.read(8), "little"), 1)
        members = {i.filename: i.compress_type for i in zipfile.ZipFile(f).infolist()}
    for i, (record, array) in enumerate(zip(records, arrays, strict=True)):
        expected = zipfile.ZIP_DEFLATED if array.dtype.kind in "biu" else zipfile.ZIP_STORED
        assert members[f"leaf_{i:05d}.npy"] == expected, (record["path"], array.dtype)
    assert set(members.values()) == {zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED}
    with pytest.raises(ValueError, match="compress: got 'floats'"):
        save_checkpoint(tmp_path / "x.ckpt", tree, compress="floats")


@pytest.mark.parametrize("compress", [False, True, "integers"])
@pytest.mark.parametrize("where", ["payload", "header", "digest"])
def test_corrupt_file_is_detected(tmp_path, where, compress):
    path = save_checkpoint(tmp_path / "c.ckpt", _tree(), {"done": 1}, compress=compress)
    blob = bytearray(path.read_bytes())
    offset = {"payload": len(blob) - 20, "header": 100, "digest": 30}[where]
    blob[offset] ^= 0x01
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"c\.ckpt.*corrupt"):
        load_checkpoint(path, _tree())


@pytest.mark.parametrize("compress", [False, True])
def test_verify_checks_the_digest_without_loading_and_a_damaged_body_fails_it(tmp_path, compress):
    # What the shared folder checks before it links a checkpoint in or out: the checksum alone.
    path = save_checkpoint(tmp_path / "v.ckpt", _tree(), {"done": 1}, compress=compress)
    verify_checkpoint(path)
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x10
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match=r"v\.ckpt.*corrupt"):
        verify_checkpoint(path)


def test_a_checkpoint_whose_body_was_assembled_in_memory_still_loads(tmp_path):
    # Earlier versions built the body in memory with np.savez (a seekable zip) before writing it; the streamed
    # body is a zip written in one pass. Both are the same layout to the reader.
    import hashlib
    import io
    import json

    tree = _tree()
    streamed = save_checkpoint(tmp_path / "s.ckpt", tree, {"done": 5})
    _, records, arrays = read_checkpoint(streamed)
    header = json.dumps({"meta": {"done": 5}, "leaves": records}).encode()
    payload = io.BytesIO()
    np.savez(payload, **{f"leaf_{i:05d}": a for i, a in enumerate(arrays)})
    body = len(header).to_bytes(8, "little") + header + payload.getvalue()
    old = tmp_path / "old.ckpt"
    old.write_bytes(MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n" + body)
    loaded, meta = load_checkpoint(old, tree)
    assert meta == {"done": 5} and _same(loaded, tree)


def test_a_write_that_fails_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "w.ckpt", _tree(), {"done": 1})
    written = []

    def fail(member, array, **kwargs):  # the disk fills up after the first array
        if written:
            raise OSError(28, "No space left on device")
        written.append(array)
        member.write(np.lib.format.magic(1, 0))

    monkeypatch.setattr(np.lib.format, "write_array", fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, _tree(), {"done": 2})
    monkeypatch.undo()
    assert read_checkpoint(path)[0] == {"done": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.ckpt"], "no temporary file left"


def test_truncated_missing_and_foreign_files_are_rejected(tmp_path):
    path = save_checkpoint(tmp_path / "t.ckpt", _tree())
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, _tree())
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "missing.ckpt", _tree())
    (tmp_path / "other.ckpt").write_bytes(b"PK\x03\x04 not ours")
    with pytest.raises(CheckpointError, match="not an internalize checkpoint"):
        load_checkpoint(tmp_path / "other.ckpt", _tree())


def test_template_mismatch_names_the_leaf(tmp_path):
    path = save_checkpoint(tmp_path / "m.ckpt", _tree())
    wrong_shape = _tree() | {"flags": jnp.array([True, False, True])}
    with pytest.raises(CheckpointError, match=r"\['flags'\].*bool\[2\].*bool\[3\]"):
        load_checkpoint(path, wrong_shape)
    wrong_dtype = _tree() | {"count": jnp.float32(7)}
    with pytest.raises(CheckpointError, match=r"\['count'\].*int32.*float32"):
        load_checkpoint(path, wrong_dtype)
    with pytest.raises(CheckpointError, match="different structure"):
        load_checkpoint(path, {k: v for k, v in _tree().items() if k != "count"})


def test_meta_must_be_json(tmp_path):
    with pytest.raises(ValueError, match="meta"):
        save_checkpoint(tmp_path / "j.ckpt", _tree(), {"array": np.zeros(2)})
    assert not list(tmp_path.iterdir())


SCRIPT = textwrap.dedent(
    """
    import os, sys
    import jax, numpy as np
    from internalize.agents.checkpoint import load_checkpoint, save_checkpoint
    from internalize.agents.ppo import PPOConfig, check_finite, make_seeds_runner, make_train
    from internalize.worlds.navigation import Navigation, make_params

    out, chunks = sys.argv[1], int(sys.argv[2])
    # Share compiled programs between the killed and the resumed process (saves a compile, same executable).
    jax.config.update("jax_compilation_cache_dir", os.path.join(out, "xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    config = PPOConfig(n_steps=16, n_envs=2, batch_size=16, n_epochs=2, learning_rate=1e-3, torso="mlp")
    runner = make_seeds_runner(make_train(config, Navigation(), make_params(n_blocks=3)))
    keys = jax.random.split(jax.random.PRNGKey(7), 2)
    ckpt = os.path.join(out, "state.ckpt")

    def save_metrics(name, metrics):
        tmp = os.path.join(out, name + ".tmp.npz")
        np.savez(tmp, **jax.device_get(metrics))
        os.replace(tmp, os.path.join(out, name + ".npz"))

    if os.path.exists(ckpt):
        state, meta = load_checkpoint(ckpt, jax.eval_shape(runner.init, keys))
        done = meta["done"]
        print("resumed", done, flush=True)
        # Reference in the same process (same compiled program): the whole run without interruption.
        ref = runner.init(keys)
        for i in range(chunks):
            ref, m = runner.run(ref, 2)
            save_metrics(f"ref{i}", m)
    else:
        state, done = runner.init(keys), 0
    while done < chunks:
        state, metrics = runner.run(state, 2)
        check_finite(metrics)
        save_metrics(f"chunk{done}", metrics)
        done += 1
        save_checkpoint(ckpt, state, {"done": done})
        print("saved", done, flush=True)
    """
)


def _metrics(directory, prefix, chunks):
    parts = [dict(np.load(directory / f"{prefix}{i}.npz")) for i in range(chunks)]
    return {k: np.concatenate([p[k] for p in parts], axis=-1) for k in parts[0]}


@pytest.mark.expensive
@pytest.mark.timeout(400)
def test_killed_vmapped_run_resumes_bit_identically(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    chunks = 40
    # The first run is SIGKILLed right after its second checkpoint, in the middle of its third chunk.
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(chunks)], stdout=subprocess.PIPE,
                            text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.strip()) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                pytest.fail("no checkpoint within 180 s: vmapped PPO hangs (XLA CPU deadlock?)")
            if line == "saved 2":
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = read_checkpoint(tmp_path / "state.ckpt")[0]["done"]
    assert 2 <= killed_at < chunks, "the kill must land before the run finished"
    try:
        done = subprocess.run([sys.executable, str(script), str(tmp_path), str(chunks)], capture_output=True,
                              text=True, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the resumed vmapped run did not finish in 240 s: XLA CPU deadlock?")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0] == f"resumed {killed_at}"
    resumed = _metrics(tmp_path, "chunk", chunks)
    reference = _metrics(tmp_path, "ref", chunks)
    assert resumed["rollout"].shape == (2, 2 * chunks)
    for name, ref in reference.items():
        np.testing.assert_array_equal(resumed[name], ref, err_msg=name)
