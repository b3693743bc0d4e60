# Every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test lint format demo clean bench bench-concurrency

help:
	@echo "make test   - install into .venv and run the test suite"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make format - ruff format + fixes"
	@echo "make demo   - stream a completion from the offline Together emulator"
	@echo "make bench  - completion and chat benchmarks against the peers in .venv-bench; writes benchmarks/RESULTS.md"
	@echo "make bench-concurrency - N = 1..1000 concurrent paced streams; its RESULTS.md section"

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
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . langchain-openai langchain-together openai together matplotlib
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

bench-concurrency: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
