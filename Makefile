# Every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test lint format demo clean bench bench-concurrency bench-ray

help:
	@echo "make test   - install into .venv and run the test suite"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make format - ruff format + fixes"
	@echo "make demo   - stream a completion from the offline Together emulator"
	@echo "make bench  - benchmark against the peers in .venv-bench; writes benchmarks/RESULTS.md"
	@echo "make bench-concurrency - N = 1..1000 concurrent paced streams; its RESULTS.md section"
	@echo "make bench-ray - Ray batch generation with 1, 2, 4 actors against a rate cap"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy langchain_together_stream

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

demo: $(STAMP)
	$(BIN)/together-stream --emulator "Alan Turing was"

# Peers go into their own venv, never into the package's dependencies.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . langchain-openai openai together matplotlib
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

bench-concurrency: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

# Ray goes into the bench venv only for this target (it is large).
BENCH_RAY_STAMP := $(BENCH_VENV)/.installed-ray

$(BENCH_RAY_STAMP): $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[ray]"
	touch $(BENCH_RAY_STAMP)

bench-ray: $(BENCH_RAY_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.ray_scaling $(BENCH_RAY_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
