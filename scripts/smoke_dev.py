#!/usr/bin/env python3
"""The README's walk-through, run against `make dev` (scripts/dev.sh) on free loopback ports.

`make test` runs this last, so the local API a new user starts is exercised the way the README
says to use it: sign up, duplicate sign-up, log in, read the profile, the account's lifecycle
(rename, password change, logout, delete), and the errors in between.
It starts dev.sh in its own process group and stops exactly that group when done.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, method: str, path: str, body: dict | None = None, headers: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, lowercase(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, lowercase(err.headers), json.loads(err.read() or b"null")


def lowercase(headers) -> dict:
    return {name.lower(): value for name, value in headers.items()}


def expect(what: str, got, status: int, code: str | None = None):
    got_status, headers, body = got
    problems = []
    if got_status != status:
        problems.append(f"status {got_status}, expected {status}")
    if code is not None and (not isinstance(body, dict) or body.get("code") != code):
        problems.append(f"code {body.get('code') if isinstance(body, dict) else body!r}, expected {code}")
    if status >= 400 and isinstance(body, dict) and body.get("request_id") != headers.get("x-request-id"):
        problems.append("request_id differs from x-request-id")
    # Every response, a function's or the gateway's own, is never cached and never sniffed.
    for name, value in (("cache-control", "no-store"), ("x-content-type-options", "nosniff")):
        if headers.get(name) != value:
            problems.append(f"{name} is {headers.get(name)!r}, expected {value!r}")
    if problems:
        sys.exit(f"smoke: {what}: {'; '.join(problems)}: {body}")
    print(f"smoke: {what}: {got_status} ok")
    return body


def schemathesis(base: str, token: str) -> None:
    """Requests generated from openapi.yaml, with every check schemathesis has: no 5xx, every
    status, header, content type and body as documented, valid data accepted and invalid data
    refused, 405 for undeclared methods. `SCHEMATHESIS_MAX_EXAMPLES` (default 25) bounds the
    examples per operation."""
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25")
    # Each Idempotency-Key is sent with one body only (the file says why).
    env = dict(os.environ, SCHEMATHESIS_HOOKS=str(ROOT / "scripts" / "schemathesis_hooks.py"))
    command = [
        str(ROOT / ".venv" / "bin" / "schemathesis"),
        # Every check; the few that cannot apply locally are turned off there, with reasons.
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        str(ROOT / "openapi.yaml"),
        "--url",
        base,
        "--max-examples",
        examples,
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--seed",
        os.environ.get("SCHEMATHESIS_SEED", "1"),
        # The account made above: GET /users/{id} is then exercised past authentication.
        "--header",
        f"Authorization: Bearer {token}",
    ]
    print(f"smoke: schemathesis, {examples} examples per operation ...", flush=True)
    # Its working files (.hypothesis/) go under .local/, which watch ignores: a file appearing in the
    # project would make watch restart every function mid-run.
    workdir = ROOT / ".local" / "schemathesis"
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(command, cwd=workdir, env=env)
    if result.returncode != 0:
        sys.exit("smoke: schemathesis found responses outside openapi.yaml (see above)")
    print("smoke: schemathesis found nothing outside openapi.yaml")


def browser(base: str) -> None:
    """tests/browser: the README's interceptor in Debian's chromium, from an allowed and from a
    disallowed origin (scripts/browser.sh installs what it needs)."""
    print("smoke: the browser test (tests/browser) ...", flush=True)
    result = subprocess.run(
        ["node", "--test", "--test-reporter=spec", str(ROOT / "tests" / "browser" / "browser.test.mjs")],
        cwd=ROOT,
        env=dict(os.environ, API_URL=base),
    )
    if result.returncode != 0:
        sys.exit("smoke: the browser test failed (see above)")
    print("smoke: a browser page reads every answer from an allowed origin, none from another")


def lifecycle(base: str) -> None:
    """The README's account lifecycle, on an account of its own: rename, change the password (the
    other session dies), log out, delete, and the email signs up again."""
    email = f"smoke-{uuid.uuid4().hex[:8]}@example.com"
    old, new = "correct horse battery", "correct horse battery staple"
    user = expect("POST /users (lifecycle)", call(base, "POST", "/users", {"email": email, "name": "Ada", "password": old}), 201)
    me = f"/users/{user['id']}"

    def login(password: str) -> dict:
        return {"authorization": "Bearer " + expect(
            "POST /auth/login (lifecycle)",
            call(base, "POST", "/auth/login", {"email": email, "password": password}),
            200,
        )["access_token"]}

    mine, other = login(old), login(old)
    renamed = expect("PATCH /users/{id}", call(base, "PATCH", me, {"name": "Ada King"}, mine), 200)
    if renamed.get("name") != "Ada King":
        sys.exit(f"smoke: PATCH /users/{{id}} returned {renamed}")
    expect("PUT /users/{id}/password", call(base, "PUT", me + "/password", {"current_password": old, "new_password": new}, mine), 204)
    expect("GET /users/{id} with the other session", call(base, "GET", me, headers=other), 401, "not_authenticated")
    expect("POST /auth/logout", call(base, "POST", "/auth/logout", headers=mine), 204)
    expect("GET /users/{id} after logout", call(base, "GET", me, headers=mine), 401, "not_authenticated")
    fresh = login(new)
    expect("DELETE /users/{id}", call(base, "DELETE", me, headers=fresh), 204)
    expect("DELETE /users/{id} again", call(base, "DELETE", me, headers=fresh), 401, "not_authenticated")
    expect("POST /users after the delete", call(base, "POST", "/users", {"email": email, "name": "Ada", "password": old}), 201)


def main() -> None:
    api_port, db_port, watch_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{api_port}"
    env = dict(
        os.environ,
        API_PORT=str(api_port),
        DYNAMODB_PORT=str(db_port),
        WATCH_PORT=str(watch_port),
        LOG_FORMAT="json",
    )
    # make dev's own default CORS list (any loopback port), whatever this shell has.
    env.pop("CORS_ALLOW_ORIGINS", None)
    log = open(ROOT / ".local" / f"smoke-dev-{os.getpid()}.log", "wb")
    dev = subprocess.Popen(
        [str(ROOT / "scripts" / "dev.sh")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            if dev.poll() is not None:
                sys.exit(f"smoke: make dev exited with {dev.returncode}; see {log.name}")
            try:
                health = call(base, "GET", "/health")
                if health[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                sys.exit(f"smoke: make dev did not serve /health within 300 s; see {log.name}")
            time.sleep(1)
        expect("GET /health", health, 200)
        email = f"smoke-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery"
        user = expect(
            "POST /users",
            call(base, "POST", "/users", {"email": f"  {email.upper()} ", "name": "Smoke", "password": password}),
            201,
        )
        if user.get("email") != email:
            sys.exit(f"smoke: the email was not normalised: {user}")
        expect(
            "POST /users again",
            call(base, "POST", "/users", {"email": email, "name": "Smoke", "password": password}),
            409,
            "user_exists",
        )
        # The README's Idempotency-Key walk-through: a retry with the key gets the first 201 again.
        keyed = {"email": f"keyed-{email}", "name": "Smoke", "password": password}
        key = {"idempotency-key": str(uuid.uuid4())}
        first = call(base, "POST", "/users", keyed, key)
        replay = call(base, "POST", "/users", keyed, key)
        expect("POST /users with an Idempotency-Key", first, 201)
        expect("POST /users retried with its Idempotency-Key", replay, 201)
        if replay[1].get("idempotent-replayed") != "true" or replay[2] != first[2]:
            sys.exit(f"smoke: the retry was not the first answer replayed: {first} / {replay}")
        expect(
            "POST /users with the Idempotency-Key and another body",
            call(base, "POST", "/users", dict(keyed, name="Other"), key),
            422,
            "idempotency_key_reused",
        )
        expect(
            "POST /users invalid",
            call(base, "POST", "/users", {"email": "nope", "name": "", "password": "short"}),
            422,
            "validation_error",
        )
        expect(
            "POST /auth/login wrong password",
            call(base, "POST", "/auth/login", {"email": email, "password": "wrong horse battery"}),
            401,
            "invalid_credentials",
        )
        token = expect(
            "POST /auth/login",
            call(base, "POST", "/auth/login", {"email": email, "password": password}),
            200,
        )["access_token"]
        expect(f"GET /users/{{id}} without a token", call(base, "GET", f"/users/{user['id']}"), 401, "not_authenticated")
        expect("GET /nowhere (the gateway's own 404)", call(base, "GET", "/nowhere"), 404, "not_found")
        me = expect(
            "GET /users/{id}",
            call(base, "GET", f"/users/{user['id']}", headers={"authorization": f"Bearer {token}"}),
            200,
        )
        if me != user:
            sys.exit(f"smoke: GET /users/{{id}} returned {me}, expected {user}")
        expect("TRACE /users (the gateway's own 405)", call(base, "TRACE", "/users"), 405, "method_not_allowed")
        lifecycle(base)
        browser(base)
        schemathesis(base, token)
    finally:
        # dev.sh's trap stops what it started (watch, the gateway, the local DynamoDB).
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
    # Passed: its server state and log are not worth keeping (a failure keeps both for reading).
    shutil.rmtree(ROOT / ".local" / f"dev-{db_port}", ignore_errors=True)
    Path(log.name).unlink(missing_ok=True)
    print("smoke: the README walk-through works against make dev")


if __name__ == "__main__":
    main()
