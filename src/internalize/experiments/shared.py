"""Units shared by the experiments of one output directory: identical work is done once.

Several of the paper's experiments begin the same way: Figures 4b and 5 socialize the same seeds on the same
1-block world with the same learner and train the same ISR on the result; Figures 1b/4a and 3 share their
3-block socialization and their full-data ISR. A finished ``socialization`` or ``isr`` unit is published under
``OUT/.shared/<unit>-<key>/`` (its final checkpoint and its rows), where ``key`` is a hash of everything the unit's
numbers depend on, each config by its identity (``experiments.identity``: a setting added later at its default
keeps the key); another experiment whose unit has the same key takes it instead of recomputing it, and an entry a
version before identity versions published under the hash of every value is found too (:func:`legacy_unit_key`).
Checkpoints are hard links (``storage.atomic_link``): one file on disk however many experiments use it. The
programs are deterministic on CPU, so the copy holds exactly the numbers a recomputation would give; only the
``experiment`` label (and, for socialization, the conditions its rows are listed under) are the new
experiment's. ``--force`` recomputes and republishes. Each entry has a lock held around fetch-or-compute-and-
publish, so runs needing the same unit at once compute it once.

A socialization also continues a shorter one of the same run (:func:`prefix_key`, :meth:`SharedUnits.longest_prefix`):
the learner that leaves its caregiver after n steps and one that stays for m > n share their first n steps, so
the longer unit starts from the shorter one's final state (its buffer widened to the longer phase) as from a resume
checkpoint, and computes only the rest (``experiments.runner``): the numbers are those of a run from scratch.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from internalize.agents.checkpoint import CheckpointError, verify_checkpoint
from internalize.experiments import phases
from internalize.experiments.identity import IDENTITY_VERSION, identity_fields, legacy_asdict
from internalize.experiments.results import ResultsStore
from internalize.experiments.spec import Experiment
from internalize.storage import CorruptFile, atomic_link, read_parquet_verified, write_parquet_verified

SHARED_DIR = ".shared"
# Bumped when what a unit computes changes, so old entries are never reused (4: the ISR buffer keeps the true R_s).
VERSION = 4


def _inputs(exp: Experiment, unit: str, form: Callable[[Any], Any]) -> dict[str, Any] | None:
    """What ``unit`` (``socialization`` or ``isr``) of ``exp`` computes from, each config in ``form``; None if a
    config has no such form."""
    configs = {"world": exp.socialization_world, "learner": exp.learner, "utility": exp.utility}
    if unit == "isr":
        # The config the full-data ISR trains with (``phases.isr_config``): what the experiment does with other ISRs
        # (Figure 3b's data sizes, the isr-sizes unit) is not in it.
        configs["isr"] = phases.isr_config(exp)
    elif unit != "socialization":
        raise ValueError(f"unit: only socialization and isr units are shared, got {unit!r}.")
    several = isinstance(exp.caregiver, tuple)
    forms = {name: form(config) for name, config in configs.items()}
    caregivers = [form(c) for c in (exp.caregiver if several else (exp.caregiver,))]
    if any(f is None for f in [*forms.values(), *caregivers]):
        return None
    return {"version": VERSION, "unit": unit, **forms, "steps": exp.socialization_steps, "seeds": list(exp.seeds),
            "chunk_rollouts": exp.chunk_rollouts, "caregiver": caregivers if several else caregivers[0]}


def _hash(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:16]


def unit_key(exp: Experiment, unit: str) -> str:
    """Hash of the inputs of ``unit`` (``socialization`` or ``isr``) of ``exp``; equal keys, equal numbers. Each
    config counts by its identity (the values that differ from their defaults) and the identity version."""
    return _hash({**_inputs(exp, unit, identity_fields), "identity_version": IDENTITY_VERSION})


def prefix_key(exp: Experiment) -> str:
    """Hash of what ``exp``'s socialization computes from, but its length: two socializations with the same prefix
    key are one run stopped at two points (the shorter is the longer one's first rollouts)."""
    inputs = {**_inputs(exp, "socialization", identity_fields), "identity_version": IDENTITY_VERSION}
    inputs.pop("steps")
    return _hash(inputs)


def legacy_unit_key(exp: Experiment, unit: str) -> str | None:
    """The key a version before identity versions gave ``unit`` (every config's ``dataclasses.asdict``, with the
    fields the classes had then: ``identity.V1_FIELDS``); None if ``exp`` sets a field added since, which no unit
    of that version can be for. Only found while :data:`VERSION` and the identity version are what they were."""
    inputs = _inputs(exp, unit, legacy_asdict)
    return None if inputs is None or IDENTITY_VERSION != 1 else _hash(inputs)


class SharedUnits:
    """The ``OUT/.shared`` cache of finished units (see the module docstring)."""

    def __init__(self, root: str | Path, *, enabled: bool = True):
        self.root = Path(root) / SHARED_DIR
        self.enabled = enabled

    def _entry(self, exp: Experiment, unit: str) -> Path:
        return self.root / f"{unit}-{unit_key(exp, unit)}"

    def _found(self, exp: Experiment, unit: str) -> Path:
        """Where ``unit`` of ``exp`` is published: under its key, or else under the key an older version gave it."""
        entry = self._entry(exp, unit)
        legacy = None if entry.exists() else legacy_unit_key(exp, unit)
        older = None if legacy is None else self.root / f"{unit}-{legacy}"
        return older if older is not None and older.exists() else entry

    @contextlib.contextmanager
    def lock(self, exp: Experiment, unit: str) -> Iterator[None]:
        """Hold ``unit`` of ``exp``'s entry for fetch-or-compute-and-publish (blocking ``flock`` on
        ``OUT/.shared/.<unit>-<key>.lock``; the kernel releases it when its holder dies)."""
        if not self.enabled:
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f".{self._entry(exp, unit).name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def fetch(self, exp: Experiment, unit: str, store: ResultsStore,
              relabel: Callable[[pd.DataFrame], pd.DataFrame]) -> bool:
        """Copy a published ``unit`` into ``store`` (rows through ``relabel``); False if there is none."""
        entry = self._found(exp, unit)
        ckpt, rows = entry / "final.ckpt", entry / "rows.parquet"
        if not (self.enabled and ckpt.exists() and rows.exists()) or store.unit_done(unit):
            return False
        try:  # nothing corrupt is copied out of the shared folder: a damaged entry is deleted and recomputed
            verify_checkpoint(ckpt)
            df = read_parquet_verified(rows)
        except (CheckpointError, CorruptFile) as err:
            shutil.rmtree(entry, ignore_errors=True)
            store.warn(f"warning: shared {unit} {entry}: {err}; deleted, computing the unit instead")
            return False
        # The checkpoint first: a unit counts as done only once its rows are written, which comes last.
        atomic_link(ckpt, store.checkpoint_dir(unit) / "final.ckpt")
        store.write_unit(unit, relabel(df), 0.0)
        return True

    def publish(self, exp: Experiment, unit: str, store: ResultsStore, rows: pd.DataFrame) -> None:
        """Publish ``store``'s finished ``unit`` with its experiment-independent ``rows``."""
        if not self.enabled:
            return
        entry = self._entry(exp, unit)
        source = store.checkpoint_dir(unit) / "final.ckpt"
        verify_checkpoint(source)  # nothing corrupt is copied into the shared folder (raises CheckpointError)
        entry.mkdir(parents=True, exist_ok=True)
        atomic_link(source, entry / "final.ckpt")
        write_parquet_verified(entry / "rows.parquet", rows)
        if unit == "socialization":  # what a longer socialization of the same run looks for to continue it
            write_parquet_verified(entry / "prefix.parquet", pd.DataFrame(
                {"prefix": [prefix_key(exp)], "steps": [exp.socialization_steps]}))

    def longest_prefix(self, exp: Experiment) -> tuple[Path, int] | None:
        """The published socialization that ``exp``'s begins with: same prefix key, fewer steps, whole rollouts;
        the longest of them, as (entry, its steps); None if there is none (or sharing is off)."""
        if not (self.enabled and self.root.is_dir()):
            return None
        key, best = prefix_key(exp), None
        rollout = exp.learner.rollout_steps
        for entry in self.root.glob("socialization-*"):
            try:
                info = read_parquet_verified(entry / "prefix.parquet")
            except (CorruptFile, OSError):
                continue  # an entry without a (sound) prefix record is simply not a prefix
            steps = int(info["steps"].iloc[0])
            if (info["prefix"].iloc[0] == key and steps < exp.socialization_steps and steps % rollout == 0
                    and (entry / "final.ckpt").exists() and (best is None or steps > best[1])):
                best = (entry, steps)
        return best
