"""Checkpoints of any pytree of arrays (a TrainState, one seed or a vmapped batch), written atomically.

File layout (one file)::

    b"INTERNALIZE-CHECKPOINT 1\\n"
    64 hex digits: sha256 of everything after this line, then b"\\n"
    8 bytes little-endian: length H of the header
    H bytes: JSON header {"meta": ..., "leaves": [{"path", "shape", "dtype", "key_impl"}, ...]}
    the payload: a NumPy ``.npz`` with one array per leaf, ``leaf_00000``, ``leaf_00001``, ...

The payload is deflated when ``compress=True`` (a finished unit's checkpoint, kept after the run: the
socialization's stored observations are small integer codes and shrink more than 10x). ``compress="integers"``
deflates only the integer and boolean arrays, for the partial checkpoints written every half minute of a unit in
progress, where the time matters more: the quick Figure 7's socialization buffer (1.1 GB of uint8 codes) deflates
to 46 MB in 2.9 s where writing it raw took 3.4-7.3 s, while 18 MB of float parameters take 0.47 s to deflate and
0.03 s to store (2-core CPU). All kinds read the same way. Deflate runs at level ``DEFLATE_LEVEL`` = 3, not
NumPy's ``savez_compressed`` default 6: measured on the quick Figure 4a's socialization (10 seeds, 332 MB of
arrays), level 6 took 3.8 s for 19.4 MB and level 3 1.4 s for 24.1 MB.

Leaves are stored bit-exactly (typed PRNG keys as their raw ``key_data``), so a run resumed from a
checkpoint continues bit-identically on the same machine. The file is written to a temporary file in the
same directory, flushed and fsynced, then moved into place with ``os.replace``: a crash leaves either the old
file or the new one, never a torn one. A damaged file fails the checksum and raises
:class:`CheckpointError` naming the file.

The body is streamed: written to the file piece by piece while it is hashed (the digest is filled in last), and
hashed in chunks when read, never assembled in memory. Assembled in memory first (three whole copies, on a
machine where fresh memory is slow), a quick Figure 7 socialization's partial checkpoint of 1.1 GB took 10-17 s
to write; streamed, 2-8 s.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import jax
import jax.numpy as jnp
import numpy as np

from internalize.storage import atomic_writer

MAGIC = b"INTERNALIZE-CHECKPOINT 1\n"
DEFLATE_LEVEL = 3  # zlib level of compressed checkpoints (see the module docstring)
COMPRESS = (False, True, "integers")  # save_checkpoint's compress values
_READ_CHUNK = 16 * 2**20  # bytes hashed at a time when a checkpoint is verified


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, or does not match the state it is loaded into."""


def _leaves(tree: Any) -> tuple[list[str], list[Any]]:
    with_path, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [jax.tree_util.keystr(p) for p, _ in with_path], [leaf for _, leaf in with_path]


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


class _HashingWriter:
    """A write-only stream into ``file`` that hashes what passes through it: the checkpoint's body is written
    once, piece by piece, instead of being assembled in memory (a socialization's buffer is a gigabyte, and
    every copy of it costs seconds). No ``seek``: ``zipfile`` then writes each member in one pass."""

    def __init__(self, file: BinaryIO):
        self._file, self._sha, self._written = file, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self._sha.update(data)
        self._file.write(data)
        n = memoryview(data).nbytes
        self._written += n
        return n

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        self._file.flush()

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def save_checkpoint(path: str | os.PathLike, train_state: Any, meta: dict | None = None, *,
                    compress: bool | str = False) -> Path:
    """Write every leaf of ``train_state`` and the JSON-serialisable ``meta`` to ``path`` atomically.

    ``compress``: ``True`` deflates every array, ``"integers"`` only the integer and boolean ones, ``False`` none
    (see the module docstring). Returns the path written. Raises ``ValueError`` if ``meta`` is not
    JSON-serialisable or ``compress`` is not one of these.
    """
    if compress not in COMPRESS:
        raise ValueError(f"compress: got {compress!r}; allowed: False | True | 'integers'.")
    compress = compress if compress == "integers" else bool(compress)
    path = Path(path)
    names, leaves = _leaves(train_state)
    arrays, records = {}, []
    for i, (name, leaf) in enumerate(zip(names, leaves, strict=True)):
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
    with atomic_writer(path) as file:
        file.write(MAGIC + b"0" * 64 + b"\n")  # the digest's place, filled in once the body is written
        body = _HashingWriter(file)
        body.write(len(header).to_bytes(8, "little") + header)
        # The layout np.savez writes (one ``NAME.npy`` member per array), deflated at a faster level if asked.
        with zipfile.ZipFile(body, "w", compresslevel=DEFLATE_LEVEL) as archive:
            for name, array in arrays.items():
                deflate = compress is True or (compress == "integers" and array.dtype.kind in "biu")
                archive.compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED  # this member's
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        file.seek(len(MAGIC))
        file.write(body.hexdigest().encode())
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


