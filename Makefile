# Two commands set everything up: `make demo` and `make test`.
# `make test-matrix` also runs the suite on every CPython 3.10-3.13 found here and on the
# dependency floors (constraints/floor.txt); see tools/matrix.py. MATRIX="3.10 floor" picks entries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-matrix lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev,livekit]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/rxrealtime demo --seconds 10

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check rxrealtime

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy rxrealtime

unit: $(VENV)/.installed-dev
	$(BIN)/pytest -q

test: lint typecheck unit

MATRIX ?=
test-matrix:
	$(PYTHON) tools/matrix.py $(MATRIX)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev,livekit,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-matrix .pytest_cache .mypy_cache .ruff_cache .hypothesis
