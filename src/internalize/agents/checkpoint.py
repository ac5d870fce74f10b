"""Checkpoints of any pytree of arrays (a TrainState, one seed or a vmapped batch), written atomically.

File layout (one file)::

    b"INTERNALIZE-CHECKPOINT 1\\n"
    64 hex digits: sha256 of everything after this line, then b"\\n"
    8 bytes little-endian: length H of the header
    H bytes: JSON header {"meta": ..., "leaves": [{"path", "shape", "dtype", "key_impl"}, ...]}
    the payload: a NumPy ``.npz`` with one array per leaf, ``leaf_00000``, ``leaf_00001``, ...

The payload is deflated when ``compress=True`` (a finished unit's checkpoint, kept after the run: the
socialization's stored observations are small integer codes and shrink more than 10x) and stored as is otherwise
(the partial checkpoints written every few seconds of a unit in progress, where the time matters more). Both
kinds read the same way. Deflate runs at level ``DEFLATE_LEVEL`` = 3, not NumPy's ``savez_compressed`` default 6:
measured on the quick Figure 4a's socialization (10 seeds, 332 MB of arrays), level 6 took 3.8 s for 19.4 MB and
level 3 1.4 s for 24.1 MB.

Leaves are stored bit-exactly (typed PRNG keys as their raw ``key_data``), so a run resumed from a
checkpoint continues bit-identically on the same machine. The file is written to a temporary file in the
same directory, flushed and fsynced, then moved into place with ``os.replace``: a crash leaves either the old
file or the new one, never a torn one. A damaged file fails the checksum and raises
:class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from internalize.storage import atomic_write_bytes

MAGIC = b"INTERNALIZE-CHECKPOINT 1\n"
DEFLATE_LEVEL = 3  # zlib level of compressed checkpoints (see the module docstring)


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, or does not match the state it is loaded into."""


def _leaves(tree: Any) -> tuple[list[str], list[Any]]:
    with_path, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in with_path], [leaf for _, leaf in with_path]


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def save_checkpoint(path: str | os.PathLike, train_state: Any, meta: dict | None = None, *,
                    compress: bool = False) -> Path:
    """Write every leaf of ``train_state`` and the JSON-serialisable ``meta`` to ``path`` atomically; ``compress``:
    deflate the arrays (see the module docstring).

    Returns the path written. Raises ``ValueError`` if ``meta`` is not JSON-serialisable.
    """
    path = Path(path)
    names, leaves = _leaves(train_state)
    arrays, records = {}, []
    for i, (name, leaf) in enumerate(zip(names, leaves)):
        key_impl = None
        if _is_key(leaf):
            key_impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        arrays[f"leaf_{i:05d}"] = array
        records.append({"path": name, "shape": list(array.shape), "dtype": array.dtype.str, "key_impl": key_impl})
    try:
        header = json.dumps({"meta": meta or {}, "leaves": records}).encode()
    except TypeError as err:
        raise ValueError(f"meta: must be JSON-serialisable, got {meta!r} ({err}).") from err
    payload = io.BytesIO()
    if compress:
        # The layout np.savez_compressed writes (one ``NAME.npy`` member per array), at a faster deflate level.
        with zipfile.ZipFile(payload, "w", zipfile.ZIP_DEFLATED, compresslevel=DEFLATE_LEVEL) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    else:
        np.savez(payload, **arrays)
    body = len(header).to_bytes(8, "little") + header + payload.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()

    atomic_write_bytes(path, MAGIC + digest + b"\n" + body)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, list[dict], list[np.ndarray]]:
    """Verify and read a checkpoint: ``(meta, leaf records, arrays)``. Raises :class:`CheckpointError`."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({err}).") from err
    head = len(MAGIC)
    if not blob.startswith(MAGIC) or len(blob) < head + 65 + 8 or blob[head + 64: head + 65] != b"\n":
        raise CheckpointError(f"checkpoint {path}: not an internalize checkpoint or truncated header.")
    stored = blob[head: head + 64].decode("ascii", errors="replace")
    body = blob[head + 65:]
    actual = hashlib.sha256(body).hexdigest()
    if stored != actual:
        raise CheckpointError(
            f"checkpoint {path}: corrupt (sha256 of the contents is {actual}, the file says {stored})."
        )
    size = int.from_bytes(body[:8], "little")
    header = json.loads(body[8: 8 + size].decode())
    with np.load(io.BytesIO(body[8 + size:]), allow_pickle=False) as npz:
        arrays = [npz[f"leaf_{i:05d}"] for i in range(len(header["leaves"]))]
    return header["meta"], header["leaves"], arrays


def load_checkpoint(path: str | os.PathLike, template: Any) -> tuple[Any, dict]:
    """Load a checkpoint into the structure of ``template`` (e.g. a fresh ``init`` or its ``jax.eval_shape``).

    Returns ``(train_state, meta)``. Raises :class:`CheckpointError` if the file is damaged or its leaves
    (paths, shapes, dtypes) differ from the template's.
    """
    meta, records, arrays = read_checkpoint(path)
    names, leaves = _leaves(template)
    treedef = jax.tree_util.tree_structure(template)
    if [r["path"] for r in records] != names:
        missing = sorted(set(names) - {r["path"] for r in records})
        extra = sorted({r["path"] for r in records} - set(names))
        raise CheckpointError(
            f"checkpoint {path}: its state has a different structure (missing {missing[:5]}, extra {extra[:5]})."
        )
    out = []
    for record, array, leaf in zip(records, arrays, leaves):
        is_key = _is_key(leaf)
        want = jax.eval_shape(jax.random.key_data, leaf) if is_key else jax.eval_shape(jnp.asarray, leaf)
        mismatch = array.shape != tuple(want.shape) or array.dtype != np.dtype(want.dtype)
        if mismatch or is_key != bool(record["key_impl"]):
            kind = lambda key: " PRNG key data" if key else ""  # noqa: E731
            raise CheckpointError(
                f"checkpoint {path}: leaf {record['path']} is {array.dtype}{list(array.shape)}"
                f"{kind(record['key_impl'])}, the template wants {np.dtype(want.dtype)}{list(want.shape)}"
                f"{kind(is_key)}."
            )
        out.append(jax.random.wrap_key_data(array, impl=record["key_impl"]) if is_key else jnp.asarray(array))
    return jax.tree_util.tree_unflatten(treedef, out), meta
