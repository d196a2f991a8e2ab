# Two commands set everything up: `make demo` and `make test`.
# `make test-matrix` also runs the suite on every CPython 3.10-3.13 found here and on the
# dependency floors (constraints/floor.txt); see tools/matrix.py. MATRIX="3.10 floor" picks entries.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-matrix lint typecheck unit bench clean livekit docs docs-serve wheel-test chromium nftables

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

# `make livekit` builds the pinned livekit-server the LiveKit tests run (tools/livekit/build.sh,
# needs Go; nothing to do once built). `make test` builds it first when Go is on PATH; without
# the binary those tests skip (and fail under CI=true).
LIVEKIT_SERVER := tools/livekit/bin/livekit-server
livekit: $(LIVEKIT_SERVER)
$(LIVEKIT_SERVER): tools/livekit/build.sh
	tools/livekit/build.sh

# The dashboard page test drives Debian's Chromium with Playwright (dev extra): installed
# here when missing and we are root with apt-get; otherwise that test skips naming the
# command (and fails under CI=true).
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; fi

# The impaired-network tests (tests/test_impaired_network.py: namespaces, tc, nftables) need
# root and the `nft` command: Debian's nftables is installed here when missing and we are root
# with apt-get; otherwise those tests skip naming what is missing (and fail under CI=true).
nftables:
	@if ! command -v nft >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nftables; fi

test: $(if $(shell command -v go 2>/dev/null),livekit) chromium nftables lint typecheck unit

# MATRIX picks entries ("3.10 floor"); MATRIX_JOBS runs that many entries at once.
MATRIX ?=
MATRIX_JOBS ?= 1
test-matrix:
	$(PYTHON) tools/matrix.py --jobs $(MATRIX_JOBS) $(MATRIX)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev,livekit,bench]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

# `make bench BENCH_ARGS=--strict` exits non-zero when a target is missed (CI of a
# performance change); BENCH_ARGS also takes suite names, --quick, --repeats N, --out DIR.
bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# `make docs` builds the documentation site into site/ with --strict: a broken link, an
# unresolved reference, a public name without a docstring or an operator without a
# marble diagram fails it (tools/docs/hooks.py). `make docs-serve` serves it on 127.0.0.1.
DOCS_ENV := NO_MKDOCS_2_WARNING=1
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	$(DOCS_ENV) $(BIN)/mkdocs build --strict

docs-serve: $(VENV)/.installed-docs
	$(DOCS_ENV) $(BIN)/mkdocs serve --strict -a 127.0.0.1:8000

# `make wheel-test`: build the sdist and the wheel, twine check, install the wheel with its
# dependencies in a fresh venv and run it (tests/test_wheel.py), and build the docs site
# (tests/test_docs_site.py). Not part of `make test`; .ci/run runs it after.
$(VENV)/.installed-release: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev,docs,release]'
	touch $@ $(VENV)/.installed-docs

wheel-test: $(VENV)/.installed-release
	RXREALTIME_PACKAGE_TESTS=1 $(DOCS_ENV) $(BIN)/pytest -q -m 'wheel or docs_build' \
		tests/test_wheel.py tests/test_docs_site.py

clean:
	rm -rf $(VENV) .venv-matrix .pytest_cache .mypy_cache .ruff_cache .hypothesis site
