# The two commands a newcomer needs:  make run   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= quick
OUT ?= runs

.PHONY: setup run demo test test-fast lint bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/internalize reproduce --preset $(PRESET) --out $(OUT)

demo: setup
	$(VENV)/bin/internalize demo --out $(OUT)/demo

# Two passes. The fast tests spend most of their time compiling XLA programs, not running them: at XLA's backend
# optimisation level 0 they compile in about half the time (a tiny experiment's programs: 20 s instead of 36 s; their
# floats may differ in the last bits, as they would on another machine). The learning tests (marked slow) then run
# at the default level, the one `internalize run` uses. Both passes always run; the target fails if either does.
# `make test-fast` is the first pass without the tests marked expensive (end-to-end runs of tiny experiments, training
# runs, subprocesses and kills): the quick check while editing. Every pass prints its 15 slowest tests.
FAST_XLA_FLAGS := --xla_backend_optimization_level=0
PYTEST := $(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder --durations=15
FAST_XLA := XLA_FLAGS="$(FAST_XLA_FLAGS) $$XLA_FLAGS"
FAST_PASS := $(FAST_XLA) $(PYTEST) -m "not slow"

# ruff (pyflakes, pycodestyle, isort, bugbear; pyproject.toml's [tool.ruff]) runs first, in a second.
test: setup
	@$(VENV)/bin/ruff check .; lint=$$?; \
	$(FAST_PASS); fast=$$?; \
	$(PYTEST) -m slow; slow=$$?; \
	echo "make test: lint exit $$lint, fast tests exit $$fast, learning tests exit $$slow"; \
	[ $$lint -eq 0 ] && [ $$fast -eq 0 ] && [ $$slow -eq 0 ]

lint: setup
	$(VENV)/bin/ruff check .

test-fast: setup
	$(FAST_XLA) $(PYTEST) -m "not slow and not expensive"

# World throughput, then our PPO against Stable-Baselines3 (benchmarks/README.md; about 10 min on 2 cores). Each
# prints one JSON line. The first run also builds the SB3 environment, benchmarks/.venv-sb3 (setup_sb3_env.sh:
# Python 3.11 and about a minute of downloads from PyPI).
bench: setup
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/ppo_vs_sb3.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
