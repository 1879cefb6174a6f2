# `make up` starts the embedded stack; `make test` runs the linters, the type checker and the
# tests. Each installs what it needs on a fresh Debian machine (as root): a virtualenv with the
# package (re-installed when pyproject.toml changes), the JupyterLab extension (built with npm),
# configurable-http-proxy (npm, into .venv/node) and, for the browser tests, Debian's Chromium.
#
#   make up [HOME_DIR=dir] [PORT=8000]
#   make test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHP := $(VENV)/node/node_modules/.bin/configurable-http-proxy
# the JupyterLab extension (Run as job, the Jobs panel), built with npm into its wheel
LAB_EXT := $(VENV)/share/jupyter/labextensions/workbench-lab/package.json
LAB_SRC := $(wildcard extensions/workbench-lab/*.json extensions/workbench-lab/pyproject.toml \
  extensions/workbench-lab/src/* extensions/workbench-lab/style/* \
  extensions/workbench-lab/schema/* extensions/workbench-lab/workbench_lab/*.py)
APT := DEBIAN_FRONTEND=noninteractive apt-get -q
HOME_DIR ?=
PORT ?=

.PHONY: up test install reach

# Tenant SQL datasets need a PostgreSQL superuser URL; use the local server when one answers.
LOCAL_PG := postgresql://postgres@127.0.0.1:5432/postgres

up: install
	@if [ -z "$$WORKBENCH_TENANT_PG_URL" ] && command -v pg_isready >/dev/null \
	    && pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "tenant SQL datasets: PostgreSQL at 127.0.0.1:5432"; \
	  export WORKBENCH_TENANT_PG_URL=$(LOCAL_PG); fi; \
	$(BIN)/workbench up $(if $(HOME_DIR),--home $(HOME_DIR)) $(if $(PORT),--port $(PORT))

test: install /usr/bin/chromium
	$(BIN)/ruff check workbench tests benchmarks extensions
	$(BIN)/ruff format --check workbench tests benchmarks extensions
	$(BIN)/mypy
	$(BIN)/mypy extensions/workbench-lab/workbench_lab
	$(BIN)/pytest -q

install: $(STAMP) $(CHP) $(LAB_EXT) reach

# As root, notebook servers and jobs run as per-user accounts, which import the workbench from
# this checkout (an editable install): they must list it and reach it through every directory
# above. A checkout that others cannot read (`mktemp -d` makes directories of mode 0700) is
# opened to them, its parents for search alone (o+x: entering, not listing), and said so.
reach:
	@[ "$$(id -u)" != 0 ] || { d="$(CURDIR)"; need=rx; while [ "$$d" != / ]; do \
	  case "$$need:$$(stat -c %A "$$d")" in rx:*r?[xt]|x:*[xt]) ;; *) chmod o+$$need "$$d" && \
	    echo "workbench: chmod o+$$need $$d (notebook accounts must reach $(CURDIR))";; esac; \
	  need=x; d="$$(dirname "$$d")"; done; }

$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { $(APT) update && $(APT) install -y python3-venv; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(LAB_EXT): $(LAB_SRC) | $(STAMP)
	$(BIN)/python -m pip install -q ./extensions/workbench-lab
	touch $@

# The same install `workbench up` would do on first start, done here so tests need no network.
$(CHP): | $(STAMP)
	@command -v npm >/dev/null || { $(APT) update && $(APT) install -y nodejs npm; }
	$(BIN)/python -m workbench.embedded.proxy

/usr/bin/chromium:
	$(APT) update && $(APT) install -y chromium
