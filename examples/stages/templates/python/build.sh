#!/usr/bin/env bash
# Builds stage {{name}} into OUTDIR/{{name}}.wasm, a WebAssembly component of world
# newsroom:stage/stage@0.1.0. Needs componentize-py: pip install --user componentize-py==0.25.1
# WIT: $NEWSROOM_WIT, else the first wit/newsroom-stage.wit in this directory or above it.
# OUTDIR defaults to <that directory>/target/stages.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$HOME/.local/bin:$PATH"

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

command -v componentize-py >/dev/null ||
  { echo "componentize-py not found: pip install --user componentize-py==0.25.1" >&2; exit 1; }
cd "$DIR"
componentize-py -q -d "$WIT" -w stage componentize --stub-wasi app -p . -o "$OUT/{{name}}.wasm"
echo "$OUT/{{name}}.wasm"
