// CPU cost of the lead workflows' own code, without the server: replay finished histories on a
// replay worker (the same single workflow thread and sandbox the live worker uses) and time it
// per workflow task, next to the bare workflow's histories.
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { ms, table } from './stats';

export interface ReplayGroup {
  label: string;
  workflows: { workflowsPath: string } | { workflowBundle: { code: string } };
  workflowIds: string[];
  /** the service's payload codec, when its histories are sealed */
  dataConverter?: DataConverter;
}

type History = temporal.api.history.v1.IHistory;

async function measure(client: Client, group: ReplayGroup) {
  const histories: Array<{ workflowId: string; history: History }> = [];
  for (const workflowId of group.workflowIds) {
    try {
      histories.push({ workflowId, history: await client.workflow.getHandle(workflowId).fetchHistory() });
    } catch {
      // gone or unreadable: skip
    }
  }
  const tasks = (h: History) =>
    (h.events ?? []).filter((e) => e.workflowTaskCompletedEventAttributes != null).length;
  // Twice the list: the first pass pays for bundling and warm-up, the second is timed.
  const doubled = [...histories, ...histories];
  let n = 0;
  let timedFrom = 0;
  let failed = 0;
  let firstError: string | undefined;
  for await (const result of Worker.runReplayHistories(
    {
      ...group.workflows,
      replayName: `bench-${group.label}`,
      ...(group.dataConverter ? { dataConverter: group.dataConverter } : {}),
    },
    doubled,
  )) {
    n += 1;
    if (result.error) {
      failed += 1;
      firstError ??= `${result.workflowId}: ${String(result.error.message ?? result.error).slice(0, 300)}`;
    }
    if (n === histories.length) timedFrom = performance.now();
  }
  const elapsed = performance.now() - timedFrom;
  const wfts = histories.reduce((a, h) => a + tasks(h.history), 0);
  return {
    histories: histories.length,
    wfts,
    failed: failed / 2,
    firstError,
    perHistory: elapsed / Math.max(1, histories.length),
    perTask: elapsed / Math.max(1, wfts),
  };
}

export async function replayCost(client: Client, groups: ReplayGroup[]): Promise<string> {
  const rows: Array<Array<string | number>> = [];
  const errors: string[] = [];
  for (const g of groups) {
    const r = await measure(client, g);
    const none = r.histories === 0;
    rows.push([
      g.label,
      r.histories,
      r.wfts,
      r.failed,
      none ? '—' : ms(r.perHistory),
      none ? '—' : ms(r.perTask),
    ]);
    if (r.firstError) errors.push(`first replay error (${g.label}): ${r.firstError}`);
  }
  return [
    table(['replayed histories', 'n', 'workflow tasks', 'replay errors', 'per history', 'per task'], rows),
    ...errors,
  ].join('\n');
}
