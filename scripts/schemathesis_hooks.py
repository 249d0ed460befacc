"""Schemathesis hooks for `make test`'s run against the local API (`make dev`).

One filter, for a limit of the local tool, not of the API: `cargo lambda watch` cannot turn a
request body that is not valid UTF-8 into an event and answers such a request with its own 500
before any function runs. API Gateway passes such bodies on; how the functions answer them (422 in
the contract shape) is covered by the in-process tests (tests/tests/api/hostile_input.rs), which
send them as API Gateway does.
"""

import schemathesis


@schemathesis.hook
def filter_case(context, case):
    body = case.body
    if isinstance(body, (bytes, bytearray)):
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
