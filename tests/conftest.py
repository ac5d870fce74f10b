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
