# Sourced by the deploy scripts: whether a process we started is still alive.
#
# `kill -0` alone is not enough: it succeeds on a zombie the init has not reaped yet (after a
# SIGKILL, on a machine whose init reaps late), so a restart right after a kill would say
# "already running" and start nothing; and an old pid file may name a pid reused since.

# alive PID [NAME]: the process exists, is not a zombie, and (if NAME is given) its command
# line contains NAME.
alive() {
  local pid=$1 name=${2:-} state
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # Field 3 of /proc/PID/stat, after the parenthesised command name.
  state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ "$state" != Z ] || return 1
  [ -z "$name" ] || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

# stop_pid NAME PIDFILE: SIGTERM the process the pid file names, SIGKILL it if it is still
# there after 30 s, remove the pid file. Logs through the sourcing script's `log`.
stop_pid() { # name pidfile
  local pid
  [ -f "$2" ] || return 0
  pid=$(cat "$2")
  if alive "$pid"; then
    log "stopping $1 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do alive "$pid" || break; sleep 0.5; done
    alive "$pid" && { log "$1 did not stop in 30 s, killing"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$2"
}
