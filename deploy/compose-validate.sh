#!/usr/bin/env bash
# Validates the compose stack without a Docker engine (`just compose-validate`):
#
#   deploy/compose-validate.sh [COMPOSE_FILE]     default: deploy/compose.yaml
#
# 1. compose-check (tests/deploy/compose-check: compose-go, the loader inside Docker Compose)
#    loads the file as `docker compose config` would: the Compose Specification schema,
#    interpolation, every depends_on/volume/network reference; then that every bind-mounted
#    path, build context and Dockerfile exists;
# 2. otelcol-check (tests/deploy/otelcol-check: a collector built from the components and at the
#    version of the compose file's collector image) runs `validate` on otel-collector.yaml
#    beside the file, as the collector would at start-up;
# 3. tests/deploy/compose_invariants.py checks the resolved project: health checks, restart
#    policies, env wiring, grace period vs drain, the one-shot demo, the topic list (against
#    deploy/topics.tsv, the one list) and the collector's pipelines
#    (otel-collector.yaml beside the file).
# Exits non-zero on any failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FILE=${1:-$ROOT/deploy/compose.yaml}
DIR=$(cd "$(dirname "$FILE")" && pwd)

log() { printf '\033[1mcompose-validate:\033[0m %s\n' "$*" >&2; }

CHECK=$("$ROOT/deploy/deploy-tools.sh" compose-check)
OTELCOL=$("$ROOT/deploy/deploy-tools.sh" otelcol-check)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if ! "$CHECK" -print "$FILE" > "$OUT/resolved.yaml"; then
  log "FAILED: $FILE"; exit 1
fi
if "$OTELCOL" validate --config="$DIR/otel-collector.yaml" > "$OUT/otelcol.txt" 2>&1; then
  log "otel-collector.yaml: valid for the collector"
else
  cat "$OUT/otelcol.txt" >&2
  log "FAILED: $DIR/otel-collector.yaml"; exit 1
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml >&2
if ! python3 "$ROOT/tests/deploy/compose_invariants.py" "$OUT/resolved.yaml" \
      --topics-from "$ROOT/deploy/topics.tsv" \
      --compose-topics "$DIR/compose-topics.sh" \
      --collector "$DIR/otel-collector.yaml" \
      --otelcol-gomod "$ROOT/tests/deploy/otelcol-check/go.mod"; then
  log "FAILED: $FILE"; exit 1
fi
log "ok: $FILE"
