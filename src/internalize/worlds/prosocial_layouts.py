"""Tree-maze layouts and object placement for the prosocial world (docs/paper-vs-reference.md, 'Prosocial layouts').

Walls
-----
A 7x7 grid with a border ring of walls; ``n_walls`` interior walls are placed one at a time, each uniformly
among the free interior cells whose placement is acceptable; an attempt with no acceptable cell left fails.
A placement is acceptable if the open cells stay 4-connected, the cycle count (E - V + 1) can still reach 0
with the walls left (each wall removes at most 3 cycles: a pruning that only cuts dead ends), and, under
``rule="reference"``, every 2x2 window touching the new wall has exactly 2 equal adjacent pairs around its
cycle (no all-wall and no checkerboard window). A finished layout is kept only if its open cells form a
TREE (connected, E = V - 1: so no 2x2 window is all open) and it admits a placement (below). Under
``rule="tree"`` walls may touch diagonally; nothing else differs.

How many walls (the paper says 7, the reference code places 8), by exhaustive search
over all C(25, n) interior wall sets:

* ``n = 7``: 1,020 of the 480,700 sets leave the 18 open cells a tree, all admitting a placement (boulder
  degree 3 in 920, 4 in 100). None satisfies the reference's 2x2 rule. Proof: the 7x7 grid has 84 edges; a tree
  of 25 - n interior open cells has 24 - n edges and 52 - 2n edges to walls, leaving 8 + 3n edges among the
  24 + n walls (border included), so the wall graph's cycle rank is 2n - 16 + c for c 4-connected wall groups.
  The border ring is one independent cycle; any other would enclose open cells (cutting the tree) or be made of
  2x2 wall blocks, which the rule forbids, as it forbids diagonal-only contacts (so c = 1: a tree has no holes, so
  every wall group joins the ring). Hence 2n - 15 = 1, n = 8 exactly. With 7 walls the rank c - 2 >= 1 needs c >= 3
  wall groups that touch only diagonally (checkerboard windows).
* ``n = 8``: 1,072 sets satisfy the tree and the 2x2 rule (1,048 admit a placement; 24 are paths), and
  8,445 are trees without the 2x2 rule.

So the paper's 7 is possible as a tree, and is the default (``n_walls=7, rule="tree"``); the reference's
layouts are ``n_walls=8, rule="reference"``, its only possible count. Banks hold nearly every layout there
is: 6,000 attempts (about 2 s) give 984 of the 1,020 seven-wall trees, and 1,044 of the 1,048 reference ones.

Placement (every reset and after every helped-agent goal, in JAX)
-----------------------------------------------------------------
Tree degree = number of open 4-neighbours; a leaf has degree 1. The boulder goes uniformly on an open cell of
maximal degree. With the boulder blocking, A is the component of the first open cell in row-major order. With
p = 0.5 the helped agent goes on a leaf in A and the goal on a leaf outside A, else the reverse; the learner
on a leaf outside the helped agent's component and not on the goal; both directions uniform. A bank keeps only
layouts for which every one of these choices is possible, so :func:`sample_placement` never fails.

Reproducibility: generation uses ``np.random.default_rng(seed)`` only; layouts are deduplicated and sorted by
their bytes, so a bank depends on its arguments only (not on PYTHONHASHSEED). Banks are cached as ``.npy``
under ``$INTERNALIZE_CACHE_DIR/prosocial`` (default ``~/.cache/internalize/prosocial``), written atomically with a
checksum and verified when read (a damaged bank is regenerated, with a warning naming it).
"""

from __future__ import annotations

import functools
import io
import os
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from internalize.config_error import ConfigError
from internalize.storage import CorruptFile, read_verified, write_verified
from internalize.worlds import grid

SIZE = 7
RULES = ("tree", "reference")
N_WALLS = {"tree": (6, 7, 8, 9, 10), "reference": (8,)}
VERSION = 1

