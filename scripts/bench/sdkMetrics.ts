// The Temporal SDK's own Prometheus metrics (the run command exposes them too), scraped before and
// after each phase: how long workflow tasks waited for a poller and ran, and how many failed.
import { ms, num } from './stats';

type Series = { name: string; labels: Record<string, string>; value: number };
export type Snapshot = Series[];

export async function scrape(fetchText: (() => Promise<string>) | undefined): Promise<Snapshot> {
  if (!fetchText) return [];
  const text = await fetchText().catch(() => '');
  const out: Snapshot = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const keyOf = (x: Series) => `${x.name}{${JSON.stringify(x.labels)}}`;

/** Change of every matching series; a series that restarted (a new worker) counts from zero. */
function delta(before: Snapshot, after: Snapshot, name: string, where: Record<string, string> = {}): number {
  const old = new Map(before.map((x) => [keyOf(x), x.value]));
  return after
    .filter((x) => x.name === name && Object.entries(where).every(([k, v]) => x.labels[k] === v))
    .reduce((a, x) => {
      const prev = old.get(keyOf(x)) ?? 0;
      const v = Number.isFinite(x.value) ? x.value : 0;
      return a + (v >= prev ? v - prev : v);
    }, 0);
}

function values(s: Snapshot, name: string, label: string): string[] {
  return [...new Set(s.filter((x) => x.name === name && x.labels[label]).map((x) => x.labels[label]!))];
}

/** Histogram over the phase: count, mean and the share that took at most `fastMs`. */
function histogram(
  before: Snapshot,
  after: Snapshot,
  name: string,
  where: Record<string, string>,
  fastMs = 100,
) {
  const d = (n: string, w: Record<string, string>) => delta(before, after, n, w);
  const count = d(`${name}_count`, where);
  const sum = d(`${name}_sum`, where);
  const fast = d(`${name}_bucket`, { ...where, le: String(fastMs) });
  return { count, mean: count ? sum / count : Number.NaN, fastShare: count ? fast / count : Number.NaN };
}

export function phaseSummary(before: Snapshot, after: Snapshot): string[] {
  if (after.length === 0) return [];
  const d = (n: string, w: Record<string, string> = {}) => delta(before, after, n, w);
  const lines: string[] = [];
  const wfTypes = values(after, 'temporal_workflow_task_execution_latency_count', 'workflow_type');
  const parts = wfTypes
    .map((t) => {
      const h = histogram(before, after, 'temporal_workflow_task_execution_latency', { workflow_type: t });
      const failed = d('temporal_workflow_task_execution_failed', { workflow_type: t });
      return h.count ? `${t} ${h.count} (mean ${ms(h.mean)}${failed ? `, ${failed} failed` : ''})` : '';
    })
    .filter(Boolean);
  if (parts.length) lines.push(`workflow tasks run: ${parts.join('; ')}`);
  const taskQueues = [...new Set(after.map((x) => x.labels.task_queue).filter((q): q is string => !!q))];
  for (const q of taskQueues) {
    const wft = histogram(before, after, 'temporal_workflow_task_schedule_to_start_latency', {
      task_queue: q,
    });
    const act = histogram(before, after, 'temporal_activity_schedule_to_start_latency', { task_queue: q });
    const bits: string[] = [];
    if (wft.count)
      bits.push(
        `workflow task schedule-to-start n=${wft.count} mean ${ms(wft.mean)} (${num(wft.fastShare * 100)}% ≤ 100 ms)`,
      );
    if (act.count) bits.push(`activity schedule-to-start n=${act.count} mean ${ms(act.mean)}`);
    if (bits.length) lines.push(`queue ${q}: ${bits.join('; ')}`);
  }
  const evicted = d('temporal_sticky_cache_total_forced_eviction');
  const hits = d('temporal_sticky_cache_hit');
  const pollers = after
    .filter((x) => x.name === 'temporal_num_pollers' && x.labels.poller_type?.includes('workflow'))
    .map((x) => `${x.labels.poller_type}@${x.labels.task_queue}=${x.value}`);
  const cached = after
    .filter((x) => x.name === 'temporal_sticky_cache_size')
    .map((x) => `${x.labels.task_queue}=${x.value}`);
  lines.push(
    `workflow cache: ${hits} hits, ${evicted} forced evictions, cached now ${cached.join(', ') || '—'}; ` +
      `pollers now: ${pollers.join(', ') || '—'}`,
  );
  return lines;
}
