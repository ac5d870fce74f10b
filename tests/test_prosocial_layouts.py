"""Prosocial layouts: tree banks, the n_walls question, placements, reproducibility, user maps.

The n_walls question: docs/paper-vs-reference.md, 'Prosocial layouts'."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from internalize.worlds import prosocial_layouts as pl

DIRS = ((1, 0), (-1, 0), (0, 1), (0, -1))


def _component(free: np.ndarray, start) -> np.ndarray:
    """Independent host-side flood fill (x, y) -> (7, 7) bool."""
    seen = np.zeros_like(free)
    todo = [tuple(int(v) for v in start)]
    seen[todo[0][1], todo[0][0]] = True
    while todo:
        x, y = todo.pop()
        for dx, dy in DIRS:
            nx, ny = x + dx, y + dy
            if free[ny, nx] and not seen[ny, nx]:
                seen[ny, nx] = True
                todo.append((nx, ny))
    return seen


def _degree(free: np.ndarray) -> np.ndarray:
    p = np.pad(free, 1).astype(int)
    return (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) * free


def _is_tree(walls: np.ndarray) -> bool:
    free = ~walls
    edges = int((free[:, 1:] & free[:, :-1]).sum() + (free[1:] & free[:-1]).sum())
    start = np.argwhere(free)[0][::-1]
    return edges == free.sum() - 1 and _component(free, start).sum() == free.sum()


def _windows(walls: np.ndarray) -> np.ndarray:
    """Equal adjacent pairs around each 2x2 window's cycle, (6, 6)."""
    a, b, c, d = walls[:-1, :-1], walls[:-1, 1:], walls[1:, :-1], walls[1:, 1:]
    return (a == b).astype(int) + (b == d) + (d == c) + (c == a)


@pytest.fixture(scope="module")
def bank() -> np.ndarray:
    return pl.layout_bank()


def test_default_bank_is_distinct_sorted_seven_wall_trees(bank):
    assert bank.dtype == bool and bank.shape[1:] == (7, 7) and 900 <= len(bank) <= 1020  # 1,020 exist in all
    assert [w.tobytes() for w in bank] == sorted({w.tobytes() for w in bank}), "distinct and sorted"
    assert bank[:, 0].all() and bank[:, -1].all() and bank[:, :, 0].all() and bank[:, :, -1].all()
    assert (bank[:, 1:-1, 1:-1].sum(axis=(1, 2)) == 7).all()
    assert all(_is_tree(w) for w in bank)
    # The module's proof: 7-wall trees need walls touching only diagonally (a checkerboard 2x2 window).
    assert all((_windows(w) == 0).any() for w in bank)


def test_reference_bank_has_eight_walls_trees_and_the_2x2_rule():
    bank = pl.layout_bank(8, rule="reference")
    assert 1000 <= len(bank) <= 1048 and (bank[:, 1:-1, 1:-1].sum(axis=(1, 2)) == 8).all()
    assert all(_is_tree(w) and (_windows(w) == 2).all() for w in bank)
    with pytest.raises(ValueError, match="n_walls: with wall_rule='reference' must be one of \\[8\\]"):
        pl.layout_bank(7, rule="reference")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"n_walls": 3}, "n_walls"), ({"n_walls": 7.0}, "n_walls"), ({"rule": "maze"}, "wall_rule"),
    ({"attempts": 0}, "attempts"),
])
def test_bad_generator_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        pl.generate_bank(**kwargs)


def test_same_seed_same_bank_other_seed_differs_and_dihedral_variants_are_in():
    a = pl.generate_bank(seed=3, attempts=300)
    assert np.array_equal(a, pl.generate_bank(seed=3, attempts=300))
    assert not np.array_equal(a, pl.generate_bank(seed=4, attempts=300))
    keys = {w.tobytes() for w in a}
    assert all(np.ascontiguousarray(np.rot90(w)).tobytes() in keys and np.fliplr(w).tobytes() in keys for w in a)
    plain = pl.generate_bank(seed=3, attempts=300, dihedral=False)
    assert len(plain) < len(a) and {w.tobytes() for w in plain} <= keys


def test_bank_does_not_depend_on_the_hash_seed():
    code = ("import hashlib; from internalize.worlds.prosocial_layouts import generate_bank; "
            "print(hashlib.sha256(generate_bank(seed=5, attempts=300).tobytes()).hexdigest())")
    digests = set()
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, JAX_PLATFORMS="cpu")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert digests == {hashlib.sha256(pl.generate_bank(seed=5, attempts=300).tobytes()).hexdigest()}


