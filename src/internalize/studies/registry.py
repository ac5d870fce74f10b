"""Every study of the library, by name (``internalize study NAME``, ``internalize list``)."""

from __future__ import annotations

from internalize.studies import conflicting, hacking, means_ends, readiness, unreliable, weaning
from internalize.studies.study import Study

STUDIES: dict[str, Study] = {m.STUDY.name: m.STUDY
                             for m in (weaning, unreliable, conflicting, means_ends, hacking, readiness)}


def study(name: str) -> Study:
    """The study ``name`` (``ValueError`` naming the studies for another)."""
    if name not in STUDIES:
        raise ValueError(f"study: got {name!r}; allowed: {' | '.join(STUDIES)}.")
    return STUDIES[name]
