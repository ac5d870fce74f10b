"""Test-session setup: a persistent XLA compilation cache, so programs compiled by one test are reused by the
next (the runner builds the same PPO/ISR programs in several tests). Set before JAX is imported.

Under pytest-xdist each worker gets its own cache directory: JAX writes cache entries without a lock, so two
processes sharing one could read each other's half-written files."""

import os
from pathlib import Path

_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation"
if os.environ.get("PYTEST_XDIST_WORKER"):
    _CACHE = _CACHE / os.environ["PYTEST_XDIST_WORKER"]
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import pytest  # noqa: E402  (after the cache settings, which must precede any JAX import)

# A hung test fails instead of stalling CI: fast tests get the ini default (pyproject.toml, ``timeout``), learning
# tests marked slow this longer one (minutes of training on 2 busy cores).
SLOW_TIMEOUT_S = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
