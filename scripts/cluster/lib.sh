# Shared by up.sh and down.sh (sourced, not run): where the cluster lives, its ports, and
# the pid files of what it started.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables here are used by the scripts that source this file

cluster_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The cluster folder: CLUSTER_DIR (relative to the current folder), else data/cluster of the repo.
if [[ -n "${CLUSTER_DIR:-}" ]]; then
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
else
  CLUSTER_DIR="$cluster_repo/data/cluster"
  mkdir -p "$CLUSTER_DIR"
fi
export CLUSTER_DIR
pid_dir="$CLUSTER_DIR/pids"
log_dir="$CLUSTER_DIR/logs"
pg_dir="$CLUSTER_DIR/pg"
mkdir -p "$pid_dir" "$log_dir"

# One up or down at a time per cluster (a test and a person may run them together). Children must not
# inherit the lock's descriptor (fd 8), or a long-lived service would hold it: starts close it.
cluster_lock() {
  exec 8>"$CLUSTER_DIR/.lock"
  flock -n 8 && return 0
  echo "[cluster] waiting for another up/down of $CLUSTER_DIR to finish" >&2
  flock -w 600 8 || { echo "[cluster] gave up waiting after 600 s" >&2; exit 1; }
}

# Temporal's ports, all on 127.0.0.1: the frontend's gRPC port is the one clients use; the other
# services of the one server process take the next nine.
temporal_port="${CLUSTER_TEMPORAL_PORT:-7243}"
# API instances: one per port; workers: how many.
read -r -a api_ports <<<"${CLUSTER_API_PORTS:-3101 3102}"
worker_count="${CLUSTER_WORKERS:-2}"

# A process is "ours and alive" when its pid is alive AND started at the time recorded in its pid
# file: a pid reused by an unrelated process after a crash is never signalled.
proc_start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

write_pid() { # name pid
  echo "$2 $(proc_start_time "$2")" >"$pid_dir/$1.pid"
}

pid_of() { # name -> prints the pid if that process is alive, else fails
  local f="$pid_dir/$1.pid" pid start
  [[ -f "$f" ]] || return 1
  read -r pid start <"$f" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  [[ "$(proc_start_time "$pid")" == "$start" ]] || return 1
  # A zombie (killed, not yet reaped by its parent) is not alive.
  [[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != "Z" ]] || return 1
  echo "$pid"
}

port_in_use() { # port
  # bash's /dev/tcp: the connect succeeds only if something listens.
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

rss_mb() { # pid -> resident memory in MB
  awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"
}

# Runs a command as the owner of the PostgreSQL files: `postgres` when we are root (PostgreSQL
# refuses to run as root), else ourselves.
as_pg() {
  if [[ "$(id -u)" -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Service names in start order (stopped in reverse).
service_names() {
  local i
  echo emulators
  for ((i = 1; i <= worker_count; i++)); do echo "worker-$i"; done
  for ((i = 1; i <= ${#api_ports[@]}; i++)); do echo "api-$i"; done
}
