"""Free the disk a finished run no longer needs: ``internalize clean OUT``.

What an experiment keeps on disk falls in two kinds:

* **results**: ``results.parquet``, ``manifest.json``, the unit tables ``units/*.parquet`` (small; the results table
  can be rebuilt from them), and, under ``OUT``, the report and its figures;
* **work in progress**: ``checkpoints/`` (training states, the socialization buffers, the trained ISRs: what a
  resume, a later unit or a shared unit needs), ``OUT/.shared/`` (finished units other experiments may reuse) and
  ``OUT/.per-core/xla-cache/`` (programs per-core workers compiled, when not given a compilation cache).

:func:`clean` removes the second kind from every *complete* experiment (its manifest says so and its table
verifies), holding each experiment's lock, and leaves an unfinished one untouched: its checkpoints are what lets it
resume (and the shared units of its output directory stay too, for it to reuse). A cleaned experiment reruns as
"complete, skipped"; with ``--force`` it recomputes. A directory a run is writing is refused, not cleaned.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from internalize.experiments.layout import PER_CORE_DIR
from internalize.experiments.results import ResultsStore
from internalize.experiments.shared import SHARED_DIR
from internalize.storage import CorruptFile


class Cleaned(NamedTuple):
    """What :func:`clean` did: experiments cleaned, experiments kept (unfinished), bytes freed."""

    cleaned: list[str]
    kept: list[str]
    freed: int


def _size(path: Path) -> int:
    """Bytes of the files under ``path`` that are freed by deleting them (a hard-linked file counts once, and only
    when this is its last name)."""
    seen, total = set(), 0
    for p in path.rglob("*") if path.is_dir() else [path]:
        if p.is_file():
            st = p.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size if st.st_nlink == 1 else 0
    return total


def clean(out: str | Path, log: Callable[[str], None] = print) -> Cleaned:
    """Remove checkpoints of the complete experiments under ``out`` and the shared units; see the module docstring.

    Raises:
      ValueError: ``out`` is not a directory (one line, for the command line).
    """
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"clean: {out} is not a directory of runs.")
    cleaned, kept, freed = [], [], 0
    seed_sets = [out, *sorted(p for p in out.glob("seed-offset-*") if p.is_dir())]
    # A per-core run's seeds each have their own output directory (experiments.layout).
    directories = [d for root in seed_sets for d in (root, *sorted(root.glob(f"{PER_CORE_DIR}/seed-*")))]
    for root in directories:
        kept_here = len(kept)
        for manifest in sorted(root.glob("*/manifest.json")):
            store = ResultsStore(root, manifest.parent.name, warn=log)
            label = str(manifest.parent.relative_to(out))
            with store.lock():
                try:
                    complete = store.is_complete()
                except CorruptFile as err:
                    log(f"{label}: kept ({err})")
                    kept.append(label)
                    continue
                if not complete:
                    kept.append(label)
                    log(f"{label}: unfinished, kept (its checkpoints are what lets it resume)")
                    continue
                nested = store.dir / "runs"  # a study's sub-experiments (the empathy study)
                for work in [store.dir / "checkpoints", *sorted(nested.glob("*/checkpoints")),
                             *([nested / SHARED_DIR] if nested.is_dir() else [])]:
                    if work.exists():
                        freed += _size(work)
                        shutil.rmtree(work)
                cleaned.append(label)
        # An unfinished experiment here may still reuse the shared units and the per-core workers' compiled
        # programs (``OUT/.per-core/xla-cache``, where the runner was not given a compilation cache).
        if len(kept) == kept_here:
            for work in (root / SHARED_DIR, root / PER_CORE_DIR / "xla-cache"):
                if work.exists():
                    freed += _size(work)
                    shutil.rmtree(work)
    log(f"cleaned {len(cleaned)} experiment(s), kept {len(kept)} unfinished; freed {freed / 1e6:,.1f} MB")
    return Cleaned(cleaned, kept, freed)
