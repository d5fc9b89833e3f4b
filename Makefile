# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv at the repo root and install what they need.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run cluster test lint typecheck pytest conformance bench clean graphiql

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.test-deps: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# GraphiQL's npm packages, pinned in graphql_app/graphiql/package-lock.json: `npm ci` the
# first time, and again after the lock file changes; otherwise it does nothing.
graphiql: | $(BIN)/python
	$(BIN)/python -m graphql_app.graphiql

run: $(VENV)/.run-deps graphiql
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=1 $(BIN)/python manage.py load_demo_decisions
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# Three nodes behind a real Traefik on https://127.0.0.1:8443, with Redis and
# Prometheus (http://127.0.0.1:9090); Ctrl-C stops everything. Files and logs go
# to .cluster/; see docs/deploy.md. The script installs redis-server and
# prometheus with apt when they are missing.
cluster: $(VENV)/.test-deps graphiql
	sh tests/system_packages.sh
	$(BIN)/python -m deploy.cluster

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.test-deps
	$(BIN)/mypy

pytest: $(VENV)/.test-deps graphiql
	sh tests/system_packages.sh
	$(BIN)/pytest

# The MCP server suites, then the authorization server scenarios against oauth_app.
conformance: $(VENV)/.test-deps
	$(BIN)/python -m tests.conformance.run --serve
	$(BIN)/python -m tests.conformance.authorization

test: lint typecheck pytest conformance

# Our node beside the official SDK's own server, and the cluster (twelve scenarios),
# about twelve minutes: writes docs/benchmarks.md and docs/benchmarks.png.
bench: $(VENV)/.test-deps
	$(BIN)/python -m bench --out docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
