"""Files the runner writes and later trusts: atomic writes, readable modes, and a checksum verified on every read.

* :func:`atomic_write_bytes` writes to a temporary file in the target's directory, fsyncs it and renames it over
  the target, so a reader sees the old file or the new one, never half of one. The file gets the mode a plain
  ``open()`` would give it (0666 minus the umask: 0644 by default), not ``mkstemp``'s private 0600, so a
  collaborator can read a shared results folder.
* :func:`write_verified` also writes ``NAME.sha256`` beside the file: its sha256 and size in bytes.
  :func:`read_verified` returns the bytes only if they match, and raises :class:`CorruptFile` (one line, naming
  the file) otherwise — a flipped bit, a truncated or hand-edited file, or a file without its checksum is never
  used. The data is written before its checksum, so a crash in between leaves a pair that fails verification
  (recomputed), never one that passes with the wrong contents.
* :func:`read_parquet_verified` / :func:`write_parquet_verified` do the same for DataFrames.

This module imports nothing from the rest of the package: the runner, the checkpoints and the analysis layer all
read and write through it.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pandas as pd

__all__ = ["CorruptFile", "FILE_MODE", "CHECKSUM_SUFFIX", "checksum_path", "atomic_write_bytes", "write_verified",
           "read_verified", "remove_verified", "write_parquet_verified", "read_parquet_verified"]

CHECKSUM_SUFFIX = ".sha256"


def _file_mode() -> int:
    # os.umask can only be read by setting it; done once, at import, before any thread of ours writes a file.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE: int = _file_mode()


class CorruptFile(ValueError):
    """A stored file that fails verification: missing checksum, checksum or size mismatch, or unreadable."""


def checksum_path(path: str | os.PathLike) -> Path:
    """``NAME.sha256`` beside ``path``."""
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + fsync + rename), mode
    :data:`FILE_MODE`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_verified(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` atomically, then its checksum file (sha256 and size)."""
    atomic_write_bytes(path, data)
    atomic_write_bytes(checksum_path(path), f"{hashlib.sha256(data).hexdigest()} {len(data)}\n".encode())


def read_verified(path: str | os.PathLike) -> bytes:
    """The bytes of ``path`` if they match its checksum file; :class:`CorruptFile` otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CorruptFile(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        digest, size = checksum_path(path).read_text(encoding="ascii").split()
        size_ok = int(size) == len(data)
    except FileNotFoundError:
        raise CorruptFile(f"{path}: no checksum file {checksum_path(path).name}, so it cannot be verified") from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise CorruptFile(f"{path}: its checksum file {checksum_path(path).name} is unreadable") from None
    if not size_ok:
        raise CorruptFile(f"{path}: {len(data)} bytes, but {size} were written (truncated or changed)")
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise CorruptFile(f"{path}: sha256 {actual[:12]}… does not match the {digest[:12]}… it was written with "
                          "(the file changed on disk)")
    return data


def remove_verified(path: str | os.PathLike) -> None:
    """Delete ``path`` and its checksum file (either may be missing)."""
    Path(path).unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def write_parquet_verified(path: str | os.PathLike, df: pd.DataFrame) -> None:
    """Write ``df`` as Parquet, atomically and with its checksum file."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    write_verified(path, buf.getvalue())


def read_parquet_verified(path: str | os.PathLike) -> pd.DataFrame:
    """A Parquet file written by :func:`write_parquet_verified`, verified first; :class:`CorruptFile` if it fails."""
    data = read_verified(path)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as err:  # noqa: BLE001 — any decoding failure of verified bytes is a corrupt file too
        raise CorruptFile(f"{path}: not a readable Parquet table ({type(err).__name__})") from None
