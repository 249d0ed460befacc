#!/usr/bin/env bash
# Runs cargo-machete from .tools/ (installed there from crates.io on first use, built from source:
# a minute or two, then cached): fails when a crate of the workspace declares a dependency its code
# does not use. A false positive (a dependency used only through a macro) is listed in that crate's
# [package.metadata.cargo-machete] ignored, with the reason beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.9.2
bin=.tools/bin/cargo-machete
if ! [[ -x $bin ]] || [[ "$($bin --version 2>/dev/null)" != *"$version"* ]]; then
    echo "installing cargo-machete $version into .tools/ (once) ..."
    cargo install --locked --root .tools cargo-machete --version "$version"
fi
exec "$bin" "$@"
