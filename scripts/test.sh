#!/usr/bin/env bash
# `make test`: starts a local DynamoDB of its own on a free loopback port, creates the table from
# template.yaml, runs the whole suite (unit and black-box tests), and stops the server it started.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p api-tests concurrent`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh

DYNAMODB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
state=.local/test-$$
source scripts/env.sh
export TABLE_NAME=users-test

python scripts/local_dynamodb.py start --port "$DYNAMODB_PORT" --state-dir "$state"
trap 'python scripts/local_dynamodb.py stop --state-dir "$state"; rm -rf "$state"' EXIT
python scripts/create_table.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$TABLE_NAME"

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

# The README's walk-through against `make dev` itself, on free ports.
python scripts/smoke_dev.py
