#!/usr/bin/env python3
"""A dev-only API Gateway on 127.0.0.1 in front of `cargo lambda watch` (`make dev` starts both).

    dev_gateway.py --port 9000 --invoke-port 9001
    dev_gateway.py --routes        # prints the routes it would serve, as JSON, and exits

`cargo lambda watch` runs and hot-reloads the functions, but its own router sends HTTP API (v2)
events and answers by itself what it cannot route or encode. This gateway does what the deployed
REST API does instead:

- routes the real paths to the functions, read from template.yaml: each function's `Api` events
  (Path and Method), the function named by its `CodeUri: functions/<name>`, so the routes here are
  the deployed ones and a new endpoint needs no edit (`--routes` prints them; a test compares them
  with the template);
- sends each function a REST (v1 proxy) event: path parameters filled, a `requestContext` with a
  fresh request id and stage `local`, a body that is not UTF-8 base64-encoded, as API Gateway does;
- invokes the function through watch's Lambda invoke API (`--invoke-port`);
- answers what the gateway itself answers (an unknown route, a function that did not answer) with
  the gateway responses of template.yaml, rendered the way API Gateway renders them: the same
  contract body, `x-request-id` and literal headers (`nosniff`, `no-store`, `Retry-After`, ...)
  as in AWS;
- answers a method a known path does not declare with template.yaml's 405 (`Allow`, its headers,
  the contract body), and `OPTIONS`, the CORS preflight, by itself, as API Gateway's mock integrations do;
- adds the CORS headers to its own answers for an origin on `CORS_ALLOW_ORIGINS` (the functions
  add theirs). `make dev` allows `http://localhost:*` and `http://127.0.0.1:*` by default (any
  port: a frontend dev server picks its own); the rules are shared/src/cors.rs's. One difference
  from AWS: with several origins, API Gateway's own error answers carry `*` (see template.yaml),
  while this gateway checks the list for them too.
"""

from __future__ import annotations

import argparse
import base64
import os
import http.server
import json
import re
import signal
import socketserver
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = "local"
# API Gateway REST's payload limit.
MAX_PAYLOAD = 10 * 1024 * 1024
# What a preflight is told (template.yaml's OPTIONS mocks; shared/src/cors.rs for the functions).
ALLOWED_REQUEST_HEADERS = "content-type,authorization,x-api-key,idempotency-key"
EXPOSED_HEADERS = "x-request-id,retry-after,location,www-authenticate,idempotent-replayed"
MAX_AGE = "600"


class Origins:
    """CORS_ALLOW_ORIGINS: exact origins, or `scheme://host:*` for that host on any port."""

    def __init__(self, listed: str) -> None:
        self.exact: set[str] = set()
        self.any_port: list[str] = []
        for entry in (e.strip() for e in listed.split(",")):
            if not entry:
                continue
            if not re.fullmatch(r"https?://[a-z0-9.-]+(:([0-9]{1,5}|\*))?", entry):
                sys.exit(f"dev gateway: CORS_ALLOW_ORIGINS: {entry!r} is not an origin (scheme://host[:port], lowercase)")
            if entry.endswith(":*"):
                self.any_port.append(entry[:-1])
            else:
                self.exact.add(entry)

    def allows(self, origin: str | None) -> bool:
        if not origin:
            return False
        if origin in self.exact:
            return True
        return any(origin.startswith(p) and re.fullmatch(r"[0-9]{1,5}", origin[len(p):]) for p in self.any_port)


def load_template() -> dict:
    """template.yaml, its short tags (`!Ref`, `!GetAtt`, ...) read as nothing but a `!Sub` of a
    string, which keeps its text."""
    import yaml  # from .venv (PyYAML)

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node) if suffix == "Sub" and isinstance(node, yaml.ScalarNode) else None)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


