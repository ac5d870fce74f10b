"""RGB frames and GIFs of the navigation, prosocial, peer and two-goal worlds, in minigrid's look.

A frame shows the whole grid from above, one ``tile_size`` x ``tile_size`` square per cell: a black floor
with thin grey grid lines on each tile's top and left edge, grey blocks and border walls, a green goal and
the learner as a red triangle pointing in its direction (east = right, south = down). Colours are minigrid's
(``minigrid.core.constants.COLORS``), so frames look like the reference code's renders.

Rendering runs on the host in NumPy: a frame is assembled from a handful of pre-drawn tiles, so it costs
microseconds, not a jitted program. For a trajectory, render each state of a stacked ``NavState`` with
:func:`render_frames`. Prosocial states (blue boulder, green helped agent, red learner) have
:func:`render_prosocial_frame` and :func:`render_prosocial_frames`; peer-world states (the peer drawn as the learner
sees it, with a white dot for the viewer) :func:`render_peer_frame` and :func:`render_peer_frames`; two-goal states
(a green and a blue goal) :func:`render_two_goal_frame` and :func:`render_two_goal_frames`. Every ``*_frames``
function takes ``(states, tile_size, params)``, the signature ``worlds.kinds`` calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import imageio.v3 as iio
import numpy as np

from internalize.storage import atomic_write_bytes
from internalize.worlds.navigation import NavState
from internalize.worlds.prosocial import ProsocialState

# minigrid.core.constants.COLORS for the colours we draw.
RED = (255, 0, 0)
GREEN = (0, 255, 0)
GREY = (100, 100, 100)
BLACK = (0, 0, 0)
GRID_LINE = (100, 100, 100)

_SUPERSAMPLE = 3  # draw shapes 3x larger and average down: anti-aliased edges, as minigrid does
_LINE_WIDTH = 0.031  # grid-line thickness as a fraction of the tile (minigrid's): 1 px at 32 px per cell
# The learner's triangle facing east, in tile fractions (x, y): base on the left, tip on the right.
_TRIANGLE = np.array([[0.12, 0.19], [0.87, 0.50], [0.12, 0.81]])


def _in_triangle(x: np.ndarray, y: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Boolean mask of points (x, y) inside the triangle with the given (3, 2) corners."""

    def side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (x - b[0]) * (a[1] - b[1]) - (a[0] - b[0]) * (y - b[1])

    d1, d2, d3 = side(corners[0], corners[1]), side(corners[1], corners[2]), side(corners[2], corners[0])
    has_neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    has_pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(has_neg & has_pos)


def _floor(tile_size: int) -> np.ndarray:
    """(tile, tile, 3) float: black floor with grid lines on the top and left edges."""
    n = tile_size * _SUPERSAMPLE
    img = np.zeros((n, n, 3), np.float64)
    # At least one whole pixel wide, so lines stay crisp on small tiles.
    line = max(1, round(_LINE_WIDTH * tile_size)) * _SUPERSAMPLE
    img[:line, :] = GRID_LINE
    img[:, :line] = GRID_LINE
    return img


def _downsample(img: np.ndarray) -> np.ndarray:
    n = img.shape[0] // _SUPERSAMPLE
    return img.reshape(n, _SUPERSAMPLE, n, _SUPERSAMPLE, 3).mean(axis=(1, 3)).round().astype(np.uint8)


@lru_cache(maxsize=8)
def _tiles(tile_size: int) -> dict[str, np.ndarray]:
    """The pre-drawn (tile, tile, 3) uint8 tiles: floor, wall, goal and the agent in each direction 0..3."""
    n = tile_size * _SUPERSAMPLE
    centres = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(centres, centres)  # x grows rightwards (columns), y downwards (rows)
    tiles = {
        "floor": _downsample(_floor(tile_size)),
        "wall": np.full((tile_size, tile_size, 3), GREY, np.uint8),
        "goal": np.full((tile_size, tile_size, 3), GREEN, np.uint8),
    }
    for direction in range(4):
        # Rotate the east-facing triangle by 90 degrees per step, clockwise on screen (y points down).
        angle = 0.5 * np.pi * direction
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        corners = (_TRIANGLE - 0.5) @ rot.T + 0.5
        img = _floor(tile_size)
        img[_in_triangle(x, y, corners)] = RED
        tiles[f"agent{direction}"] = _downsample(img)
    return tiles


