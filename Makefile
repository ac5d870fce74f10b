# The two commands a newcomer needs:  make run   and   make test
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= quick
OUT ?= runs

.PHONY: setup run demo test test-fast bench clean

setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/internalize reproduce --preset $(PRESET) --out $(OUT)

demo: setup
	$(VENV)/bin/internalize demo --out $(OUT)/demo

test: setup
	$(PY) -m pytest -q -n auto --dist loadfile

test-fast: setup
	$(PY) -m pytest -q -n auto --dist loadfile -m "not slow"

bench: setup
	$(PY) benchmarks/env_throughput.py
	$(PY) benchmarks/ppo_vs_sb3.py

clean:
	rm -rf $(VENV) .pytest_cache build dist src/*.egg-info
