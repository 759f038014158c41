#!/usr/bin/env bash
# Toxiproxy for the chaos scenarios' network faults: a TCP proxy on 127.0.0.1 between the
# services and Kafka/Redis whose links a test can slow down, stall or cut
# (tests/src/toxiproxy.rs drives its HTTP API).
#
#   deploy/toxiproxy.sh install   build it once into ~/.cache/newsroom/go-bin (about a minute)
#   deploy/toxiproxy.sh up        install if missing, start unless running, wait until it answers
#   deploy/toxiproxy.sh down      stop the one this script started
#
# Toxiproxy comes from the Go module proxy, pinned (github.com/Shopify/toxiproxy/v2,
# cmd/server). Its API listens on 127.0.0.1:$NEWSROOM_TOXIPROXY_PORT (8474); the proxies a
# test creates listen on 127.0.0.1 too. A broker behind a proxy must advertise the proxy's
# port (deploy/stack.sh: NEWSROOM_KAFKA_ADVERTISED_PORT), or clients would bypass it after
# their first metadata answer.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=v2.5.0
BIN_DIR="${NEWSROOM_GO_BIN:-$HOME/.cache/newsroom/go-bin}"
BIN="$BIN_DIR/toxiproxy-server-$VERSION"
PORT=${NEWSROOM_TOXIPROXY_PORT:-8474}
RUN=.run
PIDFILE="$RUN/toxiproxy.pid"
LOG="$RUN/logs/toxiproxy.log"

log() { printf 'toxiproxy: %s\n' "$*" >&2; }
# shellcheck source=deploy/proc.sh
. "$(dirname "$0")/proc.sh"

install() {
  [ -x "$BIN" ] && return 0
  command -v go >/dev/null || { log "needs the Go toolchain (go) on PATH"; exit 1; }
  log "building toxiproxy $VERSION into $BIN (once)"
  local tmp
  tmp=$(mktemp -d)
  GOBIN="$tmp" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$VERSION"
  mkdir -p "$BIN_DIR"
  mv "$tmp/server" "$BIN"
  rm -rf "$tmp"
}

answering() { curl -sf -o /dev/null "http://127.0.0.1:$PORT/version"; }

up() {
  install
  if answering; then
    log "already answering on 127.0.0.1:$PORT"
    return 0
  fi
  mkdir -p "$RUN/logs"
  nohup "$BIN" -host 127.0.0.1 -port "$PORT" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if answering; then
      log "up: API http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"
      return 0
    fi
    alive "$(cat "$PIDFILE")" || { log "exited; see $LOG"; tail -20 "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  log "did not answer within 10 s; see $LOG"
  exit 1
}

down() { stop_pid toxiproxy "$PIDFILE"; }

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 install|up|down" >&2; exit 64 ;;
esac
