"""Frames and GIFs: shape, colours of the goal / agent / wall / floor tiles, the agent's heading, GIF files."""

from __future__ import annotations

import os

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from internalize.worlds.navigation import NavState
from internalize.worlds.render import GREEN, GREY, RED, render_frame, render_frames, save_gif

DIR_TO_VEC = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])


def _state(direction: int = 0, agent=(2, 3), goal=(5, 1), blocks=((3, 3),)) -> NavState:
    walls = np.ones((7, 7), bool)
    walls[1:6, 1:6] = False
    for x, y in blocks:
        walls[y, x] = True
    return NavState(jnp.asarray(walls), jnp.array(goal), jnp.array(agent), jnp.asarray(direction), jnp.asarray(0))


def _is_red(colour: tuple[int, ...]) -> bool:
    """Red or a red/black anti-aliased blend that is mostly red."""
    return colour[0] >= 128 and colour[1] == colour[2] == 0


def _pixel(frame: np.ndarray, cell, frac, tile: int) -> tuple[int, ...]:
    """Colour at fractional position ``frac`` = (fx, fy) inside grid cell ``cell`` = (x, y)."""
    px = int(cell[0] * tile + frac[0] * tile)
    py = int(cell[1] * tile + frac[1] * tile)
    return tuple(int(v) for v in frame[py, px])


@pytest.mark.parametrize("tile", [8, 32])
def test_frame_shape_and_tile_colours(tile):
    frame = render_frame(_state(), tile_size=tile)
    assert frame.shape == (7 * tile, 7 * tile, 3) and frame.dtype == np.uint8
    centre = (0.5, 0.5)
    assert _pixel(frame, (5, 1), centre, tile) == GREEN  # goal
    assert _pixel(frame, (2, 3), centre, tile) == RED  # agent
    assert _pixel(frame, (3, 3), centre, tile) == GREY  # block
    assert _pixel(frame, (0, 4), centre, tile) == GREY  # border wall
    assert _pixel(frame, (4, 4), centre, tile) == (0, 0, 0)  # floor
    assert _pixel(frame, (4, 4), (0.5, 0.0), tile) == GREY  # grid line on the floor tile's top edge
    # Nothing but these colours (and anti-aliased red/black edges) appears.
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert {GREEN, RED, GREY, (0, 0, 0)} <= colours
    assert all(c[1] == c[2] for c in colours - {GREEN}), "unexpected colours"


@pytest.mark.parametrize("direction", [0, 1, 2, 3])
def test_agent_triangle_points_in_its_direction(direction):
    tile = 32
    frame = render_frame(_state(direction), tile_size=tile)
    fwd, side = DIR_TO_VEC[direction], DIR_TO_VEC[(direction + 1) % 4]

    def at(ahead: float, lateral: float) -> tuple[int, ...]:
        frac = 0.5 + ahead * fwd + lateral * side
        return _pixel(frame, (2, 3), frac, tile)

    assert _is_red(at(0.3, 0.0)), "the tip lies ahead"
    assert at(0.3, 0.2) == (0, 0, 0), "the triangle narrows toward its tip"
    assert at(-0.3, 0.2) == RED and at(-0.3, -0.2) == RED, "the base is wide, behind the centre"
    assert at(-0.45, 0.0) == (0, 0, 0), "nothing behind the base"


def test_frames_of_a_stacked_trajectory():
    states = [_state(0), _state(1, agent=(2, 4)), _state(1, agent=(5, 2), goal=(1, 1), blocks=())]
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    frames = render_frames(stacked, tile_size=16)
    assert len(frames) == 3
    for frame, state in zip(frames, states, strict=True):
        np.testing.assert_array_equal(frame, render_frame(state, 16))
    assert _pixel(frames[2], (5, 2), (0.5, 0.5), 16) == RED and _pixel(frames[2], (1, 1), (0.5, 0.5), 16) == GREEN
    assert _pixel(frames[2], (3, 3), (0.5, 0.5), 16) == (0, 0, 0), "the block is gone in the third layout"


