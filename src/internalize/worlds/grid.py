"""Cell codes, directions and the egocentric view shared by every grid world.

Codes are minigrid's (``minigrid.core.constants``) so observations are comparable with minigrid and with the
paper's reference code, which encodes its grids with ``minigrid.Grid.encode``:

* objects: unseen 0, empty 1, wall 2, ball 6, goal 8, agent 10;
* colours: red 0, green 1, blue 2, purple 3, yellow 4, grey 5;
* directions: 0 = east (+x), 1 = south (+y), 2 = west (-x), 3 = north (-y); a left turn is ``dir - 1``.

Coordinates are minigrid's ``(x, y)``: x is the column, y the row, y grows downward. Arrays that hold a grid
are indexed ``[y, x]`` (row-major), so ``grid[pos[1], pos[0]]`` is the cell at ``pos``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# minigrid.core.constants.OBJECT_TO_IDX / COLOR_TO_IDX (the subset our worlds use).
UNSEEN, EMPTY, WALL, BALL, GOAL, AGENT = 0, 1, 2, 6, 8, 10
RED, GREEN, BLUE, PURPLE, YELLOW, GREY = 0, 1, 2, 3, 4, 5

# Direction index -> (dx, dy), minigrid.core.constants.DIR_TO_VEC.
DIR_TO_VEC = jnp.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=jnp.int32)

# Actions shared by the grid worlds: minigrid's indices for left, right, forward.
LEFT, RIGHT, FORWARD = 0, 1, 2


def view_size(size: int) -> int:
    """Side of the egocentric crop that shows the whole interior of a ``size``x``size`` grid from any cell.

    An agent on the interior sees ``size - 3`` cells in every direction: ``2 * size - 5`` (9 for the paper's 7).
    """
    return 2 * size - 5


def turn(direction: jax.Array, action: jax.Array) -> jax.Array:
    """New direction after ``action`` (left: -1, right: +1, anything else: unchanged), modulo 4."""
    delta = jnp.where(action == LEFT, -1, jnp.where(action == RIGHT, 1, 0))
    return (direction + delta) % 4


def front_cell(pos: jax.Array, direction: jax.Array) -> jax.Array:
    """``(x, y)`` of the cell the agent faces. ``pos``: (2,) int32."""
    return pos + DIR_TO_VEC[direction]


def _view_offsets(view: int, direction: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Grid offsets (dx, dy), each (view, view), of every crop cell relative to the agent.

    crop[r, c] shows the cell at ``agent + (h - r) * forward + (c - h) * right`` with ``h = view // 2``:
    row 0 lies ``h`` cells ahead, column 0 ``h`` cells to the left, the agent sits at ``(h, h)`` facing up.
    This is the net effect of the reference's pad / crop / ``rot90`` x (dir + 2) / flip
    (docs/paper-vs-reference.md, 'Observation').
    """
    h = view // 2
    rows = jnp.arange(view)[:, None]
    cols = jnp.arange(view)[None, :]
    fwd = DIR_TO_VEC[direction]
    right = DIR_TO_VEC[(direction + 1) % 4]
    ahead = h - rows
    lateral = cols - h
    dx = ahead * fwd[0] + lateral * right[0]
    dy = ahead * fwd[1] + lateral * right[1]
    return dx, dy


def egocentric_view(encoded: jax.Array, agent_pos: jax.Array, agent_dir: jax.Array, view: int) -> jax.Array:
    """Agent-centred, agent-facing-up crop of an encoded grid, with an ``is_goal`` channel appended.

    Args:
      encoded: (H, W, C) uint8 full-grid encoding indexed [y, x]; channel 0 is the object code. The agent's
        own cell must already hold its encoding (agent, colour, absolute direction).
      agent_pos: (2,) int32 ``(x, y)``.
      agent_dir: () int32 absolute direction 0..3.
      view: side of the square crop (static).

    Returns:
      (view, view, C + 1) uint8; cells outside the grid are all zero ("unseen"), the last channel is
      ``object == goal``.
    """
    height, width = encoded.shape[0], encoded.shape[1]
    dx, dy = _view_offsets(view, agent_dir)
    x = agent_pos[0] + dx
    y = agent_pos[1] + dy
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    cells = encoded[jnp.clip(y, 0, height - 1), jnp.clip(x, 0, width - 1)]
    cells = jnp.where(inside[..., None], cells, jnp.zeros_like(cells))
    is_goal = (cells[..., 0] == GOAL).astype(jnp.uint8)[..., None]
    return jnp.concatenate([cells, is_goal], axis=-1)


def reachable(free: jax.Array, start: jax.Array) -> jax.Array:
    """Cells 4-connected to ``start`` through free cells (breadth-first flood fill, jit-able).

    Args:
      free: (H, W) bool, True where an agent may stand; W <= 32.
      start: (2,) int32 ``(x, y)``; assumed free.

    Returns:
      (H, W) bool mask of the cells reachable from ``start`` (``start`` included).
    """
    height, width = free.shape
    bit = jnp.arange(width, dtype=jnp.uint32)
    # Each row as a bit mask: one dilation step is a handful of integer ops on H words, so the flood fill
    # costs microseconds even under vmap.
    rows = jnp.sum(free.astype(jnp.uint32) << bit, axis=1, dtype=jnp.uint32)
    mask = jnp.zeros(height, jnp.uint32).at[start[1]].set(jnp.uint32(1) << start[0].astype(jnp.uint32))
    zero = jnp.zeros(1, jnp.uint32)

    def grow(carry):
        m, _ = carry
        vertical = jnp.concatenate([m[1:], zero]) | jnp.concatenate([zero, m[:-1]])
        new = m | (((m << 1) | (m >> 1) | vertical) & rows)
        return new, jnp.any(new != m)

    mask, _ = jax.lax.while_loop(lambda c: c[1], grow, (mask, jnp.array(True)))
    return ((mask[:, None] >> bit) & 1).astype(bool)
