// How many lead workflows a worker keeps in memory between their tasks.
import type { AppConfig } from '../config';

/**
 * What one cached lead workflow holds in the service process, measured (README, "Figures"): its
 * state in the workflow sandbox, its activation's payloads and the core's copy of its history.
 */
export const CACHED_LEAD_BYTES = 512 * 1024;

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