def _verified(path: Path) -> BinaryIO:
    """``path`` opened and its checksum verified (read in chunks, never whole into memory), positioned after the
    digest line; :class:`CheckpointError` if it cannot be read, is not a checkpoint, or fails the checksum."""
    try:
        file = open(path, "rb")  # noqa: SIM115 - handed to the caller
    except OSError as err:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({err}).") from err
    try:
        head = len(MAGIC)
        first = file.read(head + 65)
        if not first.startswith(MAGIC) or len(first) < head + 65 or first[head + 64:] != b"\n":
            raise CheckpointError(f"checkpoint {path}: not an internalize checkpoint or truncated header.")
        stored = first[head: head + 64].decode("ascii", errors="replace")
        sha, chunk, size = hashlib.sha256(), bytearray(_READ_CHUNK), 0
        view = memoryview(chunk)
        while n := file.readinto(chunk):
            sha.update(view[:n])
            size += n
        actual = sha.hexdigest()
        if size < 8:
            raise CheckpointError(f"checkpoint {path}: not an internalize checkpoint or truncated header.")
        if stored != actual:
            raise CheckpointError(
                f"checkpoint {path}: corrupt (sha256 of the contents is {actual}, the file says {stored})."
            )
        file.seek(head + 65)
        return file
    except BaseException:
        file.close()
        raise


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Check a checkpoint's checksum without loading its arrays; :class:`CheckpointError` if it fails."""
    _verified(Path(path)).close()


def read_checkpoint(path: str | os.PathLike) -> tuple[dict, list[dict], list[np.ndarray]]:
    """Verify and read a checkpoint: ``(meta, leaf records, arrays)``. Raises :class:`CheckpointError`."""
    path = Path(path)
    with _verified(path) as file:
        try:
            size = int.from_bytes(file.read(8), "little")
            header = json.loads(file.read(size).decode())
            # The payload is a zip archive after the header; zipfile reads it in place (as data prepended to it).
            with np.load(file, allow_pickle=False) as npz:
                arrays = [npz[f"leaf_{i:05d}"] for i in range(len(header["leaves"]))]
        except (ValueError, KeyError, OSError, EOFError, zipfile.BadZipFile) as err:
            raise CheckpointError(f"checkpoint {path}: its checksum holds but it cannot be parsed ({err}).") from err
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
    for record, array, leaf in zip(records, arrays, leaves, strict=True):
        is_key = _is_key(leaf)
        want = jax.eval_shape(jax.random.key_data, leaf) if is_key else jax.eval_shape(jnp.asarray, leaf)
        mismatch = array.shape != tuple(want.shape) or array.dtype != np.dtype(want.dtype)
        if mismatch or is_key != bool(record["key_impl"]):
            def kind(key: object) -> str:
                return " PRNG key data" if key else ""

            raise CheckpointError(
                f"checkpoint {path}: leaf {record['path']} is {array.dtype}{list(array.shape)}"
                f"{kind(record['key_impl'])}, the template wants {np.dtype(want.dtype)}{list(want.shape)}"
                f"{kind(is_key)}."
            )
        out.append(jax.random.wrap_key_data(array, impl=record["key_impl"]) if is_key else jnp.asarray(array))
    return jax.tree_util.tree_unflatten(treedef, out), meta
