#!/usr/bin/env bash
# Builds stage {{name}} into OUTDIR/{{name}}.wasm, a WebAssembly component of world
# newsroom:stage/stage@0.1.0, with componentize-js and every WASI feature disabled (the
# component imports no WASI). Needs `npm ci` in this directory first.
# WIT: $NEWSROOM_WIT, else the first wit/newsroom-stage.wit in this directory or above it.
# OUTDIR defaults to <that directory>/target/stages.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ROOT=
if [ -n "${NEWSROOM_WIT:-}" ]; then
  WIT=$NEWSROOM_WIT
else
  d=$DIR
  while [ ! -f "$d/wit/newsroom-stage.wit" ]; do
    [ "$d" = / ] && { echo "wit/newsroom-stage.wit not found: set NEWSROOM_WIT" >&2; exit 1; }
    d=$(dirname "$d")
  done
  ROOT=$d
  WIT=$d/wit/newsroom-stage.wit
fi
OUT=${1:-${ROOT:-$DIR}/target/stages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

[ -x "$DIR/node_modules/.bin/componentize-js" ] ||
  { echo "node_modules missing: run 'npm ci' in $DIR" >&2; exit 1; }
# Relative imports resolve from the entry module's directory.
cd "$DIR/src"
"$DIR/node_modules/.bin/componentize-js" stage.js -w "$WIT" -n stage \
  -d stdio random clocks http fetch-event -o "$OUT/{{name}}.wasm" >/dev/null
echo "$OUT/{{name}}.wasm"
