"""Seed sets: ``INTERNALIZE_SEED_OFFSET`` shifts every seed the presets and the learning tests use.

A verdict that holds only for one set of seeds is luck. Setting ``INTERNALIZE_SEED_OFFSET=K`` (default 0) adds
``K`` to every seed of the paper presets (1234-1243 become 1234+K ... 1243+K) and of the learning tests, so the
same command checks the same claim on a disjoint seed set (K = 1000, 2000 ...). ``internalize reproduce
--seed-offset K`` does the same for one run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["SEED_OFFSET_ENV", "seed_offset", "offset_seeds"]

SEED_OFFSET_ENV = "INTERNALIZE_SEED_OFFSET"


def seed_offset(value: str | int | None = None) -> int:
    """The seed offset: ``value`` if given, else ``$INTERNALIZE_SEED_OFFSET``, else 0.

    Raises ValueError (one line: where it came from, the value, what is allowed) unless it is an integer >= 0.
    """
    source = "seed offset"
    if value is None:
        value, source = os.environ.get(SEED_OFFSET_ENV, "0").strip() or "0", SEED_OFFSET_ENV
    if isinstance(value, bool):
        raise ValueError(f"{source}: got {value!r}; allowed: an integer >= 0.")
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: got {value!r}; allowed: an integer >= 0 (e.g. 0, 1000, 2000).") from None
    if k < 0 or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"{source}: got {value!r}; allowed: an integer >= 0 (e.g. 0, 1000, 2000).")
    return k


def offset_seeds(seeds: Iterable[int], offset: int | None = None) -> tuple[int, ...]:
    """``seeds`` shifted by ``offset`` (default: :func:`seed_offset` from the environment)."""
    k = seed_offset() if offset is None else seed_offset(offset)
    return tuple(int(s) + k for s in seeds)
