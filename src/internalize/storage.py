"""Files the runner writes and later trusts: atomic writes, readable modes, and a checksum verified on every read.

* :func:`atomic_write_bytes` (and :func:`atomic_writer`, for contents written piece by piece) writes to a temporary
  file in the target's directory, fsyncs it and renames it over the target, so a reader sees the old file or the
  new one, never half of one. The file gets the mode a plain ``open()`` would give it (0666 minus the umask: 0644
  by default), not ``mkstemp``'s private 0600, so a collaborator can read a shared results folder.
* :func:`write_verified` also writes ``NAME.sha256`` beside the file: its sha256 and size in bytes.
  :func:`read_verified` returns the bytes only if they match, and raises :class:`CorruptFile` (one line, naming
  the file) otherwise — a flipped bit, a truncated or hand-edited file, or a file without its checksum is never
  used. The data is written before its checksum, so a crash in between leaves a pair that fails verification
  (recomputed), never one that passes with the wrong contents.
* :func:`read_parquet_verified` / :func:`write_parquet_verified` do the same for DataFrames.
* An *identity* (e.g. the hash of the configuration a result was computed for) may be recorded beside the
  checksum; a read that asks for another identity raises :class:`StaleFile`: the file is intact but belongs to
  other work, and is never reused for this one.

This module imports nothing from the rest of the package: the runner, the checkpoints and the analysis layer all
read and write through it. The worlds do too (the prosocial layout bank, the renderer), so pandas is imported only
when a Parquet function runs: stepping a world needs NumPy, JAX and Gymnasium, nothing more (the Stable-Baselines3
benchmark drives our Gymnasium adapter from an environment without pandas).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CorruptFile", "StaleFile", "WriteFailed", "FILE_MODE", "CHECKSUM_SUFFIX", "checksum_path",
           "atomic_writer", "atomic_write_bytes", "atomic_link", "write_verified", "read_verified",
           "remove_verified", "write_parquet_verified", "read_parquet_verified", "write_json_verified",
           "read_json_verified", "remove_stray_temporaries"]

CHECKSUM_SUFFIX = ".sha256"


def _file_mode() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread of ours writes a file.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE: int = _file_mode()


class CorruptFile(ValueError):
    """A stored file that fails verification: missing checksum, checksum or size mismatch, or unreadable."""


class WriteFailed(OSError, ValueError):
    """A file could not be written (a full disk, a read-only folder); the previous version, if any, is intact.

    An OSError, and a ValueError so that the command line reports it as one line (exit 2), like bad input."""

    def __str__(self) -> str:
        return str(self.strerror)


class StaleFile(CorruptFile):
    """An intact stored file recorded for another identity (another configuration): never reused."""


def checksum_path(path: str | os.PathLike) -> Path:
    """``NAME.sha256`` beside ``path``."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, *, of: str | os.PathLike | None = None) -> Iterator[BinaryIO]:
    """A binary file whose contents replace ``path`` atomically when the block ends without an error (temporary
    file in the same directory + fsync + rename), mode :data:`FILE_MODE`; on an error nothing is replaced and the
    temporary file is removed. For contents too large to assemble in memory first (a checkpoint holding a whole
    socialization). ``of``: the file an error names, when ``path`` is a part of it (its checksum file)."""
    path = Path(path)
    named = path if of is None else Path(of)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not isinstance(err, WriteFailed):
            kept = "the previous version is kept" if named.exists() else "nothing was written"
            raise WriteFailed(err.errno, f"{named}: cannot be written ({err.strerror or err}); {kept}") from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, of: str | os.PathLike | None = None) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_writer`)."""
    with atomic_writer(path, of=of) as f:
        f.write(data)


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> None:
    """Make ``path`` the same file as ``source`` atomically: a hard link (no second copy on disk) put in place by
    a rename, or, where the two cannot share an inode (another file system), an atomic copy.

    Safe because stored files are never changed in place: every write replaces the file by a new one, so
    rewriting one name never alters the other.
    """
    source, path = Path(source), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.link.tmp"
    try:
        tmp.unlink(missing_ok=True)
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write_bytes(path, source.read_bytes())


def write_verified(path: str | os.PathLike, data: bytes, identity: str | None = None) -> None:
    """Write ``data`` atomically with its checksum file (sha256, size and the optional ``identity``, a token
    without spaces), so that a process killed at any instant leaves a pair that verifies.

    The two files cannot be replaced in one step, so the checksum file first lists the new record *and* the
    current file's, then the data is replaced, then the checksum file keeps the new record alone: whichever
    version of the data is on disk when the writer dies, a record in its checksum file matches it.
    """
    if identity is not None and (not identity or any(c.isspace() for c in identity)):
        raise ValueError(f"identity: got {identity!r}; allowed: a non-empty token without spaces.")
    record = f"{hashlib.sha256(data).hexdigest()} {len(data)}" + (f" {identity}" if identity else "")
    sidecar = checksum_path(path)
    try:
        current = _matching_record(Path(path).read_bytes(), _records(sidecar))
    except (OSError, ValueError, UnicodeDecodeError):
        current = None  # no previous version that verifies: nothing to keep valid meanwhile
    keep = current is not None and current != record
    atomic_write_bytes(sidecar, f"{record}\n{current}\n".encode() if keep else f"{record}\n".encode(), of=path)
    atomic_write_bytes(path, data)
    if keep:
        atomic_write_bytes(sidecar, f"{record}\n".encode(), of=path)


def _records(sidecar: Path) -> list[str]:
    """The checksum records (one per line) of a checksum file; ValueError if one is malformed."""
    lines = [line.strip() for line in sidecar.read_text(encoding="ascii").splitlines() if line.strip()]
    for line in lines:
        parts = line.split()
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(line)
    if not lines:
        raise ValueError("empty")
    return lines


def _matching_record(data: bytes, records: list[str]) -> str | None:
    """The record ``data`` verifies against (sha256 and size), or None."""
    digest, size = hashlib.sha256(data).hexdigest(), len(data)
    for line in records:
        parts = line.split()
        if parts[0] == digest and int(parts[1]) == size:
            return line
    return None


def read_verified(path: str | os.PathLike, identity: str | None = None) -> bytes:
    """The bytes of ``path`` if they match its checksum file; :class:`CorruptFile` otherwise, and
    :class:`StaleFile` if ``identity`` is given and the file was written with another (or none)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CorruptFile(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        records = _records(checksum_path(path))
    except FileNotFoundError:
        raise CorruptFile(f"{path}: no checksum file {checksum_path(path).name}, so it cannot be verified") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise CorruptFile(f"{path}: its checksum file {checksum_path(path).name} is unreadable") from None
    match = _matching_record(data, records)
    if match is None:
        digest, size = records[0].split()[:2]
        if int(size) != len(data):
            raise CorruptFile(f"{path}: {len(data)} bytes, but {size} were written (truncated or changed)")
        actual = hashlib.sha256(data).hexdigest()
        raise CorruptFile(f"{path}: sha256 {actual[:12]}… does not match the {digest[:12]}… it was written with "
                          "(the file changed on disk)")
    recorded = match.split()[2:]
    if identity is not None and recorded != [identity]:
        was = recorded[0] if recorded else "none recorded"
        raise StaleFile(f"{path}: written for another configuration ({was}; this run's is {identity})")
    return data


def remove_stray_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left under ``folder`` (``.NAME.*.tmp``); returns
    them. Call it only while no other process writes there (the output directory's lock is held)."""
    stray = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()]
    for p in stray:
        p.unlink(missing_ok=True)
    return stray


def remove_verified(path: str | os.PathLike) -> None:
    """Delete ``path`` and its checksum file (either may be missing)."""
    Path(path).unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def write_parquet_verified(path: str | os.PathLike, df: pd.DataFrame, identity: str | None = None) -> None:
    """Write ``df`` as Parquet, atomically and with its checksum file (and ``identity``)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_verified(path, buf.getvalue(), identity)


def read_parquet_verified(path: str | os.PathLike, identity: str | None = None) -> pd.DataFrame:
    """A Parquet file written by :func:`write_parquet_verified`, verified first; :class:`CorruptFile` if it fails
    (:class:`StaleFile` if it was written for another ``identity``)."""
    import pandas as pd  # here, not at the top: a world imports this module and must not need pandas

    data = read_verified(path, identity)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 — any decoding failure of verified bytes is a corrupt file too
        raise CorruptFile(f"{path}: not a readable Parquet table ({type(err).__name__})") from None


def write_json_verified(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (keys sorted), atomically and with its checksum file."""
    write_verified(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def read_json_verified(path: str | os.PathLike) -> Any:
    """A JSON file written by :func:`write_json_verified`, verified first; :class:`CorruptFile` if it fails."""
    data = read_verified(path)
    try:
        return json.loads(data)
    except ValueError as err:
        raise CorruptFile(f"{path}: not readable JSON ({err})") from None
