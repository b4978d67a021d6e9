#!/usr/bin/env bash
# Registers what the service needs on a fresh Temporal cluster: the namespace and the custom search
# attributes of workflows/searchAttributes.ts. Safe to run again: what exists is left alone.
# Used by scripts/cluster/up.sh and by the one-shot service of docker-compose.temporal.yml (the
# admin-tools image), so it sticks to POSIX sh: no arrays, no [[ ]].
#   TEMPORAL_ADDRESS     frontend host:port (default 127.0.0.1:7233)
#   TEMPORAL_NAMESPACE   namespace (default "default")
#   TEMPORAL_RETENTION   closed workflows are kept this long (default 72h)
#   TEMPORAL_CLI         the temporal CLI (default: `temporal` on PATH)
#   REGISTER_WAIT_S      how long to wait for the frontend to answer (default 60)
set -eu
# pipefail is in bash and in newer dash/busybox sh; use it where there is one.
# shellcheck disable=SC3040
if (set -o pipefail) 2>/dev/null; then set -o pipefail; fi

# Name=Type, as `temporal server start-dev --search-attribute` takes them. Must equal
# searchAttributeFlags() of workflows/searchAttributes.ts (the cluster test checks that).
SEARCH_ATTRIBUTES="LeadStatus=Keyword LeadPartner=Keyword LeadSite=Keyword CallAttempts=Int NextCallAt=Datetime OrderAmount=Double ManualReason=Keyword"

cli="${TEMPORAL_CLI:-temporal}"
address="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
retention="${TEMPORAL_RETENTION:-72h}"
wait_s="${REGISTER_WAIT_S:-60}"
say() { echo "[cluster:register] $*" >&2; }

if [ "${1:-}" = "--list" ]; then
  # For tests and tooling: the attributes this script registers, one Name=Type a line.
  for sa in $SEARCH_ATTRIBUTES; do echo "$sa"; done
  exit 0
fi

# The frontend may still be starting (the compose service starts with it).
i=0
until "$cli" operator cluster health --address "$address" >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -ge "$((wait_s * 2))" ]; then
    say "Temporal at $address did not become healthy within ${wait_s}s"
    exit 1
  fi
  sleep 0.5
done

if "$cli" operator namespace describe --address "$address" --namespace "$namespace" >/dev/null 2>&1; then
  say "namespace $namespace exists"
else
  say "creating namespace $namespace (retention $retention)"
  "$cli" operator namespace create --address "$address" --namespace "$namespace" --retention "$retention" >&2
fi

# A change to a namespace reaches the frontend's cache within its refresh interval (about 10 s).
# Waits until a query is served: the namespace is known, and the attributes the query names are too.
wait_served() { # query description
  i=0
  until "$cli" workflow count --address "$address" --namespace "$namespace" --query "$1" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -ge "$((wait_s * 2))" ]; then
      say "$2 not served by $address within ${wait_s}s"
      exit 1
    fi
    sleep 0.5
  done
}
wait_served "ExecutionStatus = 'Running'" "namespace $namespace"

# Only the missing ones: creating an existing attribute is refused by some server versions.
existing="$("$cli" operator search-attribute list --address "$address" --namespace "$namespace")"
missing=""
for sa in $SEARCH_ATTRIBUTES; do
  name="${sa%%=*}"
  # Not grep -q: it may stop reading early, and pipefail would count that as a failure.
  if ! printf '%s\n' "$existing" | grep -E "(^|[[:space:]])$name([[:space:]]|$)" >/dev/null; then
    missing="$missing $sa"
  fi
done
if [ -z "$missing" ]; then
  say "search attributes present: $SEARCH_ATTRIBUTES"
else
  set --
  for sa in $missing; do set -- "$@" --name "${sa%%=*}" --type "${sa#*=}"; done
  say "creating search attributes:$missing"
  "$cli" operator search-attribute create --address "$address" --namespace "$namespace" "$@" >&2
fi

# Workers and API instances that start next may use every attribute at once.
query=""
for sa in $SEARCH_ATTRIBUTES; do query="${query:+$query AND }${sa%%=*} IS NULL"; done
wait_served "$query" "search attributes"
say "namespace $namespace ready with its search attributes"
