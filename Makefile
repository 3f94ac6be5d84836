# EcoMind: `make run` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
DEPLOY_VENV  := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

.PHONY: help setup system-deps deploy-tools run test lint pytest fuzz validate-deploy lambda bench bench-rotation bench-abuse clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): api/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e 'api[dev]'
	touch $@

setup: $(STAMP) ## create the venv and install the project with its dev tools

$(DEPLOY_STAMP): deploy/requirements-tools.txt deploy/crds/package-lock.json
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --quiet --upgrade pip
	$(DEPLOY_VENV)/bin/pip install --quiet -r deploy/requirements-tools.txt
	npm ci --prefix deploy/crds --no-audit --no-fund --loglevel=error
	touch $@

deploy-tools: system-deps $(DEPLOY_STAMP) ## the deployment validators (their own venv, and the CRD schemas)

system-deps: ## PostgreSQL server binaries and redis-server (apt-get when missing)
	bash scripts/system-deps.sh

run: setup system-deps ## the API on :8000, with .env, a local PostgreSQL and Redis when none runs
	$(BIN)/ecomind dev --port $${PORT:-8000}

lint: setup ## ruff on api/, bench/ and deploy/; mypy --strict on the secret layer, settings, db, security, rotation
	cd api && $(BIN)/ruff check . ../bench ../deploy && $(BIN)/ruff format --check . ../bench ../deploy
	cd api && $(BIN)/mypy --strict app/secrets app/settings.py app/db.py app/security.py app/pg.py app/rotation

pytest: setup system-deps deploy-tools ## the test suite (starts its own services); no test collected is a failure
	cd api && { $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; } || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

test: lint pytest ## lint and the whole test suite (the fuzz run included)

fuzz: setup system-deps ## the bounded schemathesis run alone (fixed seed, every operation)
	cd api && { $(BIN)/pytest tests/api/test_fuzz.py; rc=$$?; } || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

validate-deploy: setup deploy-tools ## every deployment artifact through its owner's validator
	bash deploy/validate.sh

bench: setup ## the secret layer against the anchors (installs the bench extra); updates docs/benchmarks.md
	$(BIN)/pip install --quiet -e 'api[dev,bench]'
	$(BIN)/python bench/run_bench.py --markdown docs/benchmarks.md

bench-rotation: setup system-deps ## the API under load through 10 DB and 3 JWT rotations; updates docs/benchmarks.md
	$(BIN)/python bench/rotation_under_load.py --markdown docs/benchmarks.md

bench-abuse: setup system-deps ## 40 parallel failed logins and good-login throughput (BEFORE=rev adds that API); updates docs/benchmarks.md
	$(BIN)/python bench/login_abuse.py $(if $(BEFORE),--before-rev $(BEFORE)) --markdown docs/benchmarks.md

lambda: setup ## build build/rotation-lambda.zip (rotation handlers and their dependencies)
	bash scripts/build-lambda.sh

clean: ## remove the venv and local data
	rm -rf $(VENV) $(DEPLOY_VENV) .data build
