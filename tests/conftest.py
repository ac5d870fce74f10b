"""Test-session setup: a persistent XLA compilation cache, so programs compiled by one test are reused by the
next (the runner builds the same PPO/ISR programs in several tests). Set before JAX is imported.

One cache for the whole session: the pytest-xdist workers and the CLI subprocesses the tests start inherit these
variables, so a program compiled in one process is loaded by the others. A size limit turns on JAX's file lock
(filelock) around every cache read and write, so no process reads another's half-written entry."""

import os
from pathlib import Path

_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 * 2**30))

import pytest  # noqa: E402  (after the cache settings, which must precede any JAX import)

# A hung test fails instead of stalling CI: fast tests get the ini default (pyproject.toml, ``timeout``), learning
# tests marked slow this longer one (minutes of training on 2 busy cores).
SLOW_TIMEOUT_S = 1800


# The files that take longest (seconds of one CI run, ``--durations=0``), handed to the pytest-xdist workers first
# (with ``--dist loadfile --no-loadscope-reorder``, as the Makefile runs them): a long file started last would
# leave one worker computing alone at the end. Learning files (marked slow) go first as well. Any other order
# is correct, only slower.
HEAVIEST_FIRST = ("test_internalization.py", "test_prosocial_learning.py", "test_ray_backend.py", "test_experiments.py",
                  "test_empathy_study.py", "test_run_lock.py",
                  "test_layout.py",
                  "test_empathy.py", "test_caregiver_experiments.py", "test_condition_wiring.py", "test_isr.py",
                  "test_integrity.py", "test_ppo_learning.py", "test_sweep.py", "test_watch.py", "test_ppo.py",
                  "test_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order
