# Two entry points for people: `make run` and `make test`. Both build .venv
# from the pinned lock files first (only again when those change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install lock clean bench bench-smoke

run: $(VENV)/.installed  ## apply migrations to the SQLite file and serve on :8000
	$(BIN)/taskhub db upgrade
	$(BIN)/taskhub serve

# Test processes (pytest-xdist). Each runs its own servers and databases, so
# keep it low: PostgreSQL's default max_connections is 100.
TEST_WORKERS ?= 2

test: lint  ## lint, type-check, check layers, then the whole test suite
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(VENV)/.installed

$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "taskhub needs Python 3.11+")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The benchmark (bench/README.md): taskhub against the yardsticks in
# $(PEERS_DIR), with wrk. Pass options through BENCH_ARGS, e.g.
#   make bench BENCH_ARGS="--db postgres --sizes 10000,1000000"
PEERS_DIR ?= ../shared/bench-peers
BENCH_VENV := .bench-venv
BENCH_ARGS ?=

bench: $(VENV)/.installed $(BENCH_VENV)/.installed  ## the full benchmark (minutes)
	$(BENCH_VENV)/bin/python bench/run.py --peers-dir $(PEERS_DIR) \
	    --peers-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

bench-smoke: $(VENV)/.installed  ## seconds: does the benchmark harness still work?
	$(BIN)/python bench/run.py --smoke

$(BENCH_VENV)/.installed: $(PEERS_DIR)/requirements.txt bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
	    -r $(PEERS_DIR)/requirements.txt -r bench/requirements.txt
	touch $@

lock:  ## re-resolve the lock files from pyproject.toml (needs the network)
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet .
	{ echo "# Runtime dependencies, every version pinned (transitively). Regenerate with: make lock"; \
	  .lock-venv/bin/pip freeze --exclude taskhub; } > requirements.lock
	.lock-venv/bin/pip install --quiet ".[dev]"
	{ echo "# Test and lint dependencies on top of requirements.lock, pinned. Regenerate with: make lock"; \
	  echo "-r requirements.lock"; \
	  .lock-venv/bin/pip freeze --exclude taskhub | grep -vxFf requirements.lock; } > requirements-dev.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
