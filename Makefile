# The project's interface. `make test` works from a clean clone with only
# Python 3.11 on the machine: it bootstraps uv into .tools/ and syncs .venv
# from the committed uv.lock.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONHASHSEED := 0
WEB := static
NPM ?= npm
WEB_SOURCES := $(shell find $(WEB)/src $(WEB)/public -type f 2>/dev/null) $(WEB)/index.html \
	$(WEB)/vite.config.ts $(WEB)/tsconfig.json $(wildcard shared/entail/examples/*/*)

.PHONY: help install web emulators iac-tools browser run run-ha test test-fast test-pythons images lint format bench bench-load bench-failover clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml shared/pyproject.toml run_services/*/pyproject.toml devstack/pyproject.toml clients/python/pyproject.toml
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

# npm ci only when the lock or package.json changed since the last one
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && $(NPM) ci --no-audit --no-fund
	@touch $@

$(WEB)/dist/index.html: $(WEB)/node_modules/.installed $(WEB_SOURCES)
	cd $(WEB) && $(NPM) run build

web: $(WEB)/dist/index.html ## build the web app (static/) into static/dist

install: $(VENV)/.synced $(WEB)/dist/index.html ## create .venv with everything (runtime, tests, lint, bench) and build the web app

run: install ## start the local stack: Redis, backend :3005 (and the web app at /), worker :4002, relay (Ctrl-C stops it)
	$(VENV)/bin/entail up

run-ha: install ## the local stack on Redis primary + 2 replicas + 3 Sentinels (failover, durable acks)
	$(VENV)/bin/entail up --ha

emulators: ## the BigQuery (bqemulator) and Cloud Storage (gcp-storage-emulator) emulators in venvs of their own, for the tests
	PYTHON=$(PYTHON) tests/emulators/setup_bqemulator.sh
	PYTHON=$(PYTHON) tests/emulators/setup_gcs_emulator.sh

iac-tools: ## python-hcl2, checkov, check-jsonschema in venvs of their own (.tools/), for tests/cloud
	PYTHON=$(PYTHON) TOOLS=$(TOOLS) bash scripts/setup_iac_tools.sh

browser: install ## find or get the Chromium the e2e tests drive (system, playwright install, apt-get) into .tools/browser
	TOOLS=$(TOOLS) VENV=$(VENV) bash scripts/ensure_browser.sh

test: install emulators iac-tools browser ## the whole suite: vitest, pytest (unit, conformance, differential, integration, e2e) on 3.11, then unit + conformance on 3.12 and 3.13
	cd $(WEB) && $(NPM) test
	$(VENV)/bin/python -m pytest -n 2 -q --ignore=tests/images
	$(MAKE) --no-print-directory test-pythons

test-fast: $(VENV)/.synced ## unit and conformance tiers only, on 3.11 (well under a minute)
	$(VENV)/bin/python -m pytest -n 2 -q tests/unit tests/conformance

test-pythons: $(UV) ## unit and conformance tiers on each other supported Python found (3.12, 3.13)
	UV=$(UV) VENV=$(VENV) bash scripts/test_other_pythons.sh

images: $(VENV)/.synced ## build both service images and both functions from their real Dockerfiles (buildah, local stand-in bases) and boot them; needs root
	$(VENV)/bin/python -m pytest -n 2 -q -p no:randomly tests/images

lint: install ## ruff check, ruff format --check, mypy on the library and services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared/entail run_services/backend/entail_backend run_services/reasoning_worker/entail_worker devstack/entail_dev clients/python/entail_client
	cd $(WEB) && $(NPM) run lint

format: install ## apply ruff's formatting and autofixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## entail vs clingo: decision latency, transitive closure, same-generation; what why-not and reasons cost
	$(VENV)/bin/python bench/run.py
	$(VENV)/bin/python bench/why_not.py
	$(VENV)/bin/python bench/reasons.py

bench-load: install ## decisions/s and latency through the whole local stack
	$(VENV)/bin/python bench/load.py

bench-failover: install ## failover time and lost acknowledgements when the Redis primary is killed (5 runs)
	$(VENV)/bin/python bench/failover.py

clean: ## remove the environments and caches
	rm -rf $(VENV) $(VENV)-3.12 $(VENV)-3.13 $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis .entail $(WEB)/node_modules $(WEB)/dist
