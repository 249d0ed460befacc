# The README's two commands are `make dev` and `make test`; everything else is optional.
.DEFAULT_GOAL := help
SHELL := /bin/bash

FN ?= health
EVENT ?= events/$(FN)/ok.json
API_PORT ?= 9000

.PHONY: help dev invoke test lint venv clean-local bench bench-arm64

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: ## Run the API locally on http://127.0.0.1:$(API_PORT) against a local DynamoDB (Ctrl-C stops both).
	API_PORT=$(API_PORT) scripts/dev.sh

invoke: ## With `make dev` running: run function FN on sample event EVENT (a REST API v1 event).
	scripts/venv.sh
	.venv/bin/cargo-lambda lambda invoke $(FN) --invoke-port $(API_PORT) --data-file $(EVENT)

test: ## Start a local DynamoDB, run every test, stop what was started.
	scripts/test.sh

bench: ## Release builds; cold start, latency, memory, cost beside a bare baseline; micro-benchmarks (BENCHMARKS.md).
	scripts/bench.sh $(BENCH_ARGS)

bench-arm64: ## The arm64 release binaries (cargo lambda + zig, several minutes), whose sizes `make bench` reports.
	scripts/venv.sh
	PATH="$$PWD/.venv/bin:$$PATH" cargo lambda build --release --arm64 -p health -p create_user -p login -p get_user -p lambda-bench --bin health --bin create_user --bin login --bin get_user --bin bare

lint: ## Formatting, clippy and cfn-lint on template.yaml, as CI runs them.
	scripts/venv.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	.venv/bin/cfn-lint template.yaml

venv: ## Install the project's Python tools into .venv.
	scripts/venv.sh

clean-local: ## Remove local server state (.local/).
	rm -rf .local
