#!/usr/bin/env bash
# Stops what scripts/cluster/up.sh started in CLUSTER_DIR, front to back: API instances, workers,
# emulators, the Temporal server, PostgreSQL. Gracefully (SIGTERM, then SIGKILL after a grace period),
# and only processes recorded in its pid files. The data stays: the next `up` carries on with it.
#   --purge   also delete CLUSTER_DIR (the database with it)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
say() { echo "[cluster:down] $*" >&2; }

purge=0
[[ "${1:-}" == --purge ]] && purge=1
cluster_lock

# Sends SIGTERM to every named process that is alive, then waits for all of them together.
stop_group() { # grace_seconds name...
  local grace="$1" name pid
  shift
  local -a pids=() names=()
  for name in "$@"; do
    if pid="$(pid_of "$name")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
  done
  ((${#pids[@]} > 0)) || return 0
  say "stopping ${names[*]}"
  local deadline=$((SECONDS + grace)) i
  while ((SECONDS < deadline)); do
    local alive=0
    for name in "${names[@]}"; do pid_of "$name" >/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for i in "${!names[@]}"; do
    if pid="$(pid_of "${names[i]}")"; then
      say "${names[i]} (pid $pid) still running after ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pid_dir/${names[i]}.pid"
  done
}

names_like() { # prefix -> names of the pid files that start with it
  local f
  for f in "$pid_dir/$1"*.pid; do [[ -e "$f" ]] && basename "$f" .pid; done
  return 0
}

# Services first, so none of them sees its Temporal vanish mid-request. Their own shutdown lets
# running activities finish for up to 10 s (shutdownGraceTime) and gives up at 20 s.
mapfile -t apis < <(names_like api-)
mapfile -t workers < <(names_like worker-)
stop_group 25 "${apis[@]}" "${workers[@]}"
stop_group 10 emulators
# The server shuts its services down in order (frontend drains first).
stop_group 60 temporal

pg_data="$pg_dir/data"
# The binaries up.sh started it with.
PG_BIN_USED=""
# shellcheck source=/dev/null
[[ -f "$pg_dir/settings.env" ]] && source "$pg_dir/settings.env"
PG_BIN_DIR="${PG_BIN_USED:-$(dirname "$(command -v pg_ctl || echo /usr/bin/pg_ctl)")}"
if [[ -f "$pg_data/PG_VERSION" ]] && as_pg "$PG_BIN_DIR/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
  say "stopping PostgreSQL"
  # "fast": disconnects clients and shuts down cleanly (a checkpoint, no recovery on next start).
  as_pg "$PG_BIN_DIR/pg_ctl" -D "$pg_data" -m fast -w -t 60 stop >/dev/null
fi
rm -f "$pid_dir"/*.pid

if ((purge)); then
  say "deleting $CLUSTER_DIR"
  rm -rf "$CLUSTER_DIR"
fi
say "cluster stopped"