def _one_state_walls(state: Any, tile_size: Any, fn: str) -> np.ndarray:
    """The (size, size) bool walls of one unbatched ``state``, after checking ``tile_size``; ValueErrors name both."""
    if not isinstance(tile_size, (int, np.integer)) or isinstance(tile_size, bool) or not 4 <= tile_size <= 256:
        raise ValueError(f"tile_size: must be an integer in 4..256 (pixels per cell), got {tile_size!r}.")
    walls = np.asarray(state.walls, bool)
    if walls.ndim != 2:
        raise ValueError(
            f"state: {fn} draws one state, got walls of shape {walls.shape}; use {fn}s for a stacked (batched) state."
        )
    return walls


def render_frame(state: NavState, tile_size: int = 32) -> np.ndarray:
    """An RGB picture of one navigation state.

    Args:
      state: a single (unbatched) ``NavState``; JAX or NumPy arrays.
      tile_size: pixels per grid cell, 4..256.

    Returns:
      (size * tile_size, size * tile_size, 3) uint8; row 0 of the image is the grid's top row (y = 0).

    Raises:
      ValueError: a batched state or a bad ``tile_size``.
    """
    walls = _one_state_walls(state, tile_size, "render_frame")
    tiles = _tiles(int(tile_size))
    size = walls.shape[0]
    goal_x, goal_y = (int(v) for v in np.asarray(state.goal_pos))
    agent_x, agent_y = (int(v) for v in np.asarray(state.agent_pos))
    direction = int(np.asarray(state.agent_dir)) % 4
    # Index each cell into a stack of tiles, then tile the picture with one fancy-indexing step.
    kinds = np.where(walls, 1, 0)
    kinds[goal_y, goal_x] = 2
    kinds[agent_y, agent_x] = 3 + direction
    stack = np.stack([tiles["floor"], tiles["wall"], tiles["goal"]] + [tiles[f"agent{d}"] for d in range(4)])
    cells = stack[kinds]  # (size, size, tile, tile, 3)
    return cells.transpose(0, 2, 1, 3, 4).reshape(size * tile_size, size * tile_size, 3)


def render_frames(states: NavState, tile_size: int = 32, params: Any = None) -> list[np.ndarray]:
    """Frames of a stacked state whose arrays share one leading axis (e.g. time), one frame per entry (``params``:
    unused, the common renderer signature of ``worlds.kinds``)."""
    walls = np.asarray(states.walls)
    if walls.ndim != 3:
        raise ValueError(f"states: expected one leading (time) axis, got walls of shape {walls.shape}.")
    host = NavState(
        walls=walls,
        goal_pos=np.asarray(states.goal_pos),
        agent_pos=np.asarray(states.agent_pos),
        agent_dir=np.asarray(states.agent_dir),
        step_count=np.asarray(states.step_count),
    )
    return [
        render_frame(
            NavState(host.walls[t], host.goal_pos[t], host.agent_pos[t], host.agent_dir[t], host.step_count[t]),
            tile_size,
        )
        for t in range(walls.shape[0])
    ]


def save_gif(frames: Sequence[np.ndarray], path: str | os.PathLike[str], fps: float = 4.0) -> str:
    """Write frames as a looping GIF, atomically (``storage.atomic_write_bytes``).

    Args:
      frames: non-empty sequence of (H, W, 3) uint8 arrays, all the same shape.
      path: where the GIF goes; its folder is created if missing.
      fps: frames per second, > 0 (GIF timing has a resolution of 10 ms).

    Returns:
      The path written, as a string.

    Raises:
      ValueError: no frames, frames of different shapes or not (H, W, 3) uint8, or ``fps`` not positive.
    """
    if len(frames) == 0:
        raise ValueError("frames: need at least one frame, got none.")
    first = np.asarray(frames[0])
    if first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        raise ValueError(f"frames: each frame must be an (H, W, 3) uint8 array, got {first.shape} {first.dtype}.")
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.shape != first.shape or frame.dtype != np.uint8:
            raise ValueError(
                f"frames: frame {i} has shape {frame.shape} {frame.dtype}; all frames must be {first.shape} uint8."
            )
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps: must be a positive number of frames per second, got {fps!r}.")
    path = os.fspath(path)
    data = iio.imwrite("<bytes>", np.stack([np.asarray(f) for f in frames]), extension=".gif",
                       duration=1000.0 / fps, loop=0)
    atomic_write_bytes(path, data)
    return path


# --- The prosocial world (added; the navigation functions above are unchanged) -------------------------------

BLUE = (0, 0, 255)
_BALL_RADIUS = 0.31  # minigrid's ball: a filled circle of radius 0.31 tile
_CARRIED_RADIUS = 0.16  # a small blue disc on the learner while it carries the boulder


