# The README's two commands are `make dev` and `make test`; everything else is optional.
.DEFAULT_GOAL := help
SHELL := /bin/bash

FN ?= health
EVENT ?= events/$(FN)/ok.json
API_PORT ?= 9000
FUZZ_SECONDS ?= 60

.PHONY: help dev invoke test lint build deny audit fuzz venv clean-local bench bench-arm64

help: ## List the targets.
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

dev: ## Run the API locally on http://127.0.0.1:$(API_PORT) against a local DynamoDB (Ctrl-C stops both).
	API_PORT=$(API_PORT) scripts/dev.sh

invoke: ## With `make dev` running: run function FN on sample event EVENT (a REST API v1 event).
	scripts/venv.sh
	.venv/bin/cargo-lambda lambda invoke $(FN) --invoke-address 127.0.0.1 --invoke-port $$(( $(API_PORT) + 1 )) --data-file $(EVENT)

test: ## Start a local DynamoDB, run every test, stop what was started.
	scripts/test.sh

bench: ## Release builds; cold start, latency, memory, cost beside a bare baseline; micro-benchmarks (BENCHMARKS.md).
	scripts/bench.sh $(BENCH_ARGS)

bench-arm64: ## The arm64 release binaries (cargo lambda + zig, several minutes), whose sizes `make bench` reports.
	scripts/venv.sh
	PATH="$$PWD/.venv/bin:$$PATH" cargo lambda build --release --arm64 $$(scripts/functions.sh --packages) -p lambda-bench $$(scripts/functions.sh --bins) --bin bare

lint: ## Formatting, clippy, unused dependencies, cfn-lint and sam validate --lint, as CI runs them (offline).
	scripts/venv.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/cargo-machete.sh
	.venv/bin/cfn-lint template.yaml
	PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam validate --lint

# cargo-lambda finds zig through the first `python3` on PATH, hence .venv/bin first. rust-cargolambda
# is a beta build method in SAM, hence --beta-features. Not part of CI (5 to 9 minutes from clean).
build: ## Build every function for Lambda (arm64) into .aws-sam/ with `sam build`; needs `rustup target add aarch64-unknown-linux-gnu`.
	scripts/venv.sh
	PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 sam build --beta-features

deny: ## Supply chain, offline: licences, banned crates and sources of Cargo.lock (deny.toml).
	scripts/cargo-deny.sh licenses bans sources

audit: ## Supply chain, online: RustSec advisories for Cargo.lock (fetches the database from GitHub).
	scripts/cargo-deny.sh advisories

fuzz: ## Fuzz request parsing and validation for FUZZ_SECONDS (default 60); FUZZ_SEED repeats a run.
	cargo build -p fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) target/debug/fuzz

venv: ## Install the project's Python tools into .venv.
	scripts/venv.sh

clean-local: ## Remove local server state (.local/).
	rm -rf .local
