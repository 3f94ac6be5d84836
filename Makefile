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
LOCK_VENV    := .venv-lock
LOCK_STAMP   := $(LOCK_VENV)/.installed

# Every Python package comes from a lock under requirements/ (make lock), pinned with its
# files' hashes: scripts/locks.py first checks that the lock matches what the project declares,
# then pip installs the pins as they are (--require-hashes --no-deps: nothing is resolved at
# install time) into a new venv, and pip check proves the set complete. The venv keeps a copy
# of the lock it was built from and is built anew only when the lock changes.
define install_lock # venv, lock name
	$(PYTHON) scripts/locks.py check $(2)
	if ! cmp -s requirements/$(2).txt $(1)/lock.txt; then \
	  $(PYTHON) -m venv --clear $(1); \
	  $(1)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/$(2).txt; \
	  cp requirements/$(2).txt $(1)/lock.txt; \
	fi
endef

.PHONY: help setup system-deps deploy-tools run test check lint pytest fuzz validate-deploy lambda bench bench-rotation bench-abuse lock lock-check hooks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): api/pyproject.toml requirements/app.txt requirements/build.in
	$(call install_lock,$(VENV),app)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e api
	$(BIN)/python -m pip check
	touch $@

setup: $(STAMP) ## create the venv and install the project with its dev tools, from requirements/app.txt

$(DEPLOY_STAMP): deploy/requirements-tools.txt requirements/deploy.txt requirements/deploy.in deploy/crds/package-lock.json \
		deploy/grafana/package-lock.json
	$(call install_lock,$(DEPLOY_VENV),deploy)
	$(DEPLOY_VENV)/bin/python -m pip check
	npm ci --prefix deploy/crds --no-audit --no-fund --loglevel=error
	npm ci --prefix deploy/grafana --no-audit --no-fund --loglevel=error
	touch $@

deploy-tools: system-deps $(DEPLOY_STAMP) ## the deployment validators (their own venv, the CRD schemas, Grafana's schema)

system-deps: ## PostgreSQL server binaries and redis-server (apt-get when missing)
	bash scripts/system-deps.sh

run: setup system-deps ## the API on :8000, with .env, a local PostgreSQL and Redis when none runs
	$(BIN)/ecomind dev --port $${PORT:-8000}

lint: setup ## ruff on api/, bench/, deploy/ and scripts/; mypy --strict on the secret layer, configuration, the engine, tokens and hashing, rotation
	cd api && $(BIN)/ruff check . ../bench ../deploy ../scripts && $(BIN)/ruff format --check . ../bench ../deploy ../scripts
	cd api && $(BIN)/mypy --strict app/secrets app/settings/loading.py app/data/engine.py app/data/failures.py app/data/roles.py app/auth/tokens.py app/auth/hashing.py app/rotation

# pytest on PYTEST_WORKERS processes (pytest-xdist; 0 runs in this one): each worker starts its own
# PostgreSQL, Redis and moto (api/tests/conftest.py), and tests marked xdist_group share a worker.
# No test collected is a failure (pytest's exit 5).
PYTEST_WORKERS ?= 2
define run_pytest # pytest arguments
	cd api && { $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(1); rc=$$?; } || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc
endef
# What make check leaves out: the markers of api/pyproject.toml.
FAST_TESTS := not slow and not deploy and not journey

pytest: setup system-deps deploy-tools ## the test suite (starts its own services); no test collected is a failure
	$(call run_pytest,$(PYTEST_ARGS))

test: lint pytest ## lint and the whole test suite (the fuzz run included)

check: lint system-deps ## lint and the fast tests: none marked slow, deploy or journey, no deploy tools needed
	$(call run_pytest,-m "$(FAST_TESTS)" $(PYTEST_ARGS))

fuzz: setup system-deps ## the bounded schemathesis run alone (fixed seed, every operation)
	$(call run_pytest,tests/api/test_fuzz.py)

validate-deploy: setup deploy-tools ## every deployment artifact through its owner's validator
	bash deploy/validate.sh

bench: setup system-deps ## the secret layer against the anchors, a regional outage, start-up costs, the metrics overhead (installs requirements/bench.txt); updates docs/benchmarks.md
	$(PYTHON) scripts/locks.py check bench
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/bench.txt
	$(BIN)/python -m pip check
	$(BIN)/python bench/run_bench.py --markdown docs/benchmarks.md

bench-rotation: setup system-deps ## the API under load through 10 DB and 3 JWT rotations; updates docs/benchmarks.md
	$(BIN)/python bench/rotation_under_load.py --markdown docs/benchmarks.md

bench-abuse: setup system-deps ## 40 parallel failed logins and good-login throughput (BEFORE=rev adds that API); updates docs/benchmarks.md
	$(BIN)/python bench/login_abuse.py $(if $(BEFORE),--before-rev $(BEFORE)) --markdown docs/benchmarks.md

lambda: setup ## build build/rotation-lambda.zip (rotation handlers and their dependencies)
	bash scripts/build-lambda.sh

# Not checked against requirements/uv.in: after a change of uv's version there, the uv already
# pinned writes the new uv.txt, and the next make lock runs the new one.
$(LOCK_STAMP): requirements/uv.txt
	$(PYTHON) -m venv --clear $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/uv.txt
	touch $@

# uv compiles one lock for every platform and Python >= 3.11 (--universal), each pin with the
# hashes of all its files. Pins already in a lock are kept unless UPGRADE=1 (or
# UPGRADE_PACKAGE=name); bench.txt is constrained to app.txt's pins, so the two agree.
UV_COMPILE = $(LOCK_VENV)/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) $(if $(UPGRADE_PACKAGE),--upgrade-package $(UPGRADE_PACKAGE))

lock: $(LOCK_STAMP) ## update requirements/*.txt from api/pyproject.toml, deploy/requirements-tools.txt, requirements/*.in
	$(UV_COMPILE) requirements/uv.in -o requirements/uv.txt
	$(UV_COMPILE) api/pyproject.toml requirements/build.in --extra dev -o requirements/app.txt
	$(UV_COMPILE) api/pyproject.toml requirements/build.in --extra dev --extra bench -c requirements/app.txt \
		-o requirements/bench.txt
	$(UV_COMPILE) deploy/requirements-tools.txt requirements/deploy.in -o requirements/deploy.txt
	$(PYTHON) scripts/locks.py stamp
	$(PYTHON) scripts/locks.py check

lock-check: ## fail when a lock is out of date with the requirements it is compiled from
	$(PYTHON) scripts/locks.py check

hooks: setup ## install the commit-time guard (.pre-commit-config.yaml) in .git/hooks
	$(BIN)/pre-commit install

clean: ## remove the venvs and local data
	rm -rf $(VENV) $(DEPLOY_VENV) $(LOCK_VENV) .data build
