# Sourced by dev.sh and test.sh: the environment the functions need to reach the local DynamoDB.
# Credentials are dummies: the local server accepts any signature, and nothing here reaches AWS.
export PATH="$PWD/.venv/bin:$PATH"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=local
export AWS_SECRET_ACCESS_KEY=local
unset AWS_PROFILE AWS_SESSION_TOKEN
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:${DYNAMODB_PORT}"
# The key sign-up fingerprints are keyed with (`Idempotency-Key`); the stack makes a random one in
# Secrets Manager. This one is for local runs only.
export IDEMPOTENCY_FINGERPRINT_KEY="${IDEMPOTENCY_FINGERPRINT_KEY:-local-only-fingerprint-key-not-a-secret}"
