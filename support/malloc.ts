// Which malloc a process runs with: scripts/node.sh preloads jemalloc when the system has it, and
// the service's memory after a busy spell depends on it (README, "Production"), so the start-up
// log and the benchmark say which one they got.
import fs from 'node:fs';

export function mallocOf(pid: number | 'self' = 'self'): 'jemalloc' | 'system' {
  try {
    return fs.readFileSync(`/proc/${pid}/maps`, 'utf8').includes('/libjemalloc') ? 'jemalloc' : 'system';
  } catch {
    return 'system';
  }
}
