# Sourced by test.sh and bench.sh as `source scripts/run_local_dynamodb.sh <name>`: a local DynamoDB
# of this run's own on a free loopback port, the environment to reach it (scripts/env.sh), and the
# table users-<name> created from template.yaml. Stopped, and its state removed, when the script
# exits.
DYNAMODB_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
state=.local/$1-$$
source scripts/env.sh
export TABLE_NAME=users-$1

python scripts/local_dynamodb.py start --port "$DYNAMODB_PORT" --state-dir "$state"
trap 'python scripts/local_dynamodb.py stop --state-dir "$state"; rm -rf "$state"' EXIT
python scripts/create_table.py --endpoint "$AWS_ENDPOINT_URL_DYNAMODB" --table "$TABLE_NAME"
