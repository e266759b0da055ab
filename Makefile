# Every install step lives here: `make test` and `make demo` work from a fresh clone with only Python.
# pip is never upgraded: the pip bundled with Python (23.2 with Python 3.11) is what users have, so it is
# what installs the provider here too.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The second environment: the lowest supported versions of the dependencies, pinned in the constraints file.
LOWEST_VENV  := .venv-lowest
LOWEST_BIN   := $(LOWEST_VENV)/bin
LOWEST_STAMP := $(LOWEST_VENV)/.installed
CONSTRAINTS_LOWEST := ci/constraints-lowest.txt

.PHONY: install check-lite lint typecheck test install-lowest test-lowest test-server dist docs demo bench bench-peers emulator test-distributed check-spend-view clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The provider's default Milvus is Lite: prove the install (with the venv's own pip) brought it.
check-lite: install
	@$(BIN)/python -m pip --version
	$(BIN)/python -c "import milvus_lite; print('milvus_lite', milvus_lite.__version__, 'is installed')"

# The same ruff, import contract and mypy that .pre-commit-config.yaml runs (it calls these binaries).
# lint-imports checks the layers in pyproject.toml's [tool.importlinter]: imports point down, never in a circle.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test: check-lite lint typecheck
	$(BIN)/pytest

$(LOWEST_BIN)/python:
	$(PYTHON) -m venv $(LOWEST_VENV)

$(LOWEST_STAMP): pyproject.toml $(CONSTRAINTS_LOWEST) | $(LOWEST_BIN)/python
	$(LOWEST_BIN)/python -m pip install --quiet -c $(CONSTRAINTS_LOWEST) -e '.[test]'
	touch $(LOWEST_STAMP)

install-lowest: $(LOWEST_STAMP)

test-lowest: install-lowest
	$(LOWEST_BIN)/python -c "import milvus_lite"
	$(LOWEST_BIN)/python -m pip list | grep -i -E '^(apache-airflow|google-genai|pymilvus|milvus-lite|numpy) '
	$(LOWEST_BIN)/pytest

# A real Milvus server (2.3.5 standalone: embedded etcd, local storage) from the PyPI `milvus` package, no Docker.
# Installed with --no-deps into its own folder: its `client` extra pins an old pymilvus. ci/milvus_server.py starts
# it on 127.0.0.1:19530 for the session and stops it; if it cannot install or start, the target says why and skips
# (exit 0), but a test that fails against a running server fails.
MILVUS_SERVER_DIR   := .venv-milvus-server
MILVUS_SERVER_STAMP := $(MILVUS_SERVER_DIR)/.installed
SERVER_TESTS        := tests/server

$(MILVUS_SERVER_STAMP):
	$(BIN)/python -m pip install --quiet --no-deps --target $(MILVUS_SERVER_DIR) milvus==2.3.5
	touch $(MILVUS_SERVER_STAMP)

test-server: install
	@if $(MAKE) --no-print-directory $(MILVUS_SERVER_STAMP); then \
		$(BIN)/python ci/milvus_server.py run --skip-if-unavailable -- $(BIN)/pytest $(SERVER_TESTS) --durations=5; \
	else \
		echo "test-server: SKIPPED: milvus==2.3.5 could not be installed into $(MILVUS_SERVER_DIR)"; \
	fi

