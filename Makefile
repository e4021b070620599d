# The two commands a newcomer needs:  `make up`  and  `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -euo pipefail -c
VENV := .venv
PY := $(VENV)/bin/python
ENV := . .daybreak/env
PYTEST_ARGS ?= -q

.PHONY: up down test venv infra services demo lint lock bench-ingest

## up: install, start PostgreSQL + Kafka + the services, run the demo, then `daybreak doctor`
up: venv infra services demo

## test: install, start PostgreSQL + Kafka, run the whole test suite
test: venv infra
	bash scripts/install-browser.sh
	$(ENV)
	$(VENV)/bin/pytest $(PYTEST_ARGS)

venv: $(VENV)/.installed
	# the portal's GOV.UK Design System build and axe-core (npm; served offline afterwards)
	bash scripts/install-frontend.sh

$(VENV)/.installed: pyproject.toml requirements/dev.lock
	test -x $(PY) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	# every package at its pinned version, each file checked against its sha256
	$(PY) -m pip install -q --require-hashes -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

## lock: re-pin every dependency (with hashes) after a change to pyproject.toml
lock: venv
	$(VENV)/bin/uv pip compile -q pyproject.toml requirements/build.in --extra dev \
	  --generate-hashes --universal --python-version 3.11 -o requirements/dev.lock
	$(VENV)/bin/uv pip compile -q pyproject.toml requirements/build.in \
	  --generate-hashes --universal --python-version 3.11 -o requirements/runtime.lock

infra:
	bash scripts/infra.sh up

services:
	bash scripts/services.sh start

demo:
	$(ENV)
	$(VENV)/bin/daybreak demo
	# fails `make up` when the configuration would leave a reported child with nobody told
	$(VENV)/bin/daybreak doctor

down:
	bash scripts/services.sh stop
	bash scripts/infra.sh down

lint: venv
	$(VENV)/bin/ruff check schemas services tests bench migrations
	$(VENV)/bin/mypy

bench-ingest: venv infra services
	$(ENV)
	$(PY) -m bench.ingest
