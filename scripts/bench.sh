#!/usr/bin/env bash
# `make bench`: builds the functions and the bench tool in release, starts a local DynamoDB of its own
# on a free loopback port with the table from template.yaml, runs `lambda-bench` (each function's
# release binary under a local Lambda Runtime API, beside the bare baseline), stops the server it
# started, then runs the criterion micro-benchmarks. Never part of `make test` or CI: it is slow and
# its figures depend on the machine.
#
# Extra arguments go to lambda-bench (e.g. `scripts/bench.sh --runs 1 --rounds 5` for a quick look).
# Results: target/bench/report.md, target/bench/results.json, target/bench/criterion.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh

DYNAMODB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
state=.local/bench-$$
source scripts/env.sh
export TABLE_NAME=users-bench
# As template.yaml sets it for every function (see the memory section of BENCHMARKS.md); set it
# empty to measure glibc's default.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_-131072}

# One cargo invocation for the functions and the tool, so `make bench` never builds the
# dependencies twice with different feature sets.
cargo build --release -p health -p create_user -p login -p get_user -p lambda-bench --bins

python scripts/local_dynamodb.py start --port "$DYNAMODB_PORT" --state-dir "$state"
trap 'python scripts/local_dynamodb.py stop --state-dir "$state"; rm -rf "$state"' EXIT
python scripts/create_table.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$TABLE_NAME"

target/release/lambda-bench "$@"

mkdir -p target/bench
cargo bench -p lambda-bench --bench hot_paths 2>&1 | tee target/bench/criterion.txt
