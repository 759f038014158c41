#!/usr/bin/env bash
# Builds stage {{name}} into OUTDIR/{{name}}.wasm, a WebAssembly component of world
# newsroom:stage/stage@0.1.0: a Go wasip1 reactor, its WIT embedded and made a component by jco
# (wasm-tools component embed/new) with the in-component WASI preview1 stub adapter
# (wasi_preview1_stub.wat), so the component imports no WASI. Needs Go >= 1.24 and `npm ci` in
# this directory first.
# WIT: $NEWSROOM_WIT, else the first wit/newsroom-stage.wit in this directory or above it.
# OUTDIR defaults to <that directory>/target/stages.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="/usr/local/go/bin:$PATH"

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

JCO=$DIR/node_modules/.bin/jco
[ -x "$JCO" ] || { echo "node_modules missing: run 'npm ci' in $DIR" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$DIR"
GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o "$TMP/core.wasm" .
"$JCO" parse wasi_preview1_stub.wat -o "$TMP/adapter.wasm" >/dev/null
"$JCO" embed --wit "$WIT" -n stage "$TMP/core.wasm" -o "$TMP/embedded.wasm" >/dev/null
"$JCO" new "$TMP/embedded.wasm" --adapt "wasi_snapshot_preview1=$TMP/adapter.wasm" \
  -o "$OUT/{{name}}.wasm" >/dev/null
echo "$OUT/{{name}}.wasm"