@lru_cache(maxsize=8)
def _prosocial_tiles(tile_size: int) -> np.ndarray:
    """(2 + 1 + 1 + 4 + 4 + 4, tile, tile, 3) uint8 tiles: floor, wall, goal, boulder, helped agent (green) in
    each direction, learner (red) in each direction, learner carrying the boulder in each direction."""
    base = _tiles(tile_size)
    n = tile_size * _SUPERSAMPLE
    centres = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(centres, centres)
    ball = _floor(tile_size)
    ball[(x - 0.5) ** 2 + (y - 0.5) ** 2 <= _BALL_RADIUS**2] = BLUE
    stack = [base["floor"], base["wall"], base["goal"], _downsample(ball)]
    for colour, carried in ((GREEN, False), (RED, False), (RED, True)):
        for direction in range(4):
            angle = 0.5 * np.pi * direction
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            img = _floor(tile_size)
            img[_in_triangle(x, y, (_TRIANGLE - 0.5) @ rot.T + 0.5)] = colour
            if carried:
                img[(x - 0.5) ** 2 + (y - 0.5) ** 2 <= _CARRIED_RADIUS**2] = BLUE
            stack.append(_downsample(img))
    return np.stack(stack)


def render_prosocial_frame(state: ProsocialState, tile_size: int = 32) -> np.ndarray:
    """An RGB picture of one prosocial state (``internalize.worlds.prosocial.ProsocialState``).

    Grey walls, a green goal, a blue boulder (a disc, while on the grid), the helped agent as a green triangle,
    the learner as a red one with a small blue disc while it carries the boulder.

    Returns:
      (7 * tile_size, 7 * tile_size, 3) uint8; row 0 of the image is the grid's top row (y = 0).
    """
    walls = _one_state_walls(state, tile_size, "render_prosocial_frame")
    tiles = _prosocial_tiles(int(tile_size))
    size = walls.shape[0]
    kinds = np.where(walls, 1, 0)
    gx, gy = (int(v) for v in np.asarray(state.goal_pos))
    kinds[gy, gx] = 2
    if bool(np.asarray(state.boulder_on_grid)):
        bx, by = (int(v) for v in np.asarray(state.boulder_pos))
        kinds[by, bx] = 3
    hx, hy = (int(v) for v in np.asarray(state.helped_pos))
    kinds[hy, hx] = 4 + int(np.asarray(state.helped_dir)) % 4
    lx, ly = (int(v) for v in np.asarray(state.learner_pos))
    kinds[ly, lx] = (12 if bool(np.asarray(state.carrying)) else 8) + int(np.asarray(state.learner_dir)) % 4
    cells = tiles[kinds]  # (size, size, tile, tile, 3)
    return cells.transpose(0, 2, 1, 3, 4).reshape(size * tile_size, size * tile_size, 3)


def _each_frame(frame: Any, states: Any, *args: Any) -> list[np.ndarray]:
    """``frame(state, *args)`` for each entry of a stacked state whose arrays share one leading (time) axis."""
    import jax  # local: the navigation renderer above needs no JAX

    host = jax.tree.map(np.asarray, states)
    if host.walls.ndim != 3:
        raise ValueError(f"states: expected one leading (time) axis, got walls of shape {host.walls.shape}.")
    return [frame(jax.tree.map(lambda a, t=t: a[t], host), *args) for t in range(host.walls.shape[0])]


def render_prosocial_frames(states: ProsocialState, tile_size: int = 32, params: Any = None) -> list[np.ndarray]:
    """Frames of a stacked prosocial state whose arrays share one leading axis (e.g. time); ``params`` unused."""
    return _each_frame(render_prosocial_frame, states, tile_size)


# --- The two-goal world ---------------------------------------------------------------------------------------


def render_two_goal_frame(state: Any, tile_size: int = 32, params: Any = None) -> np.ndarray:
    """An RGB picture of one two-goal state (``internalize.worlds.two_goal.TwoGoalState``): grey walls and blocks,
    a green and a blue goal, the learner as a red triangle. Returns (size * tile_size, size * tile_size, 3) uint8."""
    walls = _one_state_walls(state, tile_size, "render_two_goal_frame")
    tiles = _tiles(int(tile_size))
    size = walls.shape[0]
    kinds = np.where(walls, 1, 0)
    for code, pos in ((2, state.green_pos), (3, state.blue_pos)):
        x, y = (int(v) for v in np.asarray(pos))
        kinds[y, x] = code
    ax, ay = (int(v) for v in np.asarray(state.agent_pos))
    kinds[ay, ax] = 4 + int(np.asarray(state.agent_dir)) % 4
    blue = np.full((tile_size, tile_size, 3), BLUE, np.uint8)
    stack = np.stack([tiles["floor"], tiles["wall"], tiles["goal"], blue] + [tiles[f"agent{d}"] for d in range(4)])
    cells = stack[kinds]  # (size, size, tile, tile, 3)
    return cells.transpose(0, 2, 1, 3, 4).reshape(size * tile_size, size * tile_size, 3)


