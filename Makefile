# Every target creates .venv and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test test-newest test-lowest lint format demo clean bench bench-concurrency bench-ray

help:
	@echo "make test   - the test suite on the newest allowed releases, then on the lowest"
	@echo "make test-newest - the suite in .venv, upgraded to the newest releases allowed"
	@echo "make test-lowest - the suite in .venv-lowest, on every dependency's lower bound"
	@echo "make lint   - ruff + mypy --strict"
	@echo "make format - ruff format + fixes"
	@echo "make demo   - stream a completion from the offline Together emulator"
	@echo "make bench  - completion and chat benchmarks against the peers in .venv-bench; writes benchmarks/RESULTS.md"
	@echo "make bench-concurrency - N = 1..1000 concurrent paced streams; its RESULTS.md section"
	@echo "make bench-ray - Ray batch generation with 1, 2, 4 actors against a rate cap"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

# Tested = installed: one run on what a fresh `pip install` resolves today, one on the lowest
# releases pyproject.toml allows.
test: test-newest test-lowest

# The venv is upgraded on every run, not only when it is created, so that it holds the newest
# releases within the declared ranges, as a user's fresh install does.
test-newest: $(STAMP)
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e . --group test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

LOWEST_VENV := .venv-lowest
LOWEST_STAMP := $(LOWEST_VENV)/.installed
LOWEST_CONSTRAINTS := $(LOWEST_VENV)/constraints.txt
# What does not depend on the versions and takes minutes: the benchmark, browser, fuzz and
# Ray-cluster tests run in the newest run only.
LOWEST_SKIP := --ignore=tests/unit_tests/test_benchmarks_smoke.py \
	--ignore=tests/unit_tests/test_benchmarks_concurrency_smoke.py \
	--ignore=tests/unit_tests/test_web_ui.py --ignore=tests/fuzz \
	--ignore=tests/unit_tests/ray/test_ray_jobs.py

$(LOWEST_STAMP): pyproject.toml tests/lowest_constraints.py
	rm -rf $(LOWEST_VENV)
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(PYTHON) tests/lowest_constraints.py pyproject.toml > $(LOWEST_CONSTRAINTS)
	$(LOWEST_VENV)/bin/python -m pip install --quiet -c $(LOWEST_CONSTRAINTS) -e . --group test
	touch $(LOWEST_STAMP)

test-lowest: $(LOWEST_STAMP)
	LOWEST_CONSTRAINTS=$(LOWEST_CONSTRAINTS) $(LOWEST_VENV)/bin/python -m pytest $(LOWEST_SKIP) $(PYTEST_ARGS)

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

# Upgraded like .venv: the benchmark measures the releases a fresh install gets (RESULTS.md
# lists them).
BENCH_UPGRADE := $(BENCH_VENV)/bin/python -m pip install --quiet --upgrade \
	--upgrade-strategy eager -e . langchain-openai langchain-together openai together matplotlib

bench: $(BENCH_STAMP)
	$(BENCH_UPGRADE)
	$(BENCH_VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

bench-concurrency: $(BENCH_STAMP)
	$(BENCH_UPGRADE)
	$(BENCH_VENV)/bin/python -m benchmarks.concurrency $(BENCH_CONCURRENCY_ARGS)

# Ray goes into the bench venv only for this target (it is large).
BENCH_RAY_STAMP := $(BENCH_VENV)/.installed-ray

$(BENCH_RAY_STAMP): $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[ray]"
	touch $(BENCH_RAY_STAMP)

bench-ray: $(BENCH_RAY_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.ray_scaling $(BENCH_RAY_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .mypy_cache .ruff_cache .pytest_cache
