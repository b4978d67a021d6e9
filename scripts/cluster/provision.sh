#!/usr/bin/env bash
# Provisions what the production-shaped cluster needs and prints where it is, as shell assignments on
# stdout (messages go to stderr), so callers do `eval "$(scripts/cluster/provision.sh)"`:
#   TEMPORAL_SERVER_BIN   the Temporal server (go.temporal.io/server/cmd/server), built from source
#   TEMPORAL_SQL_TOOL     its schema tool (go.temporal.io/server/cmd/tools/sql)
#   TEMPORAL_SCHEMA_DIR   schema/postgresql/v12 of the same server module (temporal/, visibility/)
#   PG_BIN                PostgreSQL's server binaries (initdb, pg_ctl, postgres, psql)
#   TEMPORAL_CLI          the dev CLI (scripts/temporal-cli.sh): health checks, namespace, attributes
# Builds once per version into $STL_CACHE_DIR/temporal-server-$TEMPORAL_SERVER_VERSION; later runs
# only check the cached binaries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.sh
source "$here/../versions.sh"
say() { echo "[cluster:provision] $*" >&2; }

# --- PostgreSQL --------------------------------------------------------------------------------
# Debian's packages install the binaries under /usr/lib/postgresql/<major>/bin, off PATH; a newer
# major than 15 works as well (the schemas are for "postgres12", i.e. 12 and later).
find_pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then
    [[ -x "$PG_BIN/initdb" ]] && { echo "$PG_BIN"; return 0; }
    say "PG_BIN=$PG_BIN has no initdb"; return 1
  fi
  local d
  # Newest major first.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
    [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && { echo "$d"; return 0; }
  done
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return 0; fi
  return 1
}

if ! pg_bin="$(find_pg_bin)"; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL not found: installing Debian's postgresql with apt-get"
    # The package's post-install creates and starts a system cluster (main, port 5432); we never use
    # it: our cluster has its own data, port and socket folder.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2 || {
      apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
    }
    pg_bin="$(find_pg_bin)" || { say "postgresql installed but initdb not found"; exit 1; }
  else
    say "PostgreSQL (initdb, pg_ctl) not found. Install it (Debian: sudo apt-get install postgresql)"
    say "or set PG_BIN to the folder holding initdb and pg_ctl."
    exit 1
  fi
fi
say "PostgreSQL: $("$pg_bin/postgres" --version) in $pg_bin"

# --- Temporal server + schema tool, built from source -----------------------------------------
dir="$STL_CACHE_DIR/temporal-server-$TEMPORAL_SERVER_VERSION"
server_bin="$dir/server"
sql_tool="$dir/sql"
built() { [[ -x "$server_bin" && -x "$sql_tool" ]]; }

if ! built; then
  command -v go >/dev/null 2>&1 || {
    say "Go is needed to build Temporal server v$TEMPORAL_SERVER_VERSION (https://go.dev/dl/; the"
    say "server's go.mod asks for Go 1.25 or later)."
    exit 1
  }
  mkdir -p "$dir"
  # One build at a time: the test and a person running `npm run cluster` may ask together.
  exec 9>"$dir/.lock"
  flock 9
  if ! built; then
    say "building Temporal server v$TEMPORAL_SERVER_VERSION and its sql tool from source with"
    say "$(go version | cut -d' ' -f3) into $dir (a one-time step, minutes on 2 cores; cached after)"
    start=$(date +%s)
    # `go install pkg@version` builds the module as released (its go.mod has no replace directives),
    # whatever module or workspace the current folder belongs to.
    GOBIN="$dir" go install \
      "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION" \
      "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION" >&2
    say "built in $(($(date +%s) - start)) s"
  fi
  exec 9>&-
fi
built || { say "build finished but $server_bin or $sql_tool is missing"; exit 1; }
say "Temporal server: $server_bin ($("$server_bin" --version 2>/dev/null | head -1 || echo '?'))"

# --- Schemas: they ship inside the server module, which `go install` has put in the module cache -
modcache="$(go env GOMODCACHE 2>/dev/null || true)"
schema_dir="${modcache:+$modcache/go.temporal.io/server@v$TEMPORAL_SERVER_VERSION/schema/postgresql/v12}"
if [[ -z "$schema_dir" || ! -d "$schema_dir/temporal/versioned" ]]; then
  say "fetching the server module for its schemas (go mod download)"
  # `go mod download` needs a module context; an empty temporary one will do.
  tmp="$(mktemp -d)"
  (cd "$tmp" && go mod init stl-schema-fetch >/dev/null 2>&1 &&
    go mod download "go.temporal.io/server@v$TEMPORAL_SERVER_VERSION" >&2)
  rm -rf "$tmp"
  modcache="$(go env GOMODCACHE)"
  schema_dir="$modcache/go.temporal.io/server@v$TEMPORAL_SERVER_VERSION/schema/postgresql/v12"
fi
[[ -d "$schema_dir/temporal/versioned" && -d "$schema_dir/visibility/versioned" ]] || {
  say "no PostgreSQL schemas at $schema_dir"; exit 1
}
say "schemas: $schema_dir"

# --- The dev CLI, for health checks and registrations ----------------------------------------
cli="$(bash "$here/../temporal-cli.sh")"
say "Temporal CLI: $cli"

printf 'PG_BIN=%q\nTEMPORAL_SERVER_BIN=%q\nTEMPORAL_SQL_TOOL=%q\nTEMPORAL_SCHEMA_DIR=%q\nTEMPORAL_CLI=%q\n' \
  "$pg_bin" "$server_bin" "$sql_tool" "$schema_dir" "$cli"