# Cells as bits of a 49-bit integer, index y * 7 + x: a flood fill is a few integer operations per step.
_FULL = (1 << SIZE * SIZE) - 1
_COL0 = sum(1 << (y * SIZE) for y in range(SIZE))
_COL6 = _COL0 << (SIZE - 1)
_INTERIOR = sum(1 << (y * SIZE + x) for y in range(1, SIZE - 1) for x in range(1, SIZE - 1))


def _dilate(m: int) -> int:
    return (((m << 1) & ~_COL0) | ((m >> 1) & ~_COL6) | (m << SIZE) | (m >> SIZE)) & _FULL


def _component(free: int, seed: int) -> int:
    m = seed
    while True:
        grown = m | (_dilate(m) & free)
        if grown == m:
            return m
        m = grown


def _connected(free: int) -> bool:
    return free == 0 or _component(free, free & -free) == free


def _cycles(free: int) -> int:
    """E - V + 1 of the open cells' 4-adjacency graph (0 for a tree when connected)."""
    edges = (free & (free >> 1) & ~_COL6).bit_count() + (free & (free >> SIZE)).bit_count()
    return edges - free.bit_count() + 1


def _windows_ok(free: int, x: int, y: int) -> bool:
    """The reference's rule on the 2x2 windows touching (x, y): exactly 2 equal adjacent pairs each."""
    for wx in (x - 1, x):
        for wy in (y - 1, y):
            a, b, d, c = ((free >> (cy * SIZE + cx)) & 1 for cx, cy in
                          ((wx, wy), (wx + 1, wy), (wx + 1, wy + 1), (wx, wy + 1)))
            if (a == b) + (b == d) + (d == c) + (c == a) != 2:
                return False
    return True


def _leaves_and_degree(free: int) -> tuple[int, int]:
    """(bit mask of leaves, maximal degree) of the open cells."""
    shifts = (((free << 1) & ~_COL0), ((free >> 1) & ~_COL6), (free << SIZE) & _FULL, free >> SIZE)
    degree = {i: sum((s >> i) & 1 for s in shifts) for i in range(SIZE * SIZE) if (free >> i) & 1}
    leaves = sum(1 << i for i, d in degree.items() if d == 1)
    return leaves, max(degree.values(), default=0)


def _admits_placement(free: int) -> bool:
    """Every boulder / side / helped-agent / goal choice of the placement leaves the learner a leaf."""
    leaves, top = _leaves_and_degree(free)
    shifts = (((free << 1) & ~_COL0), ((free >> 1) & ~_COL6), (free << SIZE) & _FULL, free >> SIZE)
    for i in range(SIZE * SIZE):
        if not (free >> i) & 1 or sum((s >> i) & 1 for s in shifts) != top:
            continue
        rest = free & ~(1 << i)
        side_a = _component(rest, rest & -rest)
        in_a, out_a = leaves & side_a, leaves & rest & ~side_a
        if not in_a or not out_a:
            return False
        if (out_a).bit_count() < 2:  # helped agent in A: the learner needs a leaf outside A besides the goal
            return False
        m = out_a
        while m:  # helped agent outside A: a leaf outside its component besides the goal (in A)
            h = m & -m
            m ^= h
            if (leaves & ~_component(rest, h)).bit_count() < 2:
                return False
    return True


