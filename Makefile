# Carrel: `make run` starts a demo gateway, `make test` runs every check. Both install into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

IDP_OIDC := tests/idp/oidc
IDP_STAMP := $(IDP_OIDC)/node_modules/.installed-stamp
APPS := tests/apps
APPS_STAMP := $(APPS)/node_modules/.installed-stamp
IDP_CAS := tests/idp/cas
CAS_VENV := $(VENV)/cas
CAS_STAMP := $(CAS_VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit bench clean idp apps cas

$(STAMP): pyproject.toml gateway/rewrite/_urlscan.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Carrel needs Python 3.11 or newer (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# The OpenID Connect provider the sign-in tests run (node's oidc-provider, pinned by its lock
# file). Without npm the step says so and those tests skip (CI installs npm and requires them).
$(IDP_STAMP): $(IDP_OIDC)/package.json $(IDP_OIDC)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(IDP_OIDC) && npm ci --no-audit --no-fund --silent && touch node_modules/.installed-stamp; \
	else echo "npm not found: the OIDC sign-in tests will skip (apt-get install nodejs npm)"; fi

idp: $(IDP_STAMP)

# The CAS server the CAS sign-in tests run (django-cas-server, pinned by its requirements file),
# in a virtualenv of its own: Django's dependencies never meet the gateway's.
$(CAS_STAMP): $(IDP_CAS)/requirements.txt
	@test -x $(CAS_VENV)/bin/python || $(PYTHON) -m venv $(CAS_VENV)
	$(CAS_VENV)/bin/python -m pip install --quiet -r $(IDP_CAS)/requirements.txt
	@touch $(CAS_STAMP)

cas: $(CAS_STAMP)

# Real third-party JavaScript applications the browser tests serve as vendors (PDF.js and
# OpenSeadragon, pinned by the lock file). --omit=optional: pdf.js's canvas for node, unused.
# Without npm the step says so and those tests skip (CI installs npm and requires them).
$(APPS_STAMP): $(APPS)/package.json $(APPS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		cd $(APPS) && npm ci --no-audit --no-fund --omit=optional --silent && touch node_modules/.installed-stamp; \
	else echo "npm not found: the PDF.js and OpenSeadragon tests will skip (apt-get install nodejs npm)"; fi

apps: $(APPS_STAMP)

run: install
	$(BIN)/gateway serve --demo

lint: install
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench

typecheck: install
	$(BIN)/mypy

unit: install idp apps cas
	$(BIN)/pytest
	@# The rewriter once more on its pure-Python scanner, as an install without a C compiler runs it.
	CARREL_PURE_PYTHON=1 $(BIN)/pytest -q tests/test_rewrite_body.py tests/test_rewrite_stream.py \
		tests/test_rewrite_cli.py tests/test_proxy.py

test: lint typecheck unit

clean:
	rm -rf $(VENV) $(IDP_OIDC)/node_modules $(APPS)/node_modules state .mypy_cache .ruff_cache .pytest_cache .hypothesis build gateway/rewrite/*.so
