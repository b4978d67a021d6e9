#!/usr/bin/env bash
# Runs a TypeScript entry (service/main.ts, scripts/start.ts) in Node with the service's memory
# settings, through tsx's loader in this same process (exec: the pid is the service's own, and a
# kill reaches it directly). Every setting can be overridden from the environment.
#
# LD_PRELOAD of jemalloc, when the system has it (Debian and Ubuntu: package libjemalloc2) and no
#   preload is set already; STL_MALLOC=glibc keeps glibc's malloc. jemalloc gives the memory of a
#   busy spell back once the spell is over (a background thread returns freed pages after a few
#   seconds), where glibc's heaps keep it, fragmented: 8,000 leads posted at 12/s, faster than two
#   cores carry them, left the service at rest with 354 MB under glibc and 271 MB under jemalloc.
#   MALLOC_CONF is jemalloc's own setting.
# GLIBC_TUNABLES (glibc's malloc, when jemalloc is not there): with glibc's default dynamic
#   thresholds, the buffers the Temporal core and the workflow activations allocate and free leave
#   the process's malloc heaps fragmented and never trimmed (a night of 1,000 leads left 140 MB
#   that a GC could not give back); fixed thresholds and two arenas return most of it.
#   /proc/<pid>/environ shows the variable cut after its first setting (glibc rewrites it in place
#   as it parses it); all three apply.
# NODE_OPTIONS --max-semi-space-size (MB, per V8 heap: the main thread's and the workflow
#   thread's): V8's default of 16 lets each young generation grow to 32 MB and stay there.
#   A value of your own later in NODE_OPTIONS wins.
set -euo pipefail
if [[ -z "${LD_PRELOAD:-}" && "${STL_MALLOC:-jemalloc}" == jemalloc ]]; then
  for lib in /usr/lib/{x86_64,aarch64}-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 /usr/lib/libjemalloc.so.2; do
    if [[ -r "$lib" ]]; then
      export LD_PRELOAD="$lib"
      : "${MALLOC_CONF:=background_thread:true}"
      export MALLOC_CONF
      break
    fi
  done
fi
: "${GLIBC_TUNABLES:=glibc.malloc.arena_max=2:glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072}"
export GLIBC_TUNABLES
export NODE_OPTIONS="--max-semi-space-size=4 ${NODE_OPTIONS:-}"
exec node --import tsx "$@"