def render_two_goal_frames(states: Any, tile_size: int = 32, params: Any = None) -> list[np.ndarray]:
    """Frames of a stacked two-goal state whose arrays share one leading axis (e.g. time)."""
    return _each_frame(render_two_goal_frame, states, tile_size)


# --- The peer world of the empathy probe ---------------------------------------------------------------------

WHITE = (255, 255, 255)
_MARK_RADIUS = 0.09  # a small white dot on the peer: the viewer's marker only, never in any observation
_RGB = {0: RED, 1: GREEN, 2: BLUE, 5: GREY}  # minigrid colour codes (``internalize.worlds.grid``) -> RGB


@lru_cache(maxsize=16)
def _peer_tiles(tile_size: int, peer_object: int, peer_colour: int) -> np.ndarray:
    """(3 + 4 + 4, tile, tile, 3) uint8 tiles: floor, wall, goal, the learner (red) in each direction, the peer in
    each direction, drawn as the learner sees it (an agent's triangle or a ball, in its colour) plus the white
    marker dot (a ball has no direction: its four tiles are the same)."""
    from internalize.worlds import grid  # local: the navigation renderer above needs no JAX

    base = _tiles(tile_size)
    n = tile_size * _SUPERSAMPLE
    centres = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(centres, centres)
    colour = _RGB.get(int(peer_colour), BLUE)
    stack = [base["floor"], base["wall"], base["goal"]] + [base[f"agent{d}"] for d in range(4)]
    for direction in range(4):
        img = _floor(tile_size)
        if int(peer_object) == grid.AGENT:
            angle = 0.5 * np.pi * direction
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            img[_in_triangle(x, y, (_TRIANGLE - 0.5) @ rot.T + 0.5)] = colour
        else:
            img[(x - 0.5) ** 2 + (y - 0.5) ** 2 <= _BALL_RADIUS**2] = colour
        img[(x - 0.5) ** 2 + (y - 0.5) ** 2 <= _MARK_RADIUS**2] = WHITE
        stack.append(_downsample(img))
    return np.stack(stack)


def render_peer_frame(state: Any, tile_size: int = 32, params: Any = None) -> np.ndarray:
    """An RGB picture of one peer-world state (``internalize.worlds.peer.PeerState``).

    Grey walls and blocks, a green goal, the learner as a red triangle and the peer as the learner sees it
    (``params.peer_object`` / ``peer_colour``: a red or blue triangle, or a blue ball; an identical-looking red
    peer when ``params`` is None), marked with a small white dot so a viewer can tell the two apart.

    Returns:
      (size * tile_size, size * tile_size, 3) uint8; row 0 of the image is the grid's top row (y = 0).
    """
    from internalize.worlds import grid

    walls = _one_state_walls(state, tile_size, "render_peer_frame")
    look = (grid.AGENT, grid.RED) if params is None else (int(params.peer_object), int(params.peer_colour))
    tiles = _peer_tiles(int(tile_size), *look)
    size = walls.shape[0]
    kinds = np.where(walls, 1, 0)
    gx, gy = (int(v) for v in np.asarray(state.goal_pos))
    kinds[gy, gx] = 2
    px, py = (int(v) for v in np.asarray(state.peer_pos))
    kinds[py, px] = 7 + int(np.asarray(state.peer_dir)) % 4
    ax, ay = (int(v) for v in np.asarray(state.agent_pos))
    kinds[ay, ax] = 3 + int(np.asarray(state.agent_dir)) % 4
    cells = tiles[kinds]  # (size, size, tile, tile, 3)
    return cells.transpose(0, 2, 1, 3, 4).reshape(size * tile_size, size * tile_size, 3)


def render_peer_frames(states: Any, tile_size: int = 32, params: Any = None) -> list[np.ndarray]:
    """Frames of a stacked peer-world state whose arrays share one leading axis (e.g. time)."""
    return _each_frame(render_peer_frame, states, tile_size, params)
