#!/usr/bin/env python3
"""The local DynamoDB-compatible server: moto's server on 127.0.0.1, one request at a time.

    local_dynamodb.py start --port 8000 --state-dir .local/dynamodb   # starts it, waits until it answers
    local_dynamodb.py stop --state-dir .local/dynamodb                # stops the one this started
    local_dynamodb.py serve --port 8000                               # runs it in the foreground

Why not `moto_server` itself: its threaded server has no lock around a table, and its
TransactWriteItems copies whole tables and restores the copy when a condition fails, so two
concurrent transactions can erase each other's writes. Real DynamoDB serialises conflicting
transactions; here a global lock serialises every request, which keeps the tests' concurrency
assertions about our code rather than about the emulator.

`stop` only ends the process whose id `start` recorded, and only if it still is this server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HOST = "127.0.0.1"


def serve(port: int) -> None:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    inner = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def locked(environ, start_response):
        with lock:
            # Materialise the whole response inside the lock: moto's handlers may be lazy.
            return list(inner(environ, start_response))

    run_simple(HOST, port, locked, threaded=True, use_reloader=False, use_debugger=False)


def answers(port: int) -> bool:
    """True once the server answers a DynamoDB API call."""
    request = urllib.request.Request(
        f"http://{HOST}:{port}/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return "TableNames" in json.loads(response.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start(port: int, state_dir: Path, timeout: float) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    pid_file = state_dir / "server.pid"
    if pid_file.exists() and is_ours(int(pid_file.read_text().split()[0])) and answers(port):
        print(f"local DynamoDB already running on http://{HOST}:{port}")
        return
    if answers(port):
        sys.exit(f"port {port} already serves something that answers like DynamoDB; not starting a second server. "
                 f"Stop it or pick another port.")
    log = open(state_dir / "server.log", "ab")
    process = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file.write_text(f"{process.pid} {port}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"local DynamoDB exited with {process.returncode}; see {state_dir / 'server.log'}")
        if answers(port):
            print(f"local DynamoDB on http://{HOST}:{port} (pid {process.pid})")
            return
        time.sleep(0.1)
    process.terminate()
    sys.exit(f"local DynamoDB did not answer within {timeout} s; see {state_dir / 'server.log'}")


def is_ours(pid: int) -> bool:
    """True when `pid` is alive and is this script's server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(part.endswith(b"local_dynamodb.py") for part in cmdline) and b"serve" in cmdline


def stop(state_dir: Path) -> None:
    pid_file = state_dir / "server.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    if is_ours(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not is_ours(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "serve"])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--state-dir", type=Path, default=Path(".local/dynamodb"))
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.port)
    elif args.command == "start":
        start(args.port, args.state_dir, args.timeout)
    else:
        stop(args.state_dir)


if __name__ == "__main__":
    main()
