#!/usr/bin/env bash
# `make dev`: the local DynamoDB on 127.0.0.1:$DYNAMODB_PORT with the table from template.yaml, then
# `cargo lambda watch` serving all four functions on http://127.0.0.1:$API_PORT at their real paths.
# Ctrl-C stops both; the local server is stopped by the process id this script recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh

DYNAMODB_PORT=${DYNAMODB_PORT:-8000}
API_PORT=${API_PORT:-9000}
TABLE_NAME=${TABLE_NAME:-users-local}
state=.local/dev-$DYNAMODB_PORT
source scripts/env.sh

python scripts/local_dynamodb.py start --port "$DYNAMODB_PORT" --state-dir "$state"
trap 'python scripts/local_dynamodb.py stop --state-dir "$state"' EXIT
python scripts/create_table.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$TABLE_NAME"

export TABLE_NAME STAGE=local LOG_FORMAT=${LOG_FORMAT:-pretty}
echo "API on http://127.0.0.1:${API_PORT} (GET /health, POST /users, POST /auth/login, GET /users/{id})"
cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$API_PORT"
