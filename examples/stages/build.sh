#!/usr/bin/env bash
# Builds the example Newsroom stages into WebAssembly components (world
# newsroom:stage/stage@0.1.0, wit/newsroom-stage.wit), offline, once the tools are installed
# (./install-tools.sh). Usage:
#
#   examples/stages/build.sh NAME|examples|testdata|all [OUTDIR]
#
# NAME: sponsored (Python), reading-level (JavaScript), region (Go), or a test guest: looper,
# hog, trapper, undeclared, empty (JavaScript). Writes OUTDIR/NAME.wasm; OUTDIR defaults to
# <repo>/target/stages. Every component imports newsroom:stage/host@0.1.0 (and the types-only
# newsroom:stage/types@0.1.0) and no WASI at all.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WIT=${NEWSROOM_WIT:-$ROOT/wit/newsroom-stage.wit}
export PATH="$HOME/.local/bin:$HOME/go/bin:/usr/local/go/bin:$PATH"

EXAMPLES=(sponsored reading-level region)
TESTDATA=(looper hog trapper undeclared empty)

usage() {
  echo "usage: $0 NAME|examples|testdata|all [OUTDIR]" >&2
  echo "  NAME: ${EXAMPLES[*]} ${TESTDATA[*]}" >&2
  exit 2
}

[ $# -ge 1 ] || usage
TARGET=$1
OUT=${2:-$ROOT/target/stages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -f "$WIT" ] || { echo "WIT not found: $WIT" >&2; exit 1; }

need_node_modules() {
  if [ ! -x "$1/node_modules/.bin/jco" ]; then
    echo "$1/node_modules is missing: run 'npm ci' there (or $HERE/install-tools.sh)" >&2
    exit 1
  fi
}

# Python, componentize-py: --stub-wasi replaces every WASI import with a trapping stub.
build_python() { # NAME DIR
  command -v componentize-py >/dev/null ||
    { echo "componentize-py not found: pip install --user componentize-py==0.25.1" >&2; exit 1; }
  (cd "$2" && componentize-py -q -d "$WIT" -w stage componentize --stub-wasi app -p . -o "$OUT/$1.wasm")
}

# JavaScript, componentize-js (StarlingMonkey): every WASI feature disabled. The entry module is
# built from its own directory, which is where its relative imports resolve.
build_js() { # NAME DIR ENTRY
  need_node_modules "$2"
  (cd "$(dirname "$2/$3")" &&
    "$2/node_modules/.bin/componentize-js" "$(basename "$3")" -w "$WIT" -n stage \
      -d stdio random clocks http fetch-event -o "$OUT/$1.wasm" >/dev/null)
}

# Go: a wasip1 reactor (-buildmode=c-shared), its WIT embedded (jco embed = wasm-tools component
# embed), made a component (jco new = wasm-tools component new) with the in-component preview1
# stub adapter (wasi_preview1_stub.wat, see there why not the official one).
build_go() { # NAME DIR
  need_node_modules "$2"
  local tmp jco="$2/node_modules/.bin/jco"
  tmp=$(mktemp -d)
  (cd "$2" && GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o "$tmp/core.wasm" .)
  "$jco" parse "$2/wasi_preview1_stub.wat" -o "$tmp/adapter.wasm" >/dev/null
  "$jco" embed --wit "$WIT" -n stage "$tmp/core.wasm" -o "$tmp/embedded.wasm" >/dev/null
  "$jco" new "$tmp/embedded.wasm" --adapt "wasi_snapshot_preview1=$tmp/adapter.wasm" \
    -o "$OUT/$1.wasm" >/dev/null
  rm -rf "$tmp"
}

build_one() {
  local start=$SECONDS
  case $1 in
    sponsored) build_python "$1" "$HERE/sponsored" ;;
    reading-level) build_js "$1" "$HERE/reading-level" src/stage.js ;;
    region) build_go "$1" "$HERE/region" ;;
    looper | hog | trapper | undeclared | empty) build_js "$1" "$HERE/testdata" "$1.js" ;;
    *) usage ;;
  esac
  printf '%-14s %9d bytes  %3ds  %s\n' "$1" "$(stat -c %s "$OUT/$1.wasm")" $((SECONDS - start)) "$OUT/$1.wasm"
}

case $TARGET in
  all) for n in "${EXAMPLES[@]}" "${TESTDATA[@]}"; do build_one "$n"; done ;;
  examples) for n in "${EXAMPLES[@]}"; do build_one "$n"; done ;;
  testdata) for n in "${TESTDATA[@]}"; do build_one "$n"; done ;;
  *) build_one "$TARGET" ;;
esac
