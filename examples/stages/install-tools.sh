#!/usr/bin/env bash
# Installs the tools the example stages build with (idempotent; the only step that needs the
# package registries: build.sh then works offline):
#   - componentize-py 0.25.1 (PyPI, pip --user: ~/.local/bin) for the Python stage;
#   - jco 1.35.0 + componentize-js 0.23.0 (npm ci from each package-lock.json) for the
#     JavaScript stages, and jco alone (wasm-tools component embed/new) for the Go stage;
#   - Go >= 1.24 must be on the machine (GOOS=wasip1, //go:wasmexport); the Go stage has no
#     module dependencies.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PATH="$HOME/.local/bin:$PATH"

if [ "$(componentize-py --version 2>/dev/null)" != "componentize-py 0.25.1" ]; then
  pip install --quiet --user componentize-py==0.25.1
fi
for d in reading-level region testdata; do
  if [ ! -x "$HERE/$d/node_modules/.bin/jco" ] ||
    [ "$HERE/$d/package-lock.json" -nt "$HERE/$d/node_modules/.package-lock.json" ]; then
    (cd "$HERE/$d" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error)
  fi
done
command -v go >/dev/null || [ -x /usr/local/go/bin/go ] || { echo "Go >= 1.24 is needed for the region stage" >&2; exit 1; }
echo "stage tools ready"
