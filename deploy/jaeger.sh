#!/usr/bin/env bash
# Jaeger for the end-to-end trace test (tests/tests/trace.rs): a real trace backend on 127.0.0.1.
#
#   deploy/jaeger.sh install   build it once into ~/.cache/newsroom/go-bin (several minutes)
#   deploy/jaeger.sh up        install if missing, start unless running, wait until it answers
#   deploy/jaeger.sh down      stop the one this script started
#
# Jaeger comes from the Go module proxy, pinned (github.com/jaegertracing/jaeger, cmd/jaeger).
# Not `go install module@version`: Jaeger's go.mod has a replace directive, which go install
# refuses, so the module is downloaded and built inside its own directory. The config is
# deploy/jaeger.yaml: OTLP/gRPC 4317 in, query API 16686 out, in memory.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v1.76.0
BIN_DIR="${NEWSROOM_GO_BIN:-$HOME/.cache/newsroom/go-bin}"
BIN="$BIN_DIR/jaeger-$VERSION"
RUN=.run
PIDFILE="$RUN/jaeger.pid"
LOG="$RUN/logs/jaeger.log"

log() { printf 'jaeger: %s\n' "$*" >&2; }
# shellcheck source=deploy/proc.sh
. "$(dirname "$0")/proc.sh"

install() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || { log "needs the Go toolchain (go) on PATH"; exit 1; }
  log "building jaeger $VERSION into $BIN (once; several minutes)"
  local dir
  dir=$(go mod download -json "github.com/jaegertracing/jaeger@$VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || { log "go mod download gave no directory"; exit 1; }
  mkdir -p "$BIN_DIR"
  (cd "$dir" && go build -trimpath -o "$BIN.tmp" ./cmd/jaeger)
  mv "$BIN.tmp" "$BIN"
}

answering() { curl -sf -o /dev/null "http://127.0.0.1:16686/api/services"; }

up() {
  install
  if answering; then
    log "already answering on 127.0.0.1:16686"
    return 0
  fi
  mkdir -p "$RUN/logs"
  nohup "$BIN" --config "$PWD/deploy/jaeger.yaml" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if answering && (exec 3<>/dev/tcp/127.0.0.1/4317) 2>/dev/null; then
      log "up: OTLP/gRPC 127.0.0.1:4317, query http://127.0.0.1:16686 (pid $(cat "$PIDFILE"))"
      return 0
    fi
    alive "$(cat "$PIDFILE")" || { log "exited; see $LOG"; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.2
  done
  log "did not answer within 20 s; see $LOG"
  exit 1
}

down() { stop_pid jaeger "$PIDFILE"; }

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 install|up|down" >&2; exit 64 ;;
esac
