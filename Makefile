# Quarkpulse Remote — the two commands a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict

test: lint typecheck
	$(BIN)/pytest -q

# Run as modules from the repo root: the benchmarks import each other (bench.common).
bench: $(VENV)/.installed
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.session_setup
	$(BIN)/python -m bench.files_throughput
	$(BIN)/python -m bench.diagnostics
	$(BIN)/python -m bench.invoicing

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
