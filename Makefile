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

bench: $(VENV)/.installed
	$(BIN)/python bench/throughput.py
	$(BIN)/python bench/session_setup.py
	$(BIN)/python bench/files_throughput.py
	$(BIN)/python bench/diagnostics.py
	$(BIN)/python bench/invoicing.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
