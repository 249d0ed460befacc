#!/usr/bin/env bash
# The function crates, from cargo metadata: the workspace's packages whose manifest is under
# functions/ (one Lambda binary per endpoint, named like its package). The Makefile and bench.sh
# build from this list, so a new endpoint needs no edit there.
#
#   scripts/functions.sh            one name per line
#   scripts/functions.sh --packages -p health -p create_user ... (cargo's package flags)
#   scripts/functions.sh --bins     --bin health --bin create_user ... (cargo's binary flags)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  "") flag="" ;;
  --packages) flag="-p" ;;
  --bins) flag="--bin" ;;
  *) echo "usage: $0 [--packages|--bins]" >&2; exit 2 ;;
esac

cargo metadata --no-deps --format-version 1 --offline | python3 -c '
import json, os, sys
metadata = json.load(sys.stdin)
functions = os.path.join(metadata["workspace_root"], "functions") + os.sep
names = sorted(p["name"] for p in metadata["packages"] if p["manifest_path"].startswith(functions))
if not names:
    sys.exit("scripts/functions.sh: cargo metadata lists no package under functions/")
flag = sys.argv[1]
print(" ".join(f"{flag} {n}" for n in names) if flag else "\n".join(names))
' "$flag"
