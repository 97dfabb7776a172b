# lambda-microvms — every target is documented by `make help`.
# Only Python >= 3.11 is needed up front: `make test` installs uv (from PyPI) and the locked environment.

SHELL := /bin/bash
.DEFAULT_GOAL := help

STACK ?= local
PYTHON ?= python3
UV_VERSION ?= 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --locked --no-sync
# Policy config per environment: local shares dev's.
POLICY_ENV = $(if $(filter local,$(STACK)),dev,$(STACK))
POLICY_CONFIG ?= policies/config/$(POLICY_ENV).json
PYTEST_ARGS ?=
# pytest-xdist: tests mostly wait (builds, processes, sockets), so more workers than cores pays.
# loadfile keeps each file on one worker (its module fixtures start once; engine files stay whole).
PYTEST_WORKERS ?= 6
XDIST = -n $(PYTEST_WORKERS) --dist loadfile
# test-fast has no engine tier (whose processes are CPU-heavy), so more workers pay there.
FAST_WORKERS ?= 8
# This project's own bytecode (and pytest's rewritten test modules) is written under ~/.cache, not
# the repo, even when the shell sets PYTHONDONTWRITEBYTECODE: otherwise every test worker, pack,
# provider and service process compiles the same sources again. (Installed packages are compiled
# at sync: pyproject's [tool.uv] compile-bytecode.)
export PYTHONDONTWRITEBYTECODE :=
export PYTHONPYCACHEPREFIX ?= $(HOME)/.cache/lambda-microvms/pycache
PREVIEW_JSON ?= preview.json
# Where `make pulumi` puts the CLI it builds (used when no `pulumi` is on PATH).
TOOLCHAIN_BIN = $(shell $(RUN) python -m devkit.toolchain --bin-dir 2>/dev/null)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

.tools/bin/uv:
	@echo "uv not found: installing uv $(UV_VERSION) from PyPI into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.PHONY: sync
sync: $(UV) ## Install the locked environment into .venv (uv sync --locked)
	$(UV) sync --locked

.PHONY: test
test: sync lint ## Run every test tier (unit, emulator, protocol, engine) after lint
	$(RUN) python -m devkit.toolchain --if-possible
	$(RUN) pytest tests $(XDIST) $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: sync ## The edit loop: unit, emulator and protocol tiers in parallel, without slow tests
	$(RUN) pytest tests/unit tests/emulator tests/protocol -n $(FAST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

.PHONY: pulumi
pulumi: sync ## Build (or reuse) the Pulumi CLI and its Python launchers from Go modules, cached in ~/.cache
	$(RUN) python -m devkit.toolchain $(if $(FORCE),--force)

.PHONY: test-engine
test-engine: sync pulumi ## Engine tier: the real Pulumi CLI previews, deploys, refreshes, imports, destroys the local stack
	$(RUN) pytest tests/engine $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: sync ## Unit tier: pure functions and Pulumi mocks, no network
	$(RUN) pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-emulator
test-emulator: sync ## Emulator tier: boto3 and the CLI against the local lambda-microvms emulator
	$(RUN) pytest tests/emulator $(PYTEST_ARGS)

.PHONY: test-protocol
test-protocol: sync ## Protocol tier: dynamic provider and policy pack over the SDK's gRPC servers
	$(RUN) pytest tests/protocol $(PYTEST_ARGS)

.PHONY: lint
lint: sync ## ruff check + ruff format --check + mypy (strict: program, components, microvms; then the policy pack)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) mypy --cache-dir .mypy_cache/policies policies

.PHONY: format
format: sync ## Apply ruff fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

define require_pulumi
	@command -v pulumi >/dev/null 2>&1 || { \
	  echo "error: the Pulumi CLI is not installed (needed for '$(1)')."; \
	  echo "  install it:  curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0"; \
	  echo "  or see https://www.pulumi.com/docs/install/ ; then re-run 'make $(1) STACK=$(STACK)'."; \
	  echo "  without the CLI, 'make policy-check STACK=$(STACK)' and 'make test' still run offline."; \
	  exit 3; }
endef

.PHONY: up
up: sync ## Deploy STACK (default local: starts the emulators, no AWS account needed)
ifeq ($(STACK),local)
	@command -v pulumi >/dev/null 2>&1 || $(RUN) python -m devkit.toolchain --if-possible
	PATH="$(TOOLCHAIN_BIN):$$PATH" $(RUN) python -m devkit.local_stack up
else
	$(call require_pulumi,up)
	pulumi up --stack $(STACK) --diff --policy-pack policies --policy-pack-config $(POLICY_CONFIG)
endif

.PHONY: down
down: sync ## Destroy STACK (local: also stops the emulators and the sandbox; no CLI: only stops them)
ifeq ($(STACK),local)
	PATH="$(TOOLCHAIN_BIN):$$PATH" $(RUN) python -m devkit.local_stack down
else
	$(call require_pulumi,down)
	pulumi destroy --stack $(STACK)
endif

.PHONY: preview
preview: sync ## pulumi preview --diff with the policy pack and STACK's policy config
ifeq ($(STACK),local)
	@command -v pulumi >/dev/null 2>&1 || $(RUN) python -m devkit.toolchain --if-possible
	PATH="$(TOOLCHAIN_BIN):$$PATH" $(RUN) python -m devkit.local_stack preview
else
	$(call require_pulumi,preview)
	pulumi preview --stack $(STACK) --diff --policy-pack policies --policy-pack-config $(POLICY_CONFIG)
endif

.PHONY: emulators
emulators: sync ## Start only the local emulators (moto, lambda-microvms emulator, image app)
	$(RUN) python -m devkit.local_stack start-emulators

.PHONY: sandbox
sandbox: sync ## Try it locally, no Pulumi: emulators + the real app + an image built from image/
	$(RUN) python -m devkit.sandbox up

.PHONY: sandbox-env
sandbox-env: ## The export lines for the sandbox: eval "$(make -s sandbox-env)"
	@$(RUN) python -m devkit.sandbox env

.PHONY: policy-check
policy-check: sync ## Offline policy gate: evaluate STACK's program and run the pack (no cloud, no CLI)
	$(RUN) python -m devkit.policy_check --stack $(STACK) --config-file $(POLICY_CONFIG)

.PHONY: review-summary
review-summary: sync ## Markdown PR summary from `pulumi preview --json` (PREVIEW_JSON=, EVENTS=, OUT=)
	$(RUN) python -m devkit.review_summary $(PREVIEW_JSON) $(if $(EVENTS),--events $(EVENTS)) $(if $(OUT),--out $(OUT))

.PHONY: bench
bench: sync ## Benchmarks: print figures and ratios (policy pack, image provider, smoke runs)
	@for b in bench/bench_*.py; do echo "== $$b"; $(RUN) python $$b || exit $$?; done
