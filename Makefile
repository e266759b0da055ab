# Every install step lives here: `make test` and `make demo` work from a fresh clone with only Python.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install lint typecheck test demo bench emulator clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

demo: install
	$(BIN)/python example_dags/run_demo.py

bench: install
	$(BIN)/python benchmarks/bench_embed_throughput.py
	$(BIN)/python benchmarks/bench_incremental_reembed.py

emulator: install
	$(BIN)/python -m airflow_provider_gemini_milvus.testing.gemini_emulator --port 8765

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info
