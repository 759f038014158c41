#!/usr/bin/env bash
# Starts and stops the four services (and the demo phone) on this machine, from target/debug
# (NEWSROOM_PROFILE=release: target/release, what `just up release` runs; benchmark that one).
#
#   deploy/services.sh start   start ingest, enrichment, recommendation, notification and a
#                              webhook sink on 127.0.0.1:8099; wait until each is ready; then
#                              web on http://127.0.0.1:8080 (NEWSROOM_WEB_PORT) and the
#                              canary (`newsroom canary`: a probe flash every 30 s, metrics
#                              on http://127.0.0.1:9098/metrics, log .run/logs/canary.log)
#   deploy/services.sh stop    SIGTERM each (they drain and commit), wait for them to exit
#
# Logs: .run/logs/<name>.log   pids: .run/pids/<name>.pid
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROFILE="${NEWSROOM_PROFILE:-debug}"
case "$PROFILE" in debug|release) ;; *) echo "NEWSROOM_PROFILE: debug or release, not $PROFILE" >&2; exit 64 ;; esac
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE"
LOGS="$ROOT/.run/logs"
PIDS="$ROOT/.run/pids"
SERVICES="ingest:50051 enrichment:50052 recommendation:50053 notification:50054"

log() { printf '\033[1mservices:\033[0m %s\n' "$*" >&2; }
# shellcheck source=deploy/proc.sh
. "$ROOT/deploy/proc.sh"

ready() { curl -fsS -m 1 "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }

start() {
  mkdir -p "$LOGS" "$PIDS"
  for entry in $SERVICES; do
    name=${entry%%:*}; port=${entry##*:}
    if [ -f "$PIDS/$name.pid" ] && alive "$(cat "$PIDS/$name.pid")" "newsroom-$name"; then
      log "$name already running"; continue
    fi
    [ -x "$BIN/newsroom-$name" ] || { log "$BIN/newsroom-$name is missing: run cargo build --workspace --bins"; exit 1; }
    NEWSROOM_GRPC_ADDR="127.0.0.1:$port" nohup "$BIN/newsroom-$name" >"$LOGS/$name.log" 2>&1 &
    echo $! >"$PIDS/$name.pid"
    log "started $name on 127.0.0.1:$port (log: .run/logs/$name.log)"
  done
  if ! { [ -f "$PIDS/phone.pid" ] && alive "$(cat "$PIDS/phone.pid")" webhook-sink; }; then
    nohup "$BIN/newsroom" webhook-sink --addr 127.0.0.1:8099 >"$LOGS/phone.log" 2>&1 &
    echo $! >"$PIDS/phone.pid"
    log "started the demo phone (webhook sink) on http://127.0.0.1:8099/ (alerts: .run/logs/phone.log)"
  fi
  for entry in $SERVICES; do
    name=${entry%%:*}; admin=$(( ${entry##*:} + 1000 ))
    for _ in $(seq 1 60); do ready "$admin" && break; sleep 0.5; done
    ready "$admin" || { log "$name is not ready; last log lines:"; tail -n 20 "$LOGS/$name.log" >&2; exit 1; }
  done
  log "all four services are ready"
  if ! { [ -f "$PIDS/web.pid" ] && alive "$(cat "$PIDS/web.pid")" newsroom-web; }; then
    [ -x "$BIN/newsroom-web" ] || { log "$BIN/newsroom-web is missing: run cargo build --workspace --bins"; exit 1; }
    NEWSROOM_WEB_ADDR="127.0.0.1:${NEWSROOM_WEB_PORT:-8080}" nohup "$BIN/newsroom-web" >"$LOGS/web.log" 2>&1 &
    echo $! >"$PIDS/web.pid"
    for _ in $(seq 1 40); do curl -fsS -m 1 "http://127.0.0.1:${NEWSROOM_WEB_PORT:-8080}/healthz" >/dev/null 2>&1 && break; sleep 0.25; done
    log "started web on http://127.0.0.1:${NEWSROOM_WEB_PORT:-8080}/ (log: .run/logs/web.log)"
  fi
  if ! { [ -f "$PIDS/canary.pid" ] && alive "$(cat "$PIDS/canary.pid")" canary; }; then
    nohup "$BIN/newsroom" canary --every-secs "${NEWSROOM_CANARY_EVERY_SECS:-30}" \
      --phone 127.0.0.1:8098 --metrics 127.0.0.1:9098 >"$LOGS/canary.log" 2>&1 &
    echo $! >"$PIDS/canary.pid"
    log "started the canary: a probe flash every ${NEWSROOM_CANARY_EVERY_SECS:-30} s (.run/logs/canary.log, http://127.0.0.1:9098/metrics)"
  fi
}

stop() {
  for name in web canary phone notification recommendation enrichment ingest; do
    f="$PIDS/$name.pid"
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if alive "$pid"; then
      kill -TERM "$pid"
      for _ in $(seq 1 40); do alive "$pid" || break; sleep 0.5; done
      alive "$pid" && { log "$name did not stop, killing"; kill -KILL "$pid"; }
      log "stopped $name"
    fi
    rm -f "$f"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 64 ;;
esac