def test_cache_is_written_atomically_verified_and_regenerated_when_corrupt(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERNALIZE_CACHE_DIR", str(tmp_path))
    bank = pl.layout_bank(seed=9, attempts=200)
    files = sorted((tmp_path / "prosocial").iterdir())
    assert [f.suffix for f in files] == [".npy", ".sha256"], files
    path = files[0]
    assert "w7" in path.name and "v1" in path.name and np.array_equal(np.load(path), bank)
    # A flipped byte (still a loadable .npy: a layout's cell) is caught by the checksum, not used.
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    assert not np.array_equal(np.load(path), bank)
    pl._bank_cached.cache_clear()
    assert np.array_equal(pl.layout_bank(seed=9, attempts=200), bank)
    assert f"warning: {path}: sha256" in capsys.readouterr().err
    assert sorted(f.name for f in (tmp_path / "prosocial").iterdir()) == [f.name for f in files], "no temp files"
    assert np.array_equal(np.load(path), bank)


def test_placements_follow_the_rules_over_thousands_of_draws(bank):
    n = 4096
    keys = jax.random.split(jax.random.key(0), n)
    index = np.asarray(jax.random.randint(jax.random.key(1), (n,), 0, len(bank)))
    place = jax.jit(jax.vmap(pl.sample_placement))(keys, bank[index])
    p = jax.tree.map(np.asarray, place)
    helped_in_a = with_goal = 0
    for i in range(n):
        walls = bank[index[i]]
        free = ~walls
        deg = _degree(free)
        b, h, g, lr = (tuple(p.boulder[i]), tuple(p.helped[i]), tuple(p.goal[i]), tuple(p.learner[i]))
        assert len({b, h, g, lr}) == 4 and all(free[y, x] for x, y in (b, h, g, lr))
        assert deg[b[1], b[0]] == deg.max() >= 3
        assert deg[h[1], h[0]] == deg[g[1], g[0]] == deg[lr[1], lr[0]] == 1, "agents and goal on leaves"
        rest = free.copy()
        rest[b[1], b[0]] = False
        side_h = _component(rest, h)
        assert not side_h[g[1], g[0]], "the boulder separates the helped agent from its goal"
        assert not side_h[lr[1], lr[0]], "the learner is never on the helped agent's side"
        assert _component(free, h)[g[1], g[0]], "solvable once the boulder is gone"
        first = np.argwhere(rest)[0]
        helped_in_a += side_h[first[0], first[1]]
        with_goal += _component(rest, g)[lr[1], lr[0]]
    assert 0.45 < helped_in_a / n < 0.55, "helped agent in A with p = 0.5"
    assert 0.1 < with_goal / n < 0.9, "the learner is sometimes with the goal, sometimes in a third branch"
    assert set(np.unique(p.helped_dir)) == set(np.unique(p.learner_dir)) == {0, 1, 2, 3}
    again = jax.jit(pl.sample_placement)(keys[7], bank[index[7]])
    assert all(np.array_equal(np.asarray(x), y[7]) for x, y in zip(again, p, strict=True))


VALID = """
#######
#H.#..#
##.#G.#
#..B..#
#.###.#
#..L..#
#######
"""


def test_user_layout_parses_with_spaces_and_positions():
    user = pl.parse_layout(VALID)
    assert (user.boulder, user.helped, user.goal, user.learner) == ((3, 3), (1, 1), (4, 2), (3, 5))
    assert user.walls.sum() == 24 + 6 and not user.walls[3, 3]
    spaced = [" ".join(row) for row in VALID.split()]
    assert np.array_equal(pl.parse_layout(spaced).walls, user.walls)


@pytest.mark.parametrize(("text", "message"), [
    (VALID.replace("B", "."), "layout: needs exactly one boulder 'B', found no 'B'"),
    (VALID.replace("H", "."), "helped agent 'H'"),
    (VALID.replace("G", "."), "goal 'G'"),
    (VALID.replace("#..L", "#L.L"), "found 2 cells with 'L'"),
    (VALID.replace("#H.", "#H?"), "unknown character '\\?' at row 1, column 2"),
    ("\n".join(VALID.split()[:6]), "must be 7 rows of 7 cells"),
    (VALID.replace("#######\n#H", "#.#####\n#H", 1), "outer ring"),
    (VALID.replace("#H.#", "#H##").replace("##.#G", "####G"), "unsolvable: the helped agent H"),
    (VALID.replace("#..B..#\n#.###.#\n#..L..#", "#..B..#\n#######\n#..L..#"), "learner L at \\(3, 5\\) can never"),
])
def test_bad_user_layouts_are_clear_value_errors(text, message):
    with pytest.raises(ValueError, match=message):
        pl.parse_layout(text)