def test_gif_is_written_atomically_and_reads_back(tmp_path):
    frames = [render_frame(_state(d), tile_size=16) for d in range(4)]
    path = save_gif(frames, tmp_path / "sub" / "turning.gif", fps=5)
    assert path == str(tmp_path / "sub" / "turning.gif")
    back = iio.imread(path, index=None)
    assert back.shape == (4, 7 * 16, 7 * 16, 3)
    for got, want in zip(back, frames, strict=True):
        np.testing.assert_array_equal(got[..., :3], want)
    assert os.listdir(tmp_path / "sub") == ["turning.gif"], "no temporary files left behind"
    # Overwriting replaces the file whole.
    save_gif(frames[:2], path, fps=5)
    assert iio.imread(path, index=None).shape[0] == 2


def test_bad_inputs_are_value_errors(tmp_path):
    frame = render_frame(_state())
    with pytest.raises(ValueError, match="frames"):
        save_gif([], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="frames"):
        save_gif([frame, frame[:8]], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="frames"):
        save_gif([frame.astype(np.float32)], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="fps"):
        save_gif([frame], tmp_path / "a.gif", fps=0)
    with pytest.raises(ValueError, match="tile_size"):
        render_frame(_state(), tile_size=2)
    batched = jax.tree.map(lambda a: jnp.stack([a, a]), _state())
    with pytest.raises(ValueError, match="render_frames"):
        render_frame(batched)
    assert not os.listdir(tmp_path)


def test_peer_frames_draw_each_state_and_the_peer_in_its_look():
    """A stacked peer trajectory renders to the frames of its states one by one; the peer is drawn in the look the
    learner sees (red agent, blue agent, blue ball) with the viewer's white dot, the learner as the red triangle."""
    from internalize.agents.scripted import run_policy_jit, shortest_path_policy
    from internalize.worlds.peer import PeerNavigation
    from internalize.worlds.peer import make_params as peer_params
    from internalize.worlds.render import WHITE, render_peer_frame, render_peer_frames

    env = PeerNavigation()
    looks = {}
    for similarity in ("identical", "colour", "kind"):
        params = peer_params(2, similarity=similarity)
        out = run_policy_jit(shortest_path_policy, jax.random.key(1), params, 1, 6, env)
        states = jax.tree.map(lambda x: x[:, 0], out.states)
        frames = render_peer_frames(states, 16, params)
        assert len(frames) == 6
        for t, frame in enumerate(frames):
            step = jax.tree.map(lambda a, t=t: a[t], states)
            np.testing.assert_array_equal(frame, render_peer_frame(step, 16, params))
        s = jax.tree.map(lambda a: np.asarray(a[0]), states)
        assert _pixel(frames[0], s.peer_pos, (0.5, 0.5), 16) == WHITE
        looks[similarity] = frames[0][int(s.peer_pos[1]) * 16: (int(s.peer_pos[1]) + 1) * 16,
                                      int(s.peer_pos[0]) * 16: (int(s.peer_pos[0]) + 1) * 16]
        assert _is_red(_pixel(frames[0], s.agent_pos, (0.5, 0.5), 16)), "the learner: a red triangle's centre"
    identical, colour, kind = (looks[k].reshape(-1, 3) for k in ("identical", "colour", "kind"))
    assert (identical[:, 0] == 255).any() and not (identical[:, 2] == 255).any() or (identical == 255).all(1).any()
    assert not (colour[:, 0] == 255).any() or (colour == 255).all(1).any()
    assert ((colour[:, 2] == 255) & (colour[:, 0] == 0)).any() and ((kind[:, 2] == 255) & (kind[:, 0] == 0)).any()
    assert not np.array_equal(colour, kind), "a blue agent and a blue ball look different"
    with pytest.raises(ValueError, match="render_peer_frames"):
        render_peer_frame(states, 16, params)
