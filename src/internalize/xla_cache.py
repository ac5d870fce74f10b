"""JAX's persistent compilation cache, set up the same way wherever internalize starts JAX processes.

Programs compiled by one run (or one worker process) are loaded by the next instead of recompiled. A size limit
turns on JAX's file lock (filelock) around every cache read and write, so processes writing the cache at once
never read each other's half-written entries.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_MAX_BYTES = 4 * 2**30
#: Programs that take at least this long (seconds) to compile are stored. JAX's default (1 s) left the runner's
#: many 0.2-1 s programs (a unit's init, the ISR metrics, evaluation) to be compiled again by every run: quick
#: fig4b with a warm cache took 62.4 s at 1 s and 57.7 s at 0.2 s (2-core CPU).
MIN_COMPILE_SECONDS = 0.2


def cache_settings(directory: str | Path) -> dict[str, str]:
    """The environment variables that put JAX's persistent cache in ``directory`` (read when JAX is imported)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(directory),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": str(MIN_COMPILE_SECONDS),
            "JAX_COMPILATION_CACHE_MAX_SIZE": str(CACHE_MAX_BYTES)}


def missing_settings(directory: str | Path) -> dict[str, str]:
    """:func:`cache_settings` for ``directory``, less those this process's environment already sets."""
    return {k: v for k, v in cache_settings(directory).items() if k not in os.environ}