# An sdist and a wheel in dist/, checked as PyPI would check them; the wheel must carry the LICENSE.
dist: install
	rm -rf dist build
	$(BIN)/python -m build
	$(BIN)/twine check --strict dist/*
	$(BIN)/python -c "import glob, sys, zipfile; \
	names = zipfile.ZipFile(glob.glob('dist/*.whl')[0]).namelist(); \
	sys.exit(0 if any(n.endswith('.dist-info/licenses/LICENSE') for n in names) else 'the wheel has no LICENSE')"

# The docs site (Sphinx, MyST pages, furo) with warnings as errors: a broken reference or a docstring Sphinx
# cannot read fails the build. The pinned tools go into .venv beside the package the API reference imports.
DOCS_STAMP := $(VENV)/.docs-installed

$(DOCS_STAMP): $(STAMP) docs/requirements.txt
	$(BIN)/python -m pip install --quiet -r docs/requirements.txt
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	rm -rf docs/_build/html docs/api/generated
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "docs: built docs/_build/html/index.html"

demo: install
	$(BIN)/python example_dags/run_demo.py

bench: install
	$(BIN)/python benchmarks/bench_embed_throughput.py
	$(BIN)/python benchmarks/bench_incremental_reembed.py
	$(BIN)/python benchmarks/bench_large_corpus.py
	$(BIN)/python benchmarks/bench_adaptive_concurrency.py
	@if $(MAKE) --no-print-directory $(MILVUS_SERVER_STAMP); then \
		$(BIN)/python ci/milvus_server.py run --skip-if-unavailable -- \
			sh -c '$(BIN)/python benchmarks/bench_bulk_import.py && $(BIN)/python benchmarks/bench_load.py'; \
	else \
		echo "bench_bulk_import: SKIPPED: milvus==2.3.5 could not be installed into $(MILVUS_SERVER_DIR)"; \
		$(BIN)/python benchmarks/bench_load.py; \
	fi
	$(MAKE) --no-print-directory bench-peers

# The provider side by side with what users would pick instead (LangChain's indexing API, LlamaIndex's
# IngestionPipeline, the seed's GeminiEmbeddingFunction + upserts), each peer in a virtualenv of its own under
# .venv-bench/ (their latest releases conflict on google-genai and pymilvus), installed with the pip that ships
# with Python from the exact pins in benchmarks/peers/requirements-<peer>.txt; rebuilt only when the pins change.
PEERS_DIR := .venv-bench
PEERS     := langchain llamaindex seed
# e.g. PEERS_ARGS=--quick (400 documents, one round) or "--only seed provider-dag"
PEERS_ARGS ?=

$(PEERS_DIR)/%/.installed: benchmarks/peers/requirements-%.txt
	rm -rf $(PEERS_DIR)/$*
	$(PYTHON) -m venv $(PEERS_DIR)/$*
	$(PEERS_DIR)/$*/bin/python -m pip install --quiet -r $<
	touch $@

bench-peers: install $(foreach peer,$(PEERS),$(PEERS_DIR)/$(peer)/.installed)
	$(BIN)/python benchmarks/peers/run_peers.py $(PEERS_ARGS)

emulator: install
	$(BIN)/python -m airflow_provider_gemini_milvus.testing.gemini_emulator --port 8765

# The sharded example DAG on Airflow's CeleryExecutor with Redis, two workers, S3 staging (moto) and a Milvus
# server. It reuses what `make test` and `make test-server` installed: .venv-distributed is laid over .venv and
# adds only the Celery provider and redis (~20 s), and the Milvus binary comes from the same install step as
# test-server's. ci/distributed/run.sh skips, saying why, when a component cannot be had here; a run that
# starts and then fails, fails. DISTRIBUTED_ARGS sizes the corpus (CI: 400 documents in 4 shards).
DISTRIBUTED_ARGS ?=

test-distributed: install
	@if $(MAKE) --no-print-directory $(MILVUS_SERVER_STAMP); then \
		bash ci/distributed/run.sh $(DISTRIBUTED_ARGS); \
	else \
		echo "test-distributed: SKIPPED: milvus==2.3.5 could not be installed into $(MILVUS_SERVER_DIR)"; \
	fi

# The spend view (docs/observability.md) in headless Chromium against a running `airflow api-server`, after real
# `airflow dags test` runs of the example DAGs on the emulator and Milvus Lite (ci/spend_view_check.py). Chromium is
# Debian's package, installed here when missing and this is root with apt-get; without it the target says so and
# skips (exit 0). SPEND_VIEW_ARGS="--screenshot docs/_static/spend-view.png" refreshes the docs' screenshot.
SPEND_VIEW_ARGS ?=

check-spend-view: install
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -n "$$CHROMIUM" ] || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		  { apt-get update -q >/dev/null 2>&1; apt-get install -y -q chromium >/dev/null 2>&1; } ; } || \
		echo "check-spend-view: Debian's chromium could not be installed here"
	$(BIN)/python ci/spend_view_check.py --skip-if-no-chromium $(SPEND_VIEW_ARGS)

clean:
	rm -rf $(VENV) $(LOWEST_VENV) .venv-distributed .distributed dist build .demo .spend-view .pytest_cache .mypy_cache .ruff_cache *.egg-info
	rm -rf docs/_build docs/api/generated .grimp_cache .import_linter_cache
	rm -rf $(MILVUS_SERVER_DIR) .milvus-server $(PEERS_DIR)
