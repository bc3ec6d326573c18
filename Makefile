# The project's commands. Every target installs what it needs first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
CDK := npx --no-install cdk

.PHONY: install chromium build test lint typecheck unit synth deploy destroy diff demo local bench clean

# ---------------------------------------------------------------- install
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
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

# Lambda runtime dependencies, installed once for the Lambda platform (no Docker).
build: install ## Lambda dependencies for both architectures
	$(PY) -m scripts.build_lambda

# ---------------------------------------------------------------- checks
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

test: build lint typecheck ## everything CI runs
	$(PY) -m pytest

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

destroy: install
	$(CDK) destroy $(CDK_ARGS)

# ---------------------------------------------------------------- local
demo: install ## the whole pipeline on this machine, no AWS account
	$(PY) -m localcloud.demo

local: install ## just the local cloud, for the AWS CLI / scripts in another terminal
	$(PY) -m localcloud

bench: build
	$(PY) -m bench.run_all

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