def _attempt(rng: np.random.Generator, n_walls: int, rule: str) -> int | None:
    """One run of the sequential placement; the open cells as a bit mask, or None on failure."""
    free = _INTERIOR
    for placed in range(n_walls):
        cells = [i for i in range(SIZE * SIZE) if (free >> i) & 1]
        for i in rng.permutation(len(cells)):  # the first acceptable in random order: uniform among them
            cell = cells[int(i)]
            new = free & ~(1 << cell)
            if not _connected(new) or _cycles(new) > 3 * (n_walls - placed - 1):
                continue
            if rule == "reference" and not _windows_ok(new, cell % SIZE, cell // SIZE):
                continue
            free = new
            break
        else:
            return None
    return free if _cycles(free) == 0 and _admits_placement(free) else None


def _to_array(free: int) -> np.ndarray:
    bits = np.array([(free >> i) & 1 for i in range(SIZE * SIZE)], bool)
    return ~bits.reshape(SIZE, SIZE)


def _dihedral(walls: np.ndarray) -> list[np.ndarray]:
    rots = [np.rot90(walls, k) for k in range(4)]
    return rots + [np.fliplr(r) for r in rots]


def check_bank_args(n_walls: int, rule: str, attempts: int, seed: int = 0) -> None:
    """ConfigError (a ValueError) naming the parameter unless the generator's arguments are valid (see the module
    docstring)."""
    if rule not in RULES:
        raise ConfigError.must("wall_rule", f"one of {', '.join(RULES)}", rule)
    if isinstance(n_walls, bool) or not isinstance(n_walls, (int, np.integer)) or n_walls not in N_WALLS[rule]:
        why = " (the only count its 2x2 rule allows; see the module docstring)" if rule == "reference" else ""
        allowed = f"one of {list(N_WALLS[rule])}"
        raise ConfigError("n_walls", f"with wall_rule={rule!r} must be {allowed}{why}, got {n_walls!r}.",
                          value=n_walls, allowed=f"{allowed} with wall_rule={rule!r}")
    if isinstance(attempts, bool) or not isinstance(attempts, (int, np.integer)) or not 1 <= attempts <= 10**6:
        raise ConfigError.must("attempts", "an integer in 1..1000000", attempts)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError.must("seed", "a non-negative integer", seed)


def generate_bank(
    n_walls: int = 7, *, rule: str = "tree", seed: int = 0, attempts: int = 6000, dihedral: bool = True
) -> np.ndarray:
    """Distinct tree layouts from ``attempts`` runs of the sequential placement (no cache).

    Returns:
      (N, 7, 7) bool [layout, y, x], True for walls, sorted by bytes; with ``dihedral`` each found layout adds
      its 8 rotations and reflections. Raises ConfigError (a ValueError) for bad arguments or when no layout is
      found.
    """
    check_bank_args(n_walls, rule, attempts, seed)
    rng = np.random.default_rng(seed)
    found: dict[bytes, np.ndarray] = {}  # a dict, never a set: its order does not depend on the hash seed
    for _ in range(attempts):
        free = _attempt(rng, n_walls, rule)
        if free is not None:
            layout = _to_array(free)
            for variant in _dihedral(layout) if dihedral else [layout]:
                found.setdefault(np.ascontiguousarray(variant).tobytes(), variant)
    if not found:
        raise ConfigError("n_walls", f"no tree layout with {n_walls} walls found in {attempts} attempts; use more.",
                          value=n_walls)
    return np.stack([found[k] for k in sorted(found)]).astype(bool)


def cache_dir() -> Path:
    """Where banks are cached: ``$INTERNALIZE_CACHE_DIR/prosocial`` or ``~/.cache/internalize/prosocial``."""
    root = os.environ.get("INTERNALIZE_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "internalize") / "prosocial"


@functools.lru_cache(maxsize=16)
def _bank_cached(n_walls: int, rule: str, seed: int, attempts: int, dihedral: bool, folder: str) -> np.ndarray:
    path = Path(folder) / f"bank-v{VERSION}-{rule}-w{n_walls}-s{seed}-a{attempts}-d{int(dihedral)}.npy"
    if path.exists():
        try:  # verified like every stored file: a damaged bank is regenerated, never used
            bank = np.load(io.BytesIO(read_verified(path)), allow_pickle=False)
            if bank.dtype == bool and bank.ndim == 3 and bank.shape[1:] == (SIZE, SIZE) and len(bank):
                return bank
            raise CorruptFile(f"{path}: not a layout bank (dtype {bank.dtype}, shape {bank.shape})")
        except (CorruptFile, ValueError, OSError) as err:
            print(f"warning: {err}; regenerating the layout bank", file=sys.stderr, flush=True)
    bank = generate_bank(n_walls, rule=rule, seed=seed, attempts=attempts, dihedral=dihedral)
    buf = io.BytesIO()
    np.save(buf, bank)
    try:
        write_verified(path, buf.getvalue())
    except OSError:
        pass  # a read-only cache only costs regeneration next time
    return bank


def layout_bank(
    n_walls: int = 7, *, rule: str = "tree", seed: int = 0, attempts: int = 6000, dihedral: bool = True
) -> np.ndarray:
    """:func:`generate_bank`, cached on disk and in memory. Returns (N, 7, 7) bool (a read-only array)."""
    check_bank_args(n_walls, rule, attempts, seed)
    bank = _bank_cached(int(n_walls), rule, int(seed), int(attempts), bool(dihedral), str(cache_dir()))
    bank.setflags(write=False)
    return bank


def is_tree(walls: np.ndarray) -> bool:
    """True if the open cells of a (7, 7) wall mask are connected and acyclic (E = V - 1)."""
    free = sum(1 << i for i, w in enumerate(np.asarray(walls, bool).reshape(-1)) if not w)
    return free != 0 and _connected(free) and _cycles(free) == 0


class Placement(NamedTuple):
    """Object positions, each (2,) int32 ``(x, y)``, and the two directions, () int32 in 0..3."""

    boulder: jax.Array
    helped: jax.Array
    goal: jax.Array
    learner: jax.Array
    helped_dir: jax.Array
    learner_dir: jax.Array


def tree_degree(free: jax.Array) -> jax.Array:
    """(H, W) int32: number of free 4-neighbours of every free cell, 0 on walls."""
    p = jnp.pad(free, 1).astype(jnp.int32)
    degree = p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
    return jnp.where(free, degree, 0)


def pick_cell(u: jax.Array, allowed: jax.Array) -> jax.Array:
    """The ``floor(u * n)``-th of the n True cells of a (H, W) mask (row-major) as ``(x, y)``: uniform for
    ``u`` uniform in [0, 1)."""
    width = allowed.shape[1]
    count = jnp.cumsum(allowed.reshape(-1))
    k = jnp.minimum(jnp.floor(u * count[-1]).astype(jnp.int32), count[-1] - 1)
    index = jnp.argmax(count > k)
    return jnp.stack([index % width, index // width]).astype(jnp.int32)


def _cell(pos: jax.Array, shape: tuple[int, int]) -> jax.Array:
    return jnp.zeros(shape, bool).at[pos[1], pos[0]].set(True)


def sample_placement(key: jax.Array, walls: jax.Array) -> Placement:
    """A random placement on a (7, 7) bool wall mask (a bank layout), by the rules of the module docstring."""
    free = ~walls
    u = jax.random.uniform(key, (7,))
    degree = tree_degree(free)
    boulder = pick_cell(u[0], free & (degree == degree.max()))
    rest = free & ~_cell(boulder, free.shape)
    first = jnp.argmax(rest.reshape(-1))
    side_a = grid.reachable(rest, jnp.stack([first % SIZE, first // SIZE]).astype(jnp.int32))
    leaves = rest & (degree == 1)
    helped_in_a = u[1] < 0.5
    helped = pick_cell(u[2], jnp.where(helped_in_a, leaves & side_a, leaves & ~side_a))
    goal = pick_cell(u[3], jnp.where(helped_in_a, leaves & ~side_a, leaves & side_a))
    helped_side = grid.reachable(rest, helped)
    learner = pick_cell(u[4], leaves & ~helped_side & ~_cell(goal, free.shape))
    dirs = jnp.minimum(jnp.floor(u[5:7] * 4), 3).astype(jnp.int32)
    return Placement(boulder, helped, goal, learner, dirs[0], dirs[1])


class UserLayout(NamedTuple):
    """A user's fixed layout: (7, 7) bool walls [y, x] and the four object cells as ``(x, y)`` tuples."""

    walls: np.ndarray
    boulder: tuple[int, int]
    helped: tuple[int, int]
    goal: tuple[int, int]
    learner: tuple[int, int]


_CHARS = {"#": "wall", ".": "free", "B": "boulder", "H": "helped agent", "G": "goal", "L": "learner"}


def _flood(free: np.ndarray, start: tuple[int, int]) -> np.ndarray:
    """Host-side 4-connected component of ``start`` = (x, y) in a (H, W) bool mask."""
    seen = np.zeros_like(free)
    stack = [start]
    seen[start[1], start[0]] = True
    while stack:
        x, y = stack.pop()
        for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if 0 <= nx < free.shape[1] and 0 <= ny < free.shape[0] and free[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                stack.append((nx, ny))
    return seen


def parse_layout(text: str | list[str] | tuple[str, ...], field: str = "layout") -> UserLayout:
    """Parse and validate a user layout: 7 rows of 7 characters from ``# . B H G L`` (single spaces between
    cells allowed), a wall border, exactly one boulder B, helped agent H, goal G and learner L.

    Raises:
      ConfigError (a ValueError) naming ``field``: wrong size or characters, an open border, a missing or repeated
      object, or an unsolvable task (H cannot reach G even without the boulder, or the boulder is in the way and L
      can never get next to it).
    """
    given = text
    rows = text.splitlines() if isinstance(text, str) else list(text)
    lines = [r.strip() for r in rows if r.strip()]
    if lines and all(len(r) == 2 * SIZE - 1 and set(r[1::2]) == {" "} for r in lines):
        lines = [r[0::2] for r in lines]
    if len(lines) != SIZE or any(len(r) != SIZE for r in lines):
        raise ConfigError(
            field, f"must be {SIZE} rows of {SIZE} cells (border walls included), got {len(lines)} rows of "
            f"lengths {sorted({len(r) for r in lines})}.", value=given, allowed=f"{SIZE} rows of {SIZE} cells",
        )
    found: dict[str, list[tuple[int, int]]] = {c: [] for c in _CHARS}
    for y, row in enumerate(lines):
        for x, ch in enumerate(row):
            if ch not in _CHARS:
                allowed = ", ".join(f"{c!r} ({n})" for c, n in _CHARS.items())
                raise ConfigError(field, f"unknown character {ch!r} at row {y}, column {x}; allowed: {allowed}.",
                                  value=given, allowed=allowed)
            found[ch].append((x, y))
    walls = np.zeros((SIZE, SIZE), bool)
    for x, y in found["#"]:
        walls[y, x] = True
    if not (walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()):
        raise ConfigError(field, "the outer ring must be all walls ('#').", value=given)
    for ch in "BHGL":
        if len(found[ch]) != 1:
            what = "no" if not found[ch] else f"{len(found[ch])} cells with"
            raise ConfigError(field, f"needs exactly one {_CHARS[ch]} {ch!r}, found {what} {ch!r}.", value=given)
    (boulder,), (helped,), (goal,), (learner,) = (found[c] for c in "BHGL")
    if not _flood(~walls, helped)[goal[1], goal[0]]:
        raise ConfigError(
            field, f"unsolvable: the helped agent H at {helped} can never reach the goal G at {goal}, even after the "
            "boulder is moved (walls separate them).", value=given,
        )
    blocked = ~walls
    blocked[boulder[1], boulder[0]] = False
    if not _flood(blocked, helped)[goal[1], goal[0]]:
        # The boulder is in the way: the learner must be able to stand next to it (it cannot cross G or H).
        room = ~walls
        for x, y in (boulder, goal, helped):
            room[y, x] = False
        near = _flood(room, learner)
        bx, by = boulder
        if not any(near[ny, nx] for nx, ny in ((bx + 1, by), (bx - 1, by), (bx, by + 1), (bx, by - 1))):
            raise ConfigError(
                field, f"unsolvable: the boulder B at {boulder} blocks the helped agent and the learner L at "
                f"{learner} can never get next to it.", value=given,
            )
    return UserLayout(walls, boulder, helped, goal, learner)
