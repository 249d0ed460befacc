#!/usr/bin/env bash
# `make test`: starts a local DynamoDB of its own on a free loopback port, creates the table from
# template.yaml, runs the whole suite (unit and black-box tests), and stops the server it started.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p api-tests concurrent`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
scripts/browser.sh

source scripts/run_local_dynamodb.sh test

# The telemetry tests run the function binaries as Lambda would: build them first.
cargo build --workspace --bins
if [[ $# -gt 0 ]]; then
  cargo test --workspace "$@"
else
  # Tests named timing_* compare durations; they run alone, after the rest, so the other tests'
  # load on a small machine does not decide their outcome.
  cargo test --workspace -- --skip timing_
  cargo test -p api-tests --test api timing_ -- --test-threads=1
fi

# The README's walk-through against `make dev` itself, on free ports: curl-like calls, the
# browser test (tests/browser) and schemathesis.
python scripts/smoke_dev.py
