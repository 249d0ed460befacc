#!/usr/bin/env bash
# `make bench`: builds the functions and the bench tool in release, starts a local DynamoDB of its own
# on a free loopback port with the table from template.yaml, runs `lambda-bench` (each function's
# release binary under a local Lambda Runtime API, beside the bare baseline), stops the server it
# started, then runs the criterion micro-benchmarks. Never part of `make test` or CI: it is slow and
# its figures depend on the machine.
#
# Extra arguments go to lambda-bench (e.g. `scripts/bench.sh --runs 1 --rounds 5` for a quick look;
# `--tls-cold 0` skips the first requests with DynamoDB behind TLS; `--help` lists them all).
# Results: target/bench/report.md, target/bench/results.json, target/bench/criterion.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh

# As template.yaml sets it for every function (see the memory section of BENCHMARKS.md); set it
# empty to measure glibc's default.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_-131072}

# One cargo invocation for the functions (every crate under functions/, scripts/functions.sh) and
# the tool, so `make bench` never builds the dependencies twice with different feature sets.
packages=$(scripts/functions.sh --packages)
# shellcheck disable=SC2086 # one word per flag
cargo build --release $packages -p lambda-bench --bins

source scripts/run_local_dynamodb.sh bench

target/release/lambda-bench "$@"

mkdir -p target/bench
cargo bench -p lambda-bench --bench hot_paths 2>&1 | tee target/bench/criterion.txt
