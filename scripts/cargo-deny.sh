#!/usr/bin/env bash
# Runs cargo-deny from .tools/ (installed there from crates.io on first use, built from source:
# about 15 minutes on 2 busy cores, then cached), with the policy in deny.toml.
# `scripts/cargo-deny.sh licenses bans sources` works offline; `advisories` fetches the RustSec
# advisory database from GitHub and needs network access.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
bin=.tools/bin/cargo-deny
if ! [[ -x $bin ]] || [[ "$($bin --version)" != "cargo-deny $version" ]]; then
    echo "installing cargo-deny $version into .tools/ (once) ..."
    cargo install --locked --root .tools cargo-deny --version "$version"
fi
exec "$bin" check "$@"
