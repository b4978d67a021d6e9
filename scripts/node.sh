#!/usr/bin/env bash
# Runs a TypeScript entry (service/main.ts, scripts/start.ts) in Node with the service's memory
# settings, through tsx's loader in this same process (exec: the pid is the service's own, and a
# kill reaches it directly). Either setting can be overridden from the environment.
#
# GLIBC_TUNABLES: with glibc's default dynamic thresholds, the buffers the Temporal core and the
#   workflow activations allocate and free leave the process's malloc heaps fragmented and never
#   trimmed (a night of 1,000 leads left 140 MB that a GC could not give back); fixed thresholds
#   and two arenas return it to the system. /proc/<pid>/environ shows the variable cut after its
#   first setting (glibc rewrites it in place as it parses it); all three apply.
# NODE_OPTIONS --max-semi-space-size (MB, per V8 heap: the main thread's and the workflow
#   thread's): V8's default of 16 lets each young generation grow to 32 MB and stay there.
#   A value of your own later in NODE_OPTIONS wins.
set -euo pipefail
: "${GLIBC_TUNABLES:=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072}"
export GLIBC_TUNABLES
export NODE_OPTIONS="--max-semi-space-size=4 ${NODE_OPTIONS:-}"
exec node --import tsx "$@"
