#!/usr/bin/env bash
# Makes .venv, the project's own Python environment, and installs requirements-dev.txt into it.
# Runs again only when requirements-dev.txt changes. Nothing is installed outside the project.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
echo "setting up .venv (moto, cargo-lambda, cfn-lint) ..." >&2
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
echo "$want" > "$stamp"
