#!/usr/bin/env bash
# Runs Temporal as production does, on this machine, without Docker: the Temporal server built from
# source on a PostgreSQL of the project's own, then two workers and two API instances against it.
#
#   scripts/cluster/up.sh          (npm run cluster)      start what is not running, print the URLs
#   scripts/cluster/down.sh        (npm run cluster:down) stop all of it; the database stays
#
# Everything lives in CLUSTER_DIR (default data/cluster): pg/ (the database), temporal/ (server
# config), logs/, pids/, cluster.json (addresses and pids, for tools and tests). Running up again is
# safe: a running part is left alone, a stopped or killed one is started again on the same database.
#
# Settings (environment):
#   CLUSTER_DIR             see above
#   CLUSTER_PG_PORT         PostgreSQL's loopback port (default 55432, or the next free one; kept)
#   CLUSTER_TEMPORAL_PORT   Temporal frontend gRPC port (default 7243); the server's other services
#                           take the nine ports after it
#   CLUSTER_API_PORTS       one API instance per port (default "3101 3102")
#   CLUSTER_WORKERS         number of worker processes (default 2)
#   CLUSTER_EMULATORS       1 (default): start the provider emulators and point every process at
#                           them; 0: start none and leave provider settings to the environment/.env
#   CLUSTER_TEMPORAL_LOG_LEVEL  the server's log level (default warn)
#   any variable of config/index.ts (WORKING_HOURS, CALLS_PER_SECOND, ...) is passed to the services.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=../versions.sh
source "$here/../versions.sh"
say() { echo "[cluster:up] $*" >&2; }
die() { say "$*"; exit 1; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { echo "$(($(now_ms) - t0)) ms"; }

# Fails with the tail of a log, so a component that died at start says why.
die_with_log() { # message log
  say "$1"
  [[ -f "$2" ]] && { say "last lines of $2:"; tail -n 30 "$2" >&2; }
  exit 1
}

cluster_lock
t0=$(now_ms)
eval "$(bash "$here/provision.sh" 8>&-)"
cd "$cluster_repo"

# Starts a command in its own session (so it outlives this script and the terminal), logs to a file
# and records its pid. `setsid` without --fork execs in place when we are not a process-group leader
# (a script's background job never is), so $! is the process itself, which is what kill -9 must hit.
start_detached() { # name log command...
  local name="$1" log="$2"
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null 8>&- &
  local pid=$!
  # Wait for the exec so the recorded start time and command line are the program's own.
  sleep 0.05
  write_pid "$name" "$pid"
}

# ------------------------------------------------------------------------------------------------
# PostgreSQL: our own data folder, loopback port and socket folder; the system cluster is untouched.
# ------------------------------------------------------------------------------------------------
pg_data="$pg_dir/data"
pg_sock="$pg_dir/run"
pg_log="$log_dir/postgres.log"
pg_settings="$pg_dir/settings.env" # what must stay the same for the life of the database
mkdir -p "$pg_dir" "$pg_sock"
# shellcheck source=/dev/null
[[ -f "$pg_settings" ]] && source "$pg_settings"

if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "no postgres user (install Debian's postgresql: scripts/cluster/provision.sh)"
  chown postgres:postgres "$pg_dir" "$pg_sock"
  touch "$pg_log" && chown postgres:postgres "$pg_log"
  # PostgreSQL runs as postgres and must reach its folder through every parent (mkdtemp makes 0700).
  as_pg test -x "$pg_dir" || die "user postgres cannot enter $pg_dir: make its parent folders world-executable (chmod o+x)"
fi
chmod 700 "$pg_sock"

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; }
psql_admin() { # db sql...
  local db="$1"
  shift
  as_pg "$PG_BIN/psql" -X -q -h "$pg_sock" -p "$pg_port" -U postgres -d "$db" -v ON_ERROR_STOP=1 -tA "$@"
}

if pg_running; then
  pg_port="$(sed -n 4p "$pg_data/postmaster.pid")" # its fourth line is the port it listens on
  say "PostgreSQL already running on 127.0.0.1:$pg_port"
