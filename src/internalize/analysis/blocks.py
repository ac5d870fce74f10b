"""The report's building blocks: headings, text, tables and images, and how numbers and seed lists are written.

Sections (:mod:`internalize.analysis.sections`, :mod:`internalize.analysis.empathy_section`, the robustness
section) return lists of these; :mod:`internalize.analysis.report` renders them as Markdown and HTML.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Heading", "Text", "Table", "Image", "Block", "fmt", "seed_list"]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    caption: str
    path: Path


Block = Heading | Text | Table | Image


def fmt(x: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits ('–' for None/NaN)."""
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.{digits}g}"


def seed_list(seeds: Sequence[int]) -> str:
    """Compact seed list: '0–9' for a contiguous range, else the values (first 12)."""
    s = sorted(int(x) for x in seeds)
    if not s:
        return "–"
    if len(s) > 2 and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}–{s[-1]}"
    return ", ".join(map(str, s[:12])) + (" …" if len(s) > 12 else "")
