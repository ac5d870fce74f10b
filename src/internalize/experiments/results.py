"""The results table and manifest of an experiment, written so that nothing is lost.

Layout of ``OUT/EXPERIMENT/``:

* ``results.parquet`` — one long table, columns :data:`COLUMNS`; one row per (condition, world, seed, phase, step,
  metric). Written when the experiment completes.
* ``manifest.json`` — the experiment's config (every value it was started with), its identity token, seeds,
  package versions, git commit, timings and status. A directory whose manifest is missing or unreadable while
  units are present is refused: nothing says which configuration those units belong to. A later run resumes the
  directory when the stored config has the same identity (``experiments.identity``: the values that differ from
  their defaults) as its own, as this version reads both, so a setting added since at its default refuses nothing.
* ``units/NAME.parquet`` — the rows of each finished unit of work (a phase of a group of seeds), recorded with the
  configuration's identity. A unit whose file passes its checksum *and* carries this configuration's identity is
  complete and is never recomputed unless forced; one that fails either is deleted and recomputed, with a
  one-line warning. The final table is their concatenation.
* ``checkpoints/`` — training state between chunks, so an interrupted unit resumes where it stopped.

Beside the directory, ``OUT/.EXPERIMENT.lock`` is held (``flock``) by the run writing it, with its PID and host: a
second run is refused at once, before touching the directory; the kernel releases the lock of a run that dies,
even by SIGKILL, and the next run takes it over.

Every file is written atomically (:mod:`internalize.storage`): to a temporary file in the same directory, flushed
and fsynced, then renamed over the target, so a reader (or a resumed run) sees either the old file or the new one,
never half of one. Tables carry a ``NAME.sha256`` beside them and are verified whenever they are read.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.experiments.identity import identity, identity_token, token_version

# The table's schema is defined once, in internalize.schema (shared with internalize.analysis.table);
# re-exported here so that ``from internalize.experiments.results import COLUMNS`` keeps working.
from internalize.schema import COLUMNS, KEY_COLUMNS, PHASES  # noqa: F401 - PHASES is re-exported, as above
from internalize.storage import (
    FILE_MODE,
    CorruptFile,
    read_json_verified,
    read_parquet_verified,
    remove_stray_temporaries,
    remove_verified,
    write_json_verified,
    write_parquet_verified,
)


class RunLocked(ValueError):
    """Another live run holds the output directory's lock."""


#: How a stored config (JSON) is identified: a config class's ``identity_of`` (``Experiment.identity_of``); None =
#: by every value (``experiments.identity.identity`` of the whole config).
Identify = Callable[[Mapping[str, Any]], dict[str, Any]] | None


def config_identity(config: dict[str, Any]) -> str:
    """The token of every value of a configuration, ``config-`` and 16 hex digits of the sha256 of its canonical
    JSON: what directories written before identities had versions carry (version 1)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return "config-" + hashlib.sha256(blob).hexdigest()[:16]


def _as_json(config: Any) -> Any:
    """``config`` as it is stored and read back: JSON (tuples as lists, other values as ``str``)."""
    return json.loads(json.dumps(config, sort_keys=True, default=str))


def _identity(config: Any, identify: Identify) -> dict[str, Any]:
    """The identity of a stored config (JSON): ``identify``'s, or that of every value when it is None."""
    if identify is None:
        return identity(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"config: expected a table, got {config!r}")
    return identify(config)


def rows_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A results DataFrame with the canonical columns and dtypes from an iterable of row dicts."""
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return df.astype({"experiment": str, "condition": str, "world": str, "seed": "int64", "phase": str,
                      "step": "int64", "episode": "float64", "metric": str, "value": "float64"})


def check_table(df: pd.DataFrame) -> None:
    """Raise ValueError if the table lacks columns or has duplicate (condition, world, seed, phase, step, metric)."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"results table: missing columns {missing}; expected {list(COLUMNS)}")
    dup = df.duplicated(list(KEY_COLUMNS))
    if dup.any():
        first = df[dup].iloc[0].to_dict()
        raise ValueError(f"results table: {int(dup.sum())} duplicate rows, e.g. {first}")


def versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in ("internalize", "jax", "jaxlib", "flax", "optax", "numpy", "pandas"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    """The source checkout's commit (with ``-dirty`` if it has local changes), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ResultsStore:
    """Files of one experiment under ``root / name``; see the module docstring for the layout.

    ``warn`` receives a one-line message whenever a stored file fails verification and is set aside.
    """

    def __init__(self, root: Path | str, name: str, warn: Callable[[str], None] = _stderr):
        self.dir = Path(root) / name
        self.name = name
        self.warn = warn
        self.identity: str | None = None  # set by claim(): the configuration every stored unit must carry

    @property
    def table_path(self) -> Path:
        return self.dir / "results.parquet"

    @property
    def manifest_path(self) -> Path:
        return self.dir / "manifest.json"

    def unit_path(self, unit: str) -> Path:
        return self.dir / "units" / f"{unit}.parquet"

    def checkpoint_dir(self, unit: str) -> Path:
        return self.dir / "checkpoints" / unit

    def read_manifest(self) -> dict[str, Any] | None:
        """The verified manifest, None if there is none; :class:`CorruptFile` (naming it) if it fails."""
        if not self.manifest_path.exists():
            return None
        return read_json_verified(self.manifest_path)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        write_json_verified(self.manifest_path, manifest)

    def _has_work(self) -> bool:
        return any(p.is_file() for sub in ("units", "checkpoints") for p in (self.dir / sub).rglob("*"))

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory's lock for the ``with`` block; :class:`RunLocked` at once if a live run holds it.

        ``flock`` on ``OUT/.NAME.lock``: the kernel releases it when its holder exits or is killed, so a lock left by a
        dead run is taken over (and said so); the file keeps the holder's PID and host for the message.
        """
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        path = self.dir.parent / f".{self.name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            # Refused: the holder's PID and host stay in the file (a refused run must not erase them).
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                raise
            raise RunLocked(f"output directory {self.dir} is being written by another run ({holder}); wait "
                            "for it to finish, or choose another --out.") from None
        try:
            left = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            if left:
                self.warn(f"{self.name}: taking over the lock of a run that stopped without releasing it ({left})")
            me = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
            os.ftruncate(fd, 0)
            os.pwrite(fd, me.encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # released cleanly: nothing to take over
            os.close(fd)  # closing the descriptor releases the flock

    def claim(self, config: dict[str, Any], force: bool = False, layout: str = "vmap",
              identify: Identify = None) -> dict[str, Any]:
        """Make sure this directory belongs to ``config``'s experiment; start or continue its manifest.

        Call it holding :meth:`lock`. Sets :attr:`identity`: a new directory's is ``config``'s identity token, an
        existing one keeps the token its files were written with (:meth:`attach`). Removes temporary files an
        interrupted run left. ``layout`` is how the seeds run (``experiments.layout``): recorded in the manifest
        (a manifest without one is ``vmap``), and a directory run with another layout is refused, since the
        layouts' floats differ. ``identify``: how configs are compared (:data:`Identify`).

        Raises:
          ValueError: the directory holds results of a different experiment, of a different configuration (or one
            of another identity version, or one this version cannot read) or of another layout, or units without a
            readable manifest (nothing is written); pass ``force=True`` to start afresh there.
        """
        stored = _as_json(config)
        self.identity = identity_token(_identity(stored, identify))
        stray = remove_stray_temporaries(self.dir) if self.dir.exists() else []
        if stray:
            self.warn(f"{self.name}: removed {len(stray)} temporary file(s) left by an interrupted run")
        try:
            old = self.read_manifest()
        except CorruptFile as err:
            if not force:
                raise ValueError(f"{err}; without it the units in {self.dir} cannot be matched to a configuration: "
                                 "pass --force to recompute them, or choose another --out.") from None
            old = None
        if old is None and not force and self._has_work():
            raise ValueError(f"output directory {self.dir} holds units but no manifest.json, so nothing says which "
                             "configuration they belong to; pass --force to recompute them, or choose another --out.")
        if old is not None and not force:
            if old.get("experiment") != self.name:
                raise ValueError(
                    f"output directory {self.dir} holds results of experiment {old.get('experiment')!r}, not "
                    f"{self.name!r}; choose another --out or pass --force to overwrite."
                )
            self.identity = self._belongs(old, stored, identify)
            if old.get("layout", "vmap") != layout:
                raise ValueError(
                    f"output directory {self.dir} holds results of {self.name!r} run with --layout "
                    f"{old.get('layout', 'vmap')}, not {layout} (their floats differ); rerun with --layout "
                    f"{old.get('layout', 'vmap')}, choose another --out, or pass --force to start afresh."
                )
            return old
        if force and self.dir.exists():
            for sub in ("units", "checkpoints"):
                for p in sorted((self.dir / sub).rglob("*"), reverse=True):
                    p.unlink() if p.is_file() else p.rmdir()
            remove_verified(self.table_path)
        manifest = {
            "experiment": self.name,
            "config": stored,
            "identity": self.identity,
            "layout": layout,
            "versions": versions(),
            "git_commit": git_commit(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
            "timings": {},
        }
        self._write_manifest(manifest)
        return manifest

    def attach(self, config: dict[str, Any], identify: Identify = None) -> None:
        """Set :attr:`identity` to read this directory's files for ``config`` without claiming it (no lock, nothing
        written): the token its manifest records once the stored config is found to be ``config``'s, or
        ``config``'s own token where there is no manifest yet. ``ValueError`` as :meth:`claim`'s."""
        stored = _as_json(config)
        old = self.read_manifest()
        self.identity = identity_token(_identity(stored, identify)) if old is None else \
            self._belongs(old, stored, identify)

    def _belongs(self, old: dict[str, Any], config: dict[str, Any], identify: Identify) -> str:
        """The identity token the files of a directory with manifest ``old`` carry, once its stored config has the
        identity of ``config`` (both as this version reads them); ``ValueError`` (one line) otherwise.

        The stored config is identified again rather than its token compared, so that a default whose value
        changed since is seen; its token is kept, so the units it names stay valid (a directory written before
        identities had versions carries the hash of every value, ``config_identity``).
        """
        token = old.get("identity") or config_identity(old.get("config", {}))
        mine = _identity(config, identify)
        if token_version(token) != mine["version"]:
            raise ValueError(
                f"output directory {self.dir} holds results of {self.name!r} computed under configuration identity "
                f"version {token_version(token)}, and this version of internalize is at version {mine['version']} "
                "(a default's value or meaning changed); choose another --out or pass --force to recompute.")
        try:
            theirs = _identity(old.get("config"), identify)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise ValueError(
                f"output directory {self.dir} holds results of {self.name!r} whose configuration this version of "
                f"internalize cannot read ({str(err).rstrip('.')}); choose another --out or pass --force to start "
                "afresh.") from None
        if theirs != mine:
            raise ValueError(
                f"output directory {self.dir} holds results of {self.name!r} with a different configuration "
                f"(preset, seeds or budgets changed); choose another --out or pass --force to start afresh."
            )
        return str(token)

    def discard(self, path: Path, err: CorruptFile, what: str) -> None:
        """Set a file that failed verification aside (deleted with its checksum) and say so in one line."""
        remove_verified(path)
        self.warn(f"warning: {err}; {what}")

    def unit_done(self, unit: str) -> bool:
        """Whether ``unit``'s rows are stored and verify; a stored file that fails is deleted (recompute it)."""
        path = self.unit_path(unit)
        if not path.exists():
            return False
        try:
            read_parquet_verified(path, self.identity)
        except CorruptFile as err:  # damaged, or stale: computed for another configuration
            self.discard(path, err, f"recomputing unit {unit}")
            return False
        return True

    def read_unit(self, unit: str) -> pd.DataFrame:
        return read_parquet_verified(self.unit_path(unit), self.identity)

    def read_table(self) -> pd.DataFrame:
        return read_parquet_verified(self.table_path, self.identity)

    def write_unit(self, unit: str, df: pd.DataFrame, seconds: float) -> None:
        """Store a finished unit's rows and record its wall time in the manifest."""
        check_table(df)
        write_parquet_verified(self.unit_path(unit), df, self.identity)
        manifest = self.read_manifest() or {}
        manifest.setdefault("timings", {})[unit] = round(seconds, 3)
        self._write_manifest(manifest)

    def finish(self, units: list[str], frames: list[pd.DataFrame] | None = None,
               extra: dict[str, Any] | None = None) -> pd.DataFrame:
        """Concatenate the units' rows (or the given ``frames``) into ``results.parquet`` and mark the manifest
        complete; ``extra``: more manifest fields (a per-core run's summed timings and wall time)."""
        frames = [self.read_unit(u) for u in units] if frames is None else frames
        df = pd.concat(frames, ignore_index=True) if frames else rows_frame([])
        check_table(df)
        df = df.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
        write_parquet_verified(self.table_path, df, self.identity)
        manifest = (self.read_manifest() or {}) | (extra or {})
        manifest["status"] = "complete"
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self._write_manifest(manifest)
        return df

    def is_complete(self) -> bool:
        """Whether the experiment finished and its table verifies (a table that fails is deleted: it is rebuilt
        from the verified units, recomputing any that fail too)."""
        m = self.read_manifest()
        if not (m and m.get("status") == "complete" and self.table_path.exists()):
            return False
        try:
            self.read_table()
        except CorruptFile as err:
            self.discard(self.table_path, err, "rebuilding it from the units")
            return False
        return True