else
  # The port: asked for, else the one used last time, else 55432 or the next free one.
  pg_port="${CLUSTER_PG_PORT:-${PG_PORT_LAST:-55432}}"
  if port_in_use "$pg_port"; then
    [[ -n "${CLUSTER_PG_PORT:-}" ]] && die "port $pg_port (CLUSTER_PG_PORT) is in use"
    for ((p = pg_port + 1; p < pg_port + 100; p++)); do port_in_use "$p" || break; done
    say "port $pg_port is in use: PostgreSQL takes $p"
    pg_port="$p"
  fi
  if [[ ! -f "$pg_data/PG_VERSION" ]]; then
    say "initdb into $pg_data ($("$PG_BIN/postgres" --version))"
    mkdir -p "$pg_data"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$pg_data"
    chmod 700 "$pg_data"
    # Local (socket) connections are trusted: the socket folder is ours alone (0700). TCP needs the
    # password, as a remote database would.
    as_pg "$PG_BIN/initdb" -D "$pg_data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --no-locale >>"$pg_log" 2>&1 || die_with_log "initdb failed" "$pg_log"
    echo "include_if_exists = 'cluster.conf'" | as_pg tee -a "$pg_data/postgresql.conf" >/dev/null
  fi
  # Rewritten on every start, so a changed port or folder takes effect.
  as_pg tee "$pg_data/cluster.conf" >/dev/null <<EOF
# Written by scripts/cluster/up.sh on every start.
port = $pg_port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$pg_sock'
unix_socket_permissions = 0700
# One Temporal process holds up to about 100 connections (each service has its own pools).
max_connections = 200
EOF
  as_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$pg_log" -w -t 60 start >/dev/null 8>&- ||
    die_with_log "PostgreSQL did not start" "$pg_log"
  say "PostgreSQL started on 127.0.0.1:$pg_port ($(elapsed))"
fi

