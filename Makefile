# kilod: `make demo` runs the demo, `make test` runs every test. Both set everything up first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck check image bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

image: $(STAMP)
	$(BIN)/kilod images build sandbox proxy

demo: image
	$(BIN)/kilod demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: image lint typecheck
	$(BIN)/pytest -ra

bench: image
	$(BIN)/python bench/start_latency.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/setup_cache.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
