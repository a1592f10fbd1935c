# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make run    install and start the service on an embedded SQLite file
#   make test   install the test dependencies and run the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.toml
PYTEST_ARGS ?=

.PHONY: run test venv install install-test lint typecheck bench clean system-deps system-deps-test catalogs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

system-deps:
	scripts/system-deps.sh runtime

system-deps-test:
	scripts/system-deps.sh test

install: venv system-deps
	$(BIN)/pip install -q -e .
	$(MAKE) -s catalogs

install-test: venv system-deps-test
	$(BIN)/pip install -q -e ".[dev]"
	@if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; fi
	$(MAKE) -s catalogs

catalogs:
	@if [ -d tracker/locales ]; then $(BIN)/pybabel compile -d tracker/locales -D messages >/dev/null || true; fi

run: install
	$(BIN)/tracker migrate --config $(CONFIG)
	$(BIN)/tracker serve --config $(CONFIG)

test: install-test
	$(BIN)/ruff check tracker carriers tests bench
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check tracker carriers tests bench
	$(BIN)/ruff format --check tracker carriers bench

typecheck: install-test
	$(BIN)/mypy

bench: install-test
	$(BIN)/pip install -q -e ".[bench]"
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache bench/out test-output
