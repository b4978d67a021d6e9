// How many lead workflows a worker keeps in memory between their tasks.
import type { AppConfig } from '../config';

/**
 * What one cached lead workflow adds to the service process's RSS, measured (README, "Figures"):
 * its state in the workflow thread's V8 heap (about 95 KB live), the SDK's per-run bookkeeping on
 * the main thread and the core's per-run state. 1,000 asleep in a cache of 1,024 against a cache
 * of 10, with scripts/node.sh's memory settings.
 */
export const CACHED_LEAD_BYTES = 160 * 1024;

/**
 * The worker's workflow cache: a fixed count when WORKFLOW_CACHE_SIZE is set, otherwise as many
 * leads as WORKFLOW_CACHE_MEMORY_MB holds. Sleeping leads are the least recently used, so they fall
 * out first and the process stays near its budget however many sleep.
 */
export function workflowCacheSize(config: Pick<AppConfig, 'temporal'>): number {
  const { workflowCacheSize: fixed, workflowCacheMemoryMb } = config.temporal;
  if (fixed !== undefined) return fixed;
  return Math.max(10, Math.floor((workflowCacheMemoryMb * 2 ** 20) / CACHED_LEAD_BYTES));
}
