"""Runs on a worker that does not see the driver's output directory (``--no-shared-fs``).

The task runs its experiment (one seed under ``per-core``, a whole one under ``vmap``) in a temporary directory
on its node, as it would in ``OUT``, and returns the experiment's files -- its manifest, table and unit tables,
each with its checksum sidecar, and its trained states only when asked (``play --from`` and the GIFs need them) --
as bytes; the driver writes them into ``OUT`` (the manifest last, so a half-written directory never counts as
finished) and reads them back through the results store, which verifies every checksum. A task that dies is
started again from the beginning (its checkpoints were on its node), with the same numbers.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from internalize.storage import atomic_write_bytes

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Shipped:
    """What a task run elsewhere sends back: its wall seconds and its experiment's files (path relative to the
    output directory -> bytes)."""

    wall_s: float
    files: dict[str, bytes]


def run_elsewhere(run: Callable[..., float], exp, force: bool, checkpoint_seconds: float,
                  states: bool) -> Shipped:
    """In a worker: ``run(exp, out, force, checkpoint_seconds)`` into a temporary ``out`` of this node; its files."""
    with tempfile.TemporaryDirectory(prefix="internalize-") as tmp:
        wall = run(exp, tmp, force, checkpoint_seconds)
        root = Path(tmp) / exp.name
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(root.rglob("*"))
                 if p.is_file() and (states or CHECKPOINTS not in p.relative_to(root).parts)}
    return Shipped(wall, files)


def unpack(shipped: Shipped, out: str | Path) -> None:
    """In the driver: write ``shipped``'s files under ``out`` atomically, the manifest and its sidecar last."""
    last = [k for k in shipped.files if Path(k).name.startswith(MANIFEST)]
    for name in [k for k in shipped.files if k not in last] + sorted(last, reverse=True):
        atomic_write_bytes(Path(out) / name, shipped.files[name])
