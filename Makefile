# The project's commands. Every target installs what it needs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# node_modules/.bin comes before the system's: its `node` is the pinned LTS (package.json) that
# runs the CDK CLI, the CDK app's jsii kernel and fauxqs.
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
CDK := npx --no-install cdk
# Every Python package comes from a hashed lock: nothing is resolved on the day.
PIP_INSTALL := $(PY) -m pip install -q --disable-pip-version-check
DEV_LOCK := requirements-dev.lock
LAMBDA_LOCK := functions/requirements.lock

.PHONY: install chromium build lock test lint typecheck unit synth deploy destroy diff preflight demo local bench clean

# ---------------------------------------------------------------- install
# The lock pins pip and setuptools too; the project is built without build isolation, so
# setuptools is the locked one rather than whatever the index serves that day.
$(VENV)/.installed: $(DEV_LOCK) pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes -r $(DEV_LOCK)
	$(PIP_INSTALL) --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the web page's browser test (Playwright never downloads a browser here).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@if [ -n "$$IMGSEARCH_CHROMIUM" ] || command -v chromium >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	else echo "no chromium and no apt-get: set IMGSEARCH_CHROMIUM to a Chromium/Chrome binary for the browser test"; fi

install: $(VENV)/.installed node_modules/.installed chromium ## Python venv, Node tools, Chromium

# Lambda runtime dependencies from their lock, installed once for the Lambda platform (no Docker).
build: install ## Lambda dependencies for both architectures
	$(PY) -m infra.lambda_deps --lock $(LAMBDA_LOCK)

# Rewrites both locks from the requirements files, keeping the pins that still fit; add
# UV_ARGS=--upgrade to take the newest versions. Both are universal: they hold every platform's
# wheel hashes, so the dev lock serves Python 3.11+ anywhere and the Lambda lock serves arm64 and
# x86_64 alike. The Lambda lock is constrained by the dev lock, so the Lambdas ship the very
# versions the tests ran against.
UV_COMPILE := $(VENV)/bin/uv pip compile -q --generate-hashes --custom-compile-command "make lock"
lock: $(VENV)/.installed ## regenerate requirements-dev.lock and functions/requirements.lock
	$(UV_COMPILE) $(UV_ARGS) --python-version 3.11 --universal -o $(DEV_LOCK) requirements-dev.txt
	$(UV_COMPILE) $(UV_ARGS) --python-version 3.13 --universal -c $(DEV_LOCK) \
	  -o $(LAMBDA_LOCK) functions/requirements.txt

# ---------------------------------------------------------------- checks
lint: install ## ruff, ruff format --check, and the import rules (pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

typecheck: install
	$(VENV)/bin/mypy

# Three pytest workers, one test file each at a time (--dist loadfile keeps a file's cached
# synths and clouds together): the end-to-end tests mostly wait on the local cloud's
# visibility timeouts, so three share two cores well. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 3
test: build lint typecheck ## everything CI runs
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile

unit: build
	$(PY) -m pytest tests/unit

# ---------------------------------------------------------------- AWS
synth: build ## writes cdk.out/ and lints the template
	$(CDK) synth --quiet $(CDK_ARGS)
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

diff: build
	$(CDK) diff $(CDK_ARGS)

deploy: build ## CDK_ARGS="-c source_bucket_name=my-photos -c dimension=3072"
	$(CDK) deploy $(CDK_ARGS)

# What a deploy with the same CDK_ARGS would fail on in this account, and the -c fix.
preflight: install ## reads the Lambda concurrency quota and Bedrock model access
	$(PY) -m scripts.preflight $(CDK_ARGS)

.PHONY: openapi
openapi: install ## writes docs/openapi.json from the search API's shapes (imgsearch.api_shapes)
	$(PY) -m imgsearch.api_shapes docs/openapi.json

destroy: install
	$(CDK) destroy $(CDK_ARGS)

# ---------------------------------------------------------------- local
demo: install ## the whole pipeline on this machine, no AWS account
	$(PY) -m localcloud.demo

local: install ## just the local cloud, for the AWS CLI / scripts in another terminal
	$(PY) -m localcloud

# ---------------------------------------------------------------- smoke
# The end-to-end acceptance (README "Smoke test"). `make smoke`: on a fresh local cloud,
# started as `make local` starts it and stopped at the end. `make smoke AWS=1` (or
# SMOKE_STACK=imgsearch-smoke-<id>): deploys a smoke stack of its own, recorded in
# .local/smoke-stack.json, and runs the same steps on it; `make smoke-destroy` removes
# only that recorded stack. CDK_ARGS (-c key=value) reach the cloud, the deploy and the run.
.PHONY: smoke smoke-destroy
SMOKE_ENV := .local/smoke-localcloud.env
SMOKE_LOG := .local/smoke-localcloud.log
smoke: $(if $(AWS)$(SMOKE_STACK),build,install) ## end-to-end acceptance: local cloud, or AWS=1
ifeq ($(strip $(AWS)$(SMOKE_STACK)),)
	@mkdir -p .local; rm -f $(SMOKE_ENV); \
	$(PY) -m localcloud --env-file $(SMOKE_ENV) --log-file .local/smoke-lambda.log \
	  $(CDK_ARGS) >$(SMOKE_LOG) 2>&1 & cloud=$$!; \
	trap 'kill -TERM $$cloud 2>/dev/null; wait $$cloud; rm -f $(SMOKE_ENV)' EXIT; \
	for i in $$(seq 240); do [ -s $(SMOKE_ENV) ] && break; kill -0 $$cloud 2>/dev/null || break; \
	  sleep 0.5; done; \
	if [ ! -s $(SMOKE_ENV) ]; then \
	  echo "smoke: the local cloud did not start within 120 s (see $(SMOKE_LOG)):"; \
	  tail -n 5 $(SMOKE_LOG); exit 2; fi; \
	. $(SMOKE_ENV) && $(PY) -m scripts.smoke run $(CDK_ARGS)
else
	@args=$$($(PY) -m scripts.smoke plan $(if $(SMOKE_STACK),--stack $(SMOKE_STACK)) $(CDK_ARGS)) && \
	$(CDK) deploy --require-approval never $(CDK_ARGS) $$args && \
	$(PY) -m scripts.smoke run --aws $(CDK_ARGS)
endif

smoke-destroy: install ## removes the smoke stack `make smoke AWS=1` recorded, and nothing else
	$(PY) -m scripts.smoke destroy

bench: build
	$(PY) -m bench.run_all

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
