"""ASCII maps: the paper's five hand-picked Figure 5 layouts and a parser for users' own.

A map is a square of rows, one string per row, top row first (y = 0), leftmost character x = 0:

* ``#`` a wall (the outer ring must be all walls),
* ``.`` a free cell.

Single spaces *between* cells, as in ``"# . . #"``, are allowed (so are the maps as docs/paper-vs-reference.md,
"Figure 5's maps", prints them).

Goal and agent are placed uniformly on free cells at every reset, so a map fixes walls only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from internalize.config_error import ConfigError

# The reference's hand-chosen grids, env_id 1..5 in this order (docs/paper-vs-reference.md, "Figure 5's maps").
PAPER_MAPS: Mapping[str, tuple[str, ...]] = {
    "plus": (
        "#######",
        "#.....#",
        "#..#..#",
        "#.###.#",
        "#..#..#",
        "#.....#",
        "#######",
    ),
    "x": (
        "#######",
        "#.....#",
        "#.#.#.#",
        "#..#..#",
        "#.#.#.#",
        "#.....#",
        "#######",
    ),
    "U": (
        "#######",
        "#.....#",
        "#.#.#.#",
        "#.#.#.#",
        "#..#..#",
        "#.....#",
        "#######",
    ),
    "T": (
        "#######",
        "#.....#",
        "#.###.#",
        "#..#..#",
        "#..#..#",
        "#.....#",
        "#######",
    ),
    "four_rooms": (
        "#######",
        "#..#..#",
        "#.....#",
        "##.#.##",
        "#.....#",
        "#..#..#",
        "#######",
    ),
}

_WALL, _FREE = "#", "."


def _normalise_rows(rows: Sequence[str], size: int) -> list[str]:
    """Strip blank lines and surrounding whitespace; drop single separating spaces ("# . #" -> "#.#")."""
    lines = [r.strip() for r in rows if r.strip()]
    if lines and all(len(r) == 2 * size - 1 and set(r[1::2]) == {" "} for r in lines):
        lines = [r[0::2] for r in lines]
    return lines


def parse_map(text: str | Sequence[str], size: int = 7, field: str = "map") -> np.ndarray:
    """Parse an ASCII map into a wall mask, validating it.

    Args:
      text: the map as one multi-line string or a sequence of row strings; or the name of a built-in map
        (``plus``, ``x``, ``U``, ``T``, ``four_rooms``).
      size: required side length including the border walls.
      field: the configuration field this map came from, named in errors.

    Returns:
      (size, size) bool array indexed [y, x], True for walls.

    Raises:
      ConfigError (a ValueError) naming ``field``: wrong size, unknown characters, a border that is not all walls,
        or fewer than two free cells 4-connected to each other (a goal and an agent must both fit and the goal must
        be reachable).
    """
    given = text
    if isinstance(text, str) and text in PAPER_MAPS:
        text = PAPER_MAPS[text]
    rows = text.splitlines() if isinstance(text, str) else list(text)
    lines = _normalise_rows(rows, size)
    if len(lines) != size or any(len(r) != size for r in lines):
        shape = f"{len(lines)} rows of lengths {sorted({len(r) for r in lines})}"
        raise ConfigError(
            field, f"a map must be {size} rows of {size} cells (border walls included), got {shape}. "
            f"Built-in maps: {', '.join(PAPER_MAPS)}.", value=given,
            allowed=f"{size} rows of {size} cells, or one of {', '.join(PAPER_MAPS)}",
        )
    walls = np.zeros((size, size), dtype=bool)
    for y, row in enumerate(lines):
        for x, ch in enumerate(row):
            if ch == _WALL:
                walls[y, x] = True
            elif ch == _FREE:
                walls[y, x] = False
            else:
                raise ConfigError(
                    field, f"unknown character {ch!r} at row {y}, column {x}; allowed: '#' (wall), '.' (free).",
                    value=given, allowed="'#' (wall), '.' (free)",
                )
    border = np.ones_like(walls)
    border[1:-1, 1:-1] = False
    if not walls[border].all():
        raise ConfigError(field, "the outer ring of the map must be all walls ('#').", value=given)
    if largest_component(~walls) < 2:
        raise ConfigError(
            field, "the map needs at least two free cells connected to each other (one for the goal, one for "
            f"the agent); it has {int((~walls).sum())} free cell(s) and none adjacent.", value=given,
        )
    return walls


def largest_component(free: np.ndarray) -> int:
    """Size of the largest 4-connected set of True cells in a (H, W) bool array (host-side, for validation)."""
    seen = np.zeros_like(free)
    best = 0
    for y0, x0 in zip(*np.nonzero(free), strict=True):
        if seen[y0, x0]:
            continue
        stack, count = [(y0, x0)], 0
        seen[y0, x0] = True
        while stack:
            y, x = stack.pop()
            count += 1
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < free.shape[0] and 0 <= nx < free.shape[1] and free[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        best = max(best, count)
    return best


def to_ascii(walls: np.ndarray) -> str:
    """Inverse of :func:`parse_map`: a (H, W) wall mask as '#'/'.' rows joined by newlines."""
    return "\n".join("".join("#" if w else "." for w in row) for row in np.asarray(walls))
