# Carrel: `make run` starts a demo gateway, `make test` runs every check. Both install into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The third-party JavaScript applications the browser tests serve as vendors (package.json).
NODE_STAMP := node_modules/.installed-stamp

.PHONY: install js run test lint typecheck unit bench clean

$(STAMP): pyproject.toml gateway/rewrite/_urlscan.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Carrel needs Python 3.11 or newer (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# --omit=optional: pdf.js's canvas for node, which the browser tests do not use.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --omit=optional
	@touch $(NODE_STAMP)

js: $(NODE_STAMP)

run: install
	$(BIN)/gateway serve --demo

lint: install
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: install
	$(BIN)/mypy

unit: install js
	$(BIN)/pytest
	@# The rewriter once more on its pure-Python scanner, as an install without a C compiler runs it.
	CARREL_PURE_PYTHON=1 $(BIN)/pytest -q tests/test_rewrite_body.py tests/test_rewrite_stream.py \
		tests/test_rewrite_cli.py tests/test_proxy.py

test: lint typecheck unit

clean:
	rm -rf $(VENV) node_modules state .mypy_cache .ruff_cache .pytest_cache .hypothesis build gateway/rewrite/*.so