def template_routes(template: dict) -> list[tuple[str, str, str]]:
    """(method, path, function) of every `Api` event of template.yaml's functions, sorted; the
    function is the crate its `CodeUri: functions/<name>` names (the binary watch runs)."""
    found = []
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        function = str(properties["CodeUri"]).rstrip("/").removeprefix("functions/")
        for event in (properties.get("Events") or {}).values():
            if event.get("Type") == "Api":
                found.append((event["Properties"]["Method"].upper(), event["Properties"]["Path"], function))
    return sorted(found)


def routes(template: dict) -> list[tuple[str, re.Pattern, str, str]]:
    """(method, path regex, resource template, function) of every route template.yaml deploys."""
    found = []
    for method, path, function in template_routes(template):
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        found.append((method, re.compile(f"^{pattern}$"), path, function))
    return found


def rest_api(template: dict) -> dict:
    """The properties of template.yaml's AWS::Serverless::Api."""
    for resource in template["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Api":
            return resource["Properties"]
    sys.exit("template.yaml has no AWS::Serverless::Api")


def literal_headers(parameters: dict, prefix: str = "") -> dict[str, str]:
    """The headers of a gateway response or mock whose value is a literal (`"'nosniff'"`), by name
    without `prefix`. A `context.*` value or an `!If` (the CORS headers) is left to the caller."""
    return {
        name.removeprefix(prefix): value[1:-1]
        for name, value in parameters.items()
        if name.startswith(prefix) and isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == "'"
    }


def gateway_responses(api: dict) -> dict:
    """template.yaml's gateway responses: type -> (status, literal headers, body template)."""
    return {
        kind: (
            int(spec["StatusCode"]),
            literal_headers(spec["ResponseParameters"]["Headers"]),
            spec["ResponseTemplates"]["application/json"],
        )
        for kind, spec in api["GatewayResponses"].items()
    }


def method_not_allowed(api: dict) -> dict[str, tuple[dict[str, str], str]]:
    """Per path, template.yaml's ANY mock (its 405): its literal headers, and its body without the
    mapping template's directives (`#set`, `#if`, ...): what API Gateway renders for an undeclared
    method."""
    answers = {}
    for path, methods in api["DefinitionBody"]["paths"].items():
        integration = methods["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        response = integration["responses"]["default"]
        template = response["responseTemplates"]["application/json"]
        body = "\n".join(line for line in template.splitlines() if not line.startswith("#")).strip()
        answers[path] = (literal_headers(response["responseParameters"], "method.response.header."), body)
    return answers


class Gateway(http.server.BaseHTTPRequestHandler):
    server_version = "users-api-dev-gateway"
    routes: list = []
    responses: dict = {}
    not_allowed: dict = {}
    origins = Origins("")
    invoke_port = 9001

    def log_message(self, fmt, *args):  # quiet: the functions log each request
        pass

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    # Any other method (HEAD, OPTIONS, TRACE, QUERY, ...): OPTIONS is the preflight; on a known path
    # the others get the 405, on an unknown path the unknown route's 404, as in AWS.
    def __getattr__(self, name):
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)

    def cors_headers(self, preflight_methods: str | None = None) -> dict:
        """The CORS headers of the gateway's own answers: only for an allowed Origin."""
        origin = self.headers.get("Origin")
        if not self.origins.allows(origin):
            return {"Vary": "Origin"} if (self.origins.exact or self.origins.any_port) else {}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if preflight_methods is None:
            headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        else:
            headers["Access-Control-Allow-Methods"] = preflight_methods
            headers["Access-Control-Allow-Headers"] = ALLOWED_REQUEST_HEADERS
            headers["Access-Control-Max-Age"] = MAX_AGE
        return headers

    def gateway_error(self, kind: str, request_id: str, message: str = "") -> None:
        status, literal, body = self.responses[kind]
        body = body.replace("$context.requestId", request_id).replace(
            "$context.error.messageString", json.dumps(message)
        ).replace("$context.error.message", message)
        # The template's own headers (content type, nosniff, no-store, Retry-After, ...), as in AWS.
        headers = {**literal, "x-request-id": request_id, **self.cors_headers()}
        self.send(status, headers, body.encode())

    def send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self) -> None:
        request_id = str(uuid.uuid4())
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            return self.gateway_error("REQUEST_TOO_LARGE", request_id)
        raw = self.rfile.read(length) if length else b""
        on_path = [(m, p, r, f) for m, p, r, f in self.routes if p.match(url.path)]
        served = [route for route in on_path if route[0] == self.command]
        if not on_path:
            return self.gateway_error("MISSING_AUTHENTICATION_TOKEN", request_id)
        resource = on_path[0][2]
        allow = ",".join(sorted({m for m, _, _, _ in on_path}) + ["OPTIONS"])
        if self.command == "OPTIONS":
            return self.send(204, self.cors_headers(preflight_methods=allow), b"")
        if not served:
            literal, body = self.not_allowed[resource]
            body = body.replace("$context.requestId", request_id)
            headers = {**literal, "x-request-id": request_id, "Allow": allow}
            return self.send(405, {**headers, **self.cors_headers()}, body.encode())
        method, pattern, resource, function = served[0]
        match = pattern.match(url.path)
        event = self.event(resource, url, match.groupdict(), raw, request_id)
        try:
            answer = self.invoke(function, event)
        except (urllib.error.URLError, OSError, ValueError) as err:
            print(f"dev gateway: {function} did not answer: {err}", file=sys.stderr)
            return self.gateway_error("INTEGRATION_FAILURE", request_id)
        if not isinstance(answer, dict) or "statusCode" not in answer:
            print(f"dev gateway: {function} failed: {answer}", file=sys.stderr)
            return self.gateway_error("INTEGRATION_FAILURE", request_id)
        headers = dict(answer.get("headers") or {})
        for name, values in (answer.get("multiValueHeaders") or {}).items():
            if values:
                headers.setdefault(name, values[0])
        body = answer.get("body") or ""
        body = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
        self.send(int(answer["statusCode"]), headers, body)

    def event(self, resource: str, url, path_parameters: dict, raw: bytes, request_id: str) -> dict:
        headers = {name: value for name, value in self.headers.items()}
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            multi_headers.setdefault(name, []).append(value)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        try:
            body, encoded = (raw.decode("utf-8"), False) if raw else (None, False)
        except UnicodeDecodeError:
            body, encoded = base64.b64encode(raw).decode(), True
        return {
            "resource": resource,
            "path": url.path,
            "httpMethod": self.command,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": {k: urllib.parse.unquote(v) for k, v in path_parameters.items()} or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": self.command,
                "path": f"/{STAGE}{url.path}",
                "stage": STAGE,
                "requestId": request_id,
                "accountId": "000000000000",
                "apiId": "local",
                "protocol": "HTTP/1.1",
                "identity": {"sourceIp": self.client_address[0], "userAgent": self.headers.get("User-Agent")},
            },
            "body": body,
            "isBase64Encoded": encoded,
        }

    def invoke(self, function: str, event: dict):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.invoke_port}/2015-03-31/functions/{function}/invocations",
            data=json.dumps(event).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        # The first request to a function compiles it: allow for that.
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read() or b"null")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    # Ctrl-C stops the gateway even when the shell that started it ignores SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--invoke-port", type=int, default=9001)
    parser.add_argument("--routes", action="store_true", help="print the routes, as JSON, and exit")
    args = parser.parse_args()
    template = load_template()
    if args.routes:
        print(json.dumps([list(route) for route in template_routes(template)]))
        return
    Gateway.routes = routes(template)
    api = rest_api(template)
    Gateway.responses = gateway_responses(api)
    Gateway.not_allowed = method_not_allowed(api)
    Gateway.origins = Origins(os.environ.get("CORS_ALLOW_ORIGINS", ""))
    Gateway.invoke_port = args.invoke_port
    server = Server(("127.0.0.1", args.port), Gateway)
    print(f"dev gateway on http://127.0.0.1:{args.port}, functions via cargo lambda watch on port {args.invoke_port}")
    for method, _, path, function in Gateway.routes:
        print(f"  {method} {path} -> {function}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
