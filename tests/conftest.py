"""Test-session setup: a persistent XLA compilation cache, so programs compiled by one test are reused by the
next (the runner builds the same PPO/ISR programs in several tests). Set before JAX is imported."""

import os
from pathlib import Path

_CACHE = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compilation"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
