#!/usr/bin/env bash
# `make dev`: the local DynamoDB on 127.0.0.1:$DYNAMODB_PORT with the table from template.yaml, then
# `cargo lambda watch` running every function of the workspace (invoke API on $WATCH_PORT, default API_PORT+1) behind
# scripts/dev_gateway.py, which serves them on http://127.0.0.1:$API_PORT at their real paths.
# Ctrl-C stops both; the local server is stopped by the process id this script recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh

DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
API_PORT=${API_PORT:-9000}
WATCH_PORT=${WATCH_PORT:-$((API_PORT + 1))}
TABLE_NAME=${TABLE_NAME:-users-local}
state=.local/dev-$DYNAMODB_PORT
source scripts/env.sh

python scripts/local_dynamodb.py start --port "$DYNAMODB_PORT" --state-dir "$state"
trap 'python scripts/local_dynamodb.py stop --state-dir "$state"' EXIT
# Ctrl-C or a TERM: leave through the EXIT trap, which stops what this script started.
trap 'exit 130' INT TERM
python scripts/create_table.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$TABLE_NAME"

export TABLE_NAME STAGE=local LOG_FORMAT=${LOG_FORMAT:-pretty}
# Browser pages allowed to call the local API (the functions and the dev gateway read it): by
# default a frontend dev server on any loopback port. Set it to an exact list to try a deploy's.
export CORS_ALLOW_ORIGINS=${CORS_ALLOW_ORIGINS-http://localhost:*,http://127.0.0.1:*}
# Locally the stage is not in the URL, so keep it out of the paths the functions see (Location).
export AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true
# cargo lambda watch runs and hot-reloads the functions; scripts/dev_gateway.py, in front of it, is
# the API as API Gateway serves it (REST events, the template's gateway responses).
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$WATCH_PORT" &
watch_pid=$!
trap 'kill "$watch_pid" 2>/dev/null; wait "$watch_pid" 2>/dev/null; python scripts/local_dynamodb.py stop --state-dir "$state"' EXIT
# The gateway prints the routes it serves (template.yaml's).
echo "API on http://127.0.0.1:${API_PORT}"
python scripts/dev_gateway.py --port "$API_PORT" --invoke-port "$WATCH_PORT"
