# Everything the project needs is installed by these targets; nothing by hand.
#   make install   .venv with the package and its dev tools, anvil and solc-js in node_modules
#   make test      lint, type-check and the whole test suite (what CI runs)
#   make check     the same without the tests marked slow (faults, crashes, fuzzing, the demo):
#                  the quick loop while working; run make test before pushing
#   make demo      the gateway with a local dev chain and an end-to-end payment
# check spreads the tests over TEST_WORKERS processes (pytest-xdist, one per CPU by default),
# each with its own PostgreSQL database, Redis database and anvil node; TEST_WORKERS=0 runs them
# in one process. make test (and plain `pytest`) stays serial: the fault tests time real
# processes against each other and want the machine to themselves.

PYTHON ?= python3
TEST_WORKERS ?= auto
# A whole test file per worker: module fixtures (the browser, a live gateway) start once.
XDIST := -n $(TEST_WORKERS) --maxprocesses 8 --dist loadfile
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install test check lint demo contracts bench clean chromium

install: $(VENV)/.installed node_modules/.installed chromium

$(VENV)/.installed: pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e clients/python
	touch $@

# Debian's Chromium for the cashier's browser tests (Playwright drives it; no browser download).
chromium:
	bash scripts/install_chromium.sh

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(BIN)/ruff check src tests bench clients
	$(BIN)/ruff format --check src tests bench clients
	$(BIN)/mypy
	$(BIN)/mypy clients/python/src

test: lint
	$(BIN)/pytest

check: lint
	$(BIN)/pytest -m "not slow" $(XDIST)

# DEMO_ARGS, e.g. "--exit-when-done --port 8100" (the e2e test uses it).
demo: install
	$(BIN)/stablegate demo $(DEMO_ARGS)

contracts: node_modules/.installed
	node scripts/compile_contracts.mjs

clean:
	rm -rf $(VENV) node_modules .stablegate
