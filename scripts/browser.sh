#!/usr/bin/env bash
# The browser test's tools (tests/browser, run by `make test`): Debian's chromium, installed with
# apt-get when it is absent (no browser download: playwright-core drives this one), and the npm
# packages pinned by tests/browser/package-lock.json, installed into tests/browser/node_modules.
# Runs npm again only when the lockfile changes. CHROMIUM=/path/to/chromium uses another binary.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -z "${CHROMIUM:-}" ]] && ! command -v chromium >/dev/null; then
  echo "installing Debian's chromium for the browser test ..." >&2
  if [[ $(id -u) -eq 0 ]]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    echo "the browser test needs Debian's chromium: run 'apt-get install chromium' as root" >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

stamp=tests/browser/node_modules/.package-lock.sha256
want=$(sha256sum tests/browser/package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "installing the browser test's npm packages (tests/browser/package-lock.json) ..." >&2
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
