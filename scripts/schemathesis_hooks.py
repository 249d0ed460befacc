"""schemathesis hooks for `make test` (scripts/smoke_dev.py sets SCHEMATHESIS_HOOKS to this file).

An `Idempotency-Key` names one request: the same key with another body is answered
`422 idempotency_key_reused`, whatever the body (openapi.yaml, POST /users). schemathesis draws
keys from the header's schema and shrinks them to the same few short values, so two of its cases
with different bodies would share a key, and its check that schema-valid requests are accepted
would flag that stateful 422. Rather than accept any 422 from POST /users (which would hide a valid
body refused by mistake), each valid key is made the body's own: the drawn key plus a hash of the
body, so one key is only ever sent with one body (a repeat is then a replay: 201 with
`Idempotent-Replayed`). Keys that are not valid are left as drawn, so malformed ones are still
sent and must still get 422 `validation_error`. The Rust tests (tests/tests/api/idempotency.rs)
cover a reused key.
"""

import hashlib
import json
import re

import schemathesis

VALID_KEY = re.compile(r"[!-~]{1,255}")


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    name = next((n for n in headers if n.lower() == "idempotency-key"), None)
    if name is None or not isinstance(headers[name], str) or not VALID_KEY.fullmatch(headers[name]):
        return
    body = json.dumps(case.body, sort_keys=True, default=repr).encode()
    headers[name] = f"{headers[name][:190]}.{hashlib.sha256(body).hexdigest()}"