# The temporal role's password: generated once, kept with the database (0600).
pw_file="$pg_dir/temporal.password"
if [[ ! -s "$pw_file" ]]; then
  (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$pw_file")
fi
pg_password="$(cat "$pw_file")"
history_shards="${PG_HISTORY_SHARDS:-${CLUSTER_HISTORY_SHARDS:-4}}"
{
  echo "# Written by scripts/cluster/up.sh. The shard count is fixed when the database is created: a"
  echo "# server started with another one refuses to run, so it is kept here."
  printf 'PG_PORT_LAST=%q\nPG_BIN_USED=%q\nPG_HISTORY_SHARDS=%q\n' "$pg_port" "$PG_BIN" "$history_shards"
} >"$pg_settings"

if [[ "$(psql_admin postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'temporal'")" != 1 ]]; then
  psql_admin postgres -c "CREATE ROLE temporal LOGIN PASSWORD '$pg_password'"
fi
for db in temporal temporal_visibility; do
  if [[ "$(psql_admin postgres -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]]; then
    say "creating database $db"
    psql_admin postgres -c "CREATE DATABASE $db OWNER temporal"
  fi
done

# Schemas, with the server's own tool: setup once, then update to the newest version in the module
# (a no-op when current, so this also upgrades the database after a version bump).
export SQL_PASSWORD="$pg_password" # read by the sql tool; kept off the command line
sql_tool() { "$TEMPORAL_SQL_TOOL" --plugin postgres12 --ep 127.0.0.1 -p "$pg_port" -u temporal "$@"; }
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  kind="${pair#*:}"
  if [[ "$(psql_admin "$db" -c "SELECT to_regclass('public.schema_version') IS NOT NULL")" != t ]]; then
    say "setting up schema of $db"
    sql_tool --db "$db" setup-schema -v 0.0 >>"$log_dir/schema.log" 2>&1 ||
      die_with_log "setup-schema of $db failed" "$log_dir/schema.log"
  fi
  sql_tool --db "$db" update-schema -d "$TEMPORAL_SCHEMA_DIR/$kind/versioned" >>"$log_dir/schema.log" 2>&1 ||
    die_with_log "update-schema of $db failed" "$log_dir/schema.log"
  say "schema of $db: version $(psql_admin "$db" -c "SELECT curr_version FROM schema_version LIMIT 1")"
done
unset SQL_PASSWORD

# ------------------------------------------------------------------------------------------------
# The Temporal server: all four services (frontend, history, matching, worker) in one process.
# ------------------------------------------------------------------------------------------------
temporal_root="$CLUSTER_DIR/temporal"
mkdir -p "$temporal_root/config"
temporal_address="127.0.0.1:$temporal_port"
server_log="$log_dir/temporal.log"

if server_pid="$(pid_of temporal)"; then
  say "Temporal server already running (pid $server_pid) on $temporal_address"
else
  for ((p = temporal_port; p <= temporal_port + 9; p++)); do
    port_in_use "$p" && die "port $p is in use (Temporal takes $temporal_port-$((temporal_port + 9)); set CLUSTER_TEMPORAL_PORT)"
  done
  # Written on every start; holds the database password, so 0600.
  (
    umask 077
    cat >"$temporal_root/config/cluster.yaml" <<EOF
# Written by scripts/cluster/up.sh on every start: the Temporal server on the cluster's PostgreSQL.
log:
  stdout: true
  level: ${CLUSTER_TEMPORAL_LOG_LEVEL:-warn}

persistence:
  # Fixed for the life of the database (see pg/settings.env). Production sizes it to its history
  # load (512 is common); four is plenty for one machine with two cores.
  numHistoryShards: $history_shards
  defaultStore: default
  visibilityStore: visibility
  datastores:
    default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "127.0.0.1:$pg_port"
        connectProtocol: tcp
        user: temporal
        password: "$pg_password"
        maxConns: 20
        maxIdleConns: 20
        maxConnLifetime: 1h
    visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "127.0.0.1:$pg_port"
        connectProtocol: tcp
        user: temporal
        password: "$pg_password"
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  metrics:
    prometheus:
      framework: tally
      timerType: histogram
      listenAddress: "127.0.0.1:$((temporal_port + 9))"

services:
  frontend:
    rpc:
      grpcPort: $temporal_port
      httpPort: $((temporal_port + 1))
      membershipPort: $((temporal_port + 5))
      bindOnIP: 127.0.0.1
  history:
    rpc:
      grpcPort: $((temporal_port + 2))
      membershipPort: $((temporal_port + 6))
      bindOnIP: 127.0.0.1
  matching:
    rpc:
      grpcPort: $((temporal_port + 3))
      membershipPort: $((temporal_port + 7))
      bindOnIP: 127.0.0.1
  worker:
    rpc:
      grpcPort: $((temporal_port + 4))
      membershipPort: $((temporal_port + 8))
      bindOnIP: 127.0.0.1

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "$temporal_address"
      httpAddress: "127.0.0.1:$((temporal_port + 1))"

dcRedirectionPolicy:
  policy: noop

dynamicConfigClient:
  filepath: "$here/dynamicconfig.yaml"
  pollInterval: 10s
EOF
  )
  say "starting Temporal server $TEMPORAL_SERVER_VERSION on $temporal_address"
  echo "--- $(date -Is) start" >>"$server_log"
  server_started=$(now_ms)
  start_detached temporal "$server_log" \
    "$TEMPORAL_SERVER_BIN" --root "$temporal_root" --config config --env cluster --allow-no-auth start
fi

# Ready when the frontend answers a health check (the CLI's own gRPC health call).
for ((i = 0; ; i++)); do
  "$TEMPORAL_CLI" operator cluster health --address "$temporal_address" >/dev/null 2>&1 && break
  pid_of temporal >/dev/null || die_with_log "the Temporal server exited" "$server_log"
  ((i < 600)) || die_with_log "Temporal did not become healthy in 60 s" "$server_log"
  sleep 0.1
done
say "Temporal server healthy ($(elapsed)${server_started:+; $(($(now_ms) - server_started)) ms after its start})"

TEMPORAL_CLI="$TEMPORAL_CLI" TEMPORAL_ADDRESS="$temporal_address" TEMPORAL_NAMESPACE=default \
  TEMPORAL_RETENTION=72h bash "$here/register.sh"

# ------------------------------------------------------------------------------------------------
# The service: emulators once, then the workers and API instances, all sharing them.
# ------------------------------------------------------------------------------------------------
mkdir -p "$CLUSTER_DIR/service"
# Calls in flight carry tokens signed with this secret; every API instance must accept them.
secret_file="$CLUSTER_DIR/service/voximplant-result.secret"
[[ -s "$secret_file" ]] || (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$secret_file")

# Node runs the TypeScript through tsx's loader in the same process (`tsx file` would put a wrapper
# process in front, and a kill -9 of the wrapper would leave the service running).
node_ts=(node --import tsx)

emulator_urls="$CLUSTER_DIR/emulators.json"
svc_env=(
  TEMPORAL_ADDRESS="$temporal_address"
  TEMPORAL_NAMESPACE=default
  DATA_DIR="$CLUSTER_DIR/service"
  VOXIMPLANT_RESULT_SECRET="$(cat "$secret_file")"
  # Call results come back to one API instance (production puts a load balancer here).
  PUBLIC_URL="${PUBLIC_URL:-http://127.0.0.1:${api_ports[0]}}"
  HOST="${HOST:-127.0.0.1}"
  # Each process would bind the same SDK metrics port; one per host is how production runs them.
  SDK_METRICS_PORT="${SDK_METRICS_PORT:-0}"
  # The same for /metrics' own loopback port (each process logs the one it took).
  METRICS_PORT="${METRICS_PORT:-0}"
)

if [[ "${CLUSTER_EMULATORS:-1}" == 1 ]]; then
  if pid="$(pid_of emulators)" && [[ -s "$emulator_urls" ]]; then
    say "emulators already running (pid $pid)"
  else
    : >"$emulator_urls"
    start_detached emulators "$log_dir/emulators.log" bash -c \
      "exec ${node_ts[*]} emulators/main.ts >'$emulator_urls'"
    for ((i = 0; ; i++)); do
      node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$emulator_urls" 2>/dev/null && break
      pid_of emulators >/dev/null || die_with_log "the emulators exited" "$log_dir/emulators.log"
      ((i < 300)) || die_with_log "the emulators did not start in 30 s" "$log_dir/emulators.log"
      sleep 0.1
    done
  fi
  url_of() { node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))[process.argv[2]])' "$emulator_urls" "$1"; }
  bitrix24_url="$(url_of bitrix24)"
  voximplant_url="$(url_of voximplant)"
  smsru_url="$(url_of smsru)"
  telegram_url="$(url_of telegram)"
  # The emulators' own credentials (EMULATOR_CREDENTIALS in emulators/credentials.ts). Set explicitly, so no
  # process starts emulators of its own and every one talks to these.
  svc_env+=(
    BITRIX24_WEBHOOK_URL="$bitrix24_url/rest/1/emulatorwebhookcode/"
    VOXIMPLANT_API_URL="$voximplant_url"
    VOXIMPLANT_ACCOUNT_ID=1
    VOXIMPLANT_API_KEY=emulator-api-key
    VOXIMPLANT_RULE_ID=1
    SMSRU_API_URL="$smsru_url"
    SMSRU_API_ID=EMULATOR-API-ID
    TELEGRAM_API_URL="$telegram_url"
    TELEGRAM_BOT_TOKEN=123456:EMULATOR-TOKEN
    TELEGRAM_CHAT_ID=-1000000000001
  )
fi

start_service() { # name role [port]
  local name="$1" role="$2" port="${3:-0}" log="$log_dir/$1.log"
  if pid="$(pid_of "$name")"; then
    say "$name already running (pid $pid)"
    return 0
  fi
  if [[ "$port" != 0 ]] && port_in_use "$port"; then die "port $port for $name is in use"; fi
  echo "--- $(date -Is) start" >>"$log"
  start_detached "$name" "$log" env "${svc_env[@]}" SERVICE_ROLE="$role" PORT="$port" "${node_ts[@]}" service/main.ts
  started+=("$name")
}

# A worker is ready when Temporal lists it (identity pid@host, the SDK's default) among the pollers
# of each of its task queues; an API instance when it answers /readyz (which asks Temporal).
task_queues=("${TEMPORAL_TASK_QUEUE:-leads}" "${TEMPORAL_CALL_TASK_QUEUE:-lead-calls}" "${TEMPORAL_CRM_TASK_QUEUE:-lead-crm}")
worker_polls() { # pid
  local q out
  for q in "${task_queues[@]}"; do
    out="$("$TEMPORAL_CLI" task-queue describe --address "$temporal_address" --namespace default \
      --task-queue "$q" --output json 2>/dev/null)" || return 1
    [[ "$out" == *"\"$1@"* ]] || return 1
  done
}
wait_ready() { # name
  local name="$1" log="$log_dir/$1.log" i pid port
  for ((i = 0; ; i++)); do
    pid="$(pid_of "$name")" || die_with_log "$name exited" "$log"
    if [[ "$name" == api-* ]]; then
      port="${api_ports[${name#api-} - 1]}"
      curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
    else
      worker_polls "$pid" && break
    fi
    ((i < 600)) || die_with_log "$name not ready in 120 s" "$log"
    sleep 0.2
  done
  say "$name ready ($(elapsed))"
}

# The first process alone, then the rest together: a process creates the files it shares through
# DATA_DIR (keys, secrets) when they are missing, and two doing that at once could read a half-written
# one. An API instance goes first: it is ready in a few seconds (a worker bundles its workflows first).
names=()
for ((i = 1; i <= ${#api_ports[@]}; i++)); do names+=("api-$i"); done
for ((i = 1; i <= worker_count; i++)); do names+=("worker-$i"); done
start_named() { # name
  if [[ "$1" == api-* ]]; then start_service "$1" api "${api_ports[${1#api-} - 1]}"; else start_service "$1" worker; fi
}
((${#names[@]} > 0)) || die "no workers and no API instances asked for"
started=()
start_named "${names[0]}"
((${#started[@]} == 0)) || wait_ready "${names[0]}"
started=()
for name in "${names[@]:1}"; do start_named "$name"; done
for name in "${started[@]}"; do wait_ready "$name"; done

# ------------------------------------------------------------------------------------------------
# What runs where: printed, and written to cluster.json for tools and tests.
# ------------------------------------------------------------------------------------------------
json_pids=""
for f in "$pid_dir"/*.pid; do
  name="$(basename "$f" .pid)"
  pid="$(pid_of "$name")" || continue
  json_pids+="${json_pids:+, }\"$name\": $pid"
done
json_apis=""
for port in "${api_ports[@]}"; do json_apis+="${json_apis:+, }\"http://127.0.0.1:$port\""; done
cat >"$CLUSTER_DIR/cluster.json" <<EOF
{
  "dir": "$CLUSTER_DIR",
  "temporalAddress": "$temporal_address",
  "namespace": "default",
  "postgres": "postgresql://temporal@127.0.0.1:$pg_port/temporal",
  "apis": [$json_apis],
  "emulators": $(if [[ -s "$emulator_urls" && "${CLUSTER_EMULATORS:-1}" == 1 ]]; then cat "$emulator_urls"; else echo null; fi),
  "pids": {$json_pids}
}
EOF

say "cluster up in $(elapsed)"
{
  echo "Temporal      $temporal_address  (namespace default; server pid $(pid_of temporal), RSS $(rss_mb "$(pid_of temporal)") MB)"
  echo "PostgreSQL    127.0.0.1:$pg_port  (user temporal, password in $pw_file)"
  for ((i = 1; i <= ${#api_ports[@]}; i++)); do
    pid="$(pid_of "api-$i")"
    echo "API $i         http://127.0.0.1:${api_ports[i - 1]}  (pid $pid, RSS $(rss_mb "$pid") MB)"
  done
  for ((i = 1; i <= worker_count; i++)); do
    pid="$(pid_of "worker-$i")"
    echo "worker $i      pid $pid, RSS $(rss_mb "$pid") MB"
  done
  [[ -s "$emulator_urls" && "${CLUSTER_EMULATORS:-1}" == 1 ]] && echo "emulators     $(tr -d '\n ' <"$emulator_urls")"
  [[ -s "$CLUSTER_DIR/service/operator.token" ]] && echo "operator      token in $CLUSTER_DIR/service/operator.token (unless OPERATOR_TOKEN is set)"
  echo "logs          $log_dir"
  echo "stop with     CLUSTER_DIR=$CLUSTER_DIR scripts/cluster/down.sh"
}
