# One command to set up and run the demo, one to set up and pass the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ctpipe-installed

.PHONY: install demo test test-fast lint screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/ctpipe demo

# Two workers (one per core): the slow end-to-end replays run beside the rest.
PYTEST_WORKERS ?= 2

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

test-fast: install
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal -m "not slow"

screenshots: install
	scripts/screenshot-flow-run.sh
	scripts/screenshot-monitoring-report.sh

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf .ctpipe out .pytest_cache
