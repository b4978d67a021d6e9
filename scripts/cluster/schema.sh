#!/bin/sh
# Creates Temporal's two PostgreSQL databases and brings their schemas to the server's version, as
# scripts/cluster/up.sh does. Safe to run again: what exists is left alone, and update-schema only
# applies the versions that are missing. Run by the one-shot schema service of
# docker-compose.temporal.yml (the admin-tools image, which ships the tool and the schemas of its
# server version), so it sticks to POSIX sh.
#   POSTGRES_SEEDS       PostgreSQL host (default postgresql)
#   DB_PORT              its port (default 5432)
#   POSTGRES_USER        the user Temporal connects as (default temporal)
#   SQL_PASSWORD         its password, read by the tool (kept off the command line)
#   TEMPORAL_SQL_TOOL    the schema tool (default temporal-sql-tool on PATH)
#   TEMPORAL_SCHEMA_DIR  schema/postgresql/v12 of the server (default: where admin-tools keeps it)
set -eu

tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
schema_dir="${TEMPORAL_SCHEMA_DIR:-/etc/temporal/schema/postgresql/v12}"
say() { echo "[schema] $*" >&2; }

for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  kind="${pair#*:}"
  run() {
    "$tool" --plugin postgres12 --ep "${POSTGRES_SEEDS:-postgresql}" -p "${DB_PORT:-5432}" \
      -u "${POSTGRES_USER:-temporal}" --db "$db" "$@"
  }
  run create
  run setup-schema -v 0.0
  run update-schema -d "$schema_dir/$kind/versioned"
  say "$db: schema up to date"
done
