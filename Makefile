# Two entry points for people: `make run` and `make test`. Both build .venv
# from the pinned lock files first (only again when those change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install lock clean

run: $(VENV)/.installed  ## apply migrations to the SQLite file and serve on :8000
	$(BIN)/taskhub db upgrade
	$(BIN)/taskhub serve

test: lint  ## lint, type-check, check layers, then the whole test suite
	$(BIN)/pytest

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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
