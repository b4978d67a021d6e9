// Diagnostic: what the server's matching does with a backlog, independent of the machine's speed.
// A backlog of low-priority activities (key 3, as retries and morning wake-ups) is queued first,
// then a few high-priority ones (key 1, as first calls); only then does a worker start to take
// them under a server-side rate limit (maxTaskQueueActivitiesPerSecond). Printed: where the
// high-priority ones came in the order of starts (priority honoured: among the first), and how
// exactly the server kept the rate (the most starts in any sliding second, and the mean).
import { Client } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { DevServer } from '../../support/temporalServer';
import { sleep, table } from './stats';

export interface MatchingRun {
  low: number;
  high: number;
  rate: number;
  /** 1-based positions of the high-priority activities in the order they started */
  highPositions: number[];
  maxPerSlidingSecond: number;
  meanPerSecond: number;
  /** starts in the rate-limited part of the run, seconds */
  spanMs: number;
  complete: boolean;
}

export async function measureMatching(
  server: DevServer,
  o: { low: number; high: number; rate: number },
): Promise<MatchingRun> {
  const connection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const stamp = Date.now();
  const wfQueue = `bench-match-wf-${stamp}`;
  const actQueue = `bench-match-act-${stamp}`;
  const starts: Array<{ at: number; key: number }> = [];
  const wfWorker = await Worker.create({
    connection,
    namespace: server.namespace,
    taskQueue: wfQueue,
    workflowsPath: require.resolve('./priorityWorkflow'),
  });
  const wfRunning = wfWorker.run();
  let actWorker: Worker | undefined;
  let actRunning: Promise<void> | undefined;
  try {
    const startAll = (n: number, key: number, prefix: string) =>
      Promise.all(
        Array.from({ length: n }, (_, i) =>
          client.workflow.start('markOnce', {
            taskQueue: wfQueue,
            workflowId: `${prefix}-${stamp}-${i}`,
            args: [actQueue, key],
          }),
        ),
      );
    // The activities are scheduled once each workflow's first task ran; wait for that to settle.
    const settle = async () => {
      for (let i = 0; i < 3; i++) await sleep(1_000);
    };
    await startAll(o.low, 3, 'low');
    await settle();
    await startAll(o.high, 1, 'high');
    await settle();
    actWorker = await Worker.create({
      connection,
      namespace: server.namespace,
      taskQueue: actQueue,
      activities: {
        async mark(key: number) {
          starts.push({ at: Date.now(), key });
        },
      },
      maxTaskQueueActivitiesPerSecond: o.rate,
      maxConcurrentActivityTaskExecutions: 100,
    });
    actRunning = actWorker.run();
    const deadline = Date.now() + ((o.low + o.high) / o.rate) * 3_000 + 30_000;
    while (starts.length < o.low + o.high && Date.now() < deadline) await sleep(100);
  } finally {
    actWorker?.shutdown();
    wfWorker.shutdown();
    await Promise.all([actRunning ?? Promise.resolve(), wfRunning].map((p) => p.catch(() => undefined)));
    await connection.close();
  }
  const highPositions = starts.flatMap((s, i) => (s.key === 1 ? [i + 1] : []));
  // The first second holds the limiter's initial burst; the rate is read after it.
  const times = starts.map((s) => s.at);
  let sliding = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    sliding = Math.max(sliding, i - j + 1);
  }
  const after = times.filter((t) => t >= times[0]! + 1000);
  const spanMs = after.length > 1 ? after[after.length - 1]! - after[0]! : 0;
  return {
    ...o,
    highPositions,
    maxPerSlidingSecond: sliding,
    meanPerSecond: spanMs > 0 ? ((after.length - 1) / spanMs) * 1000 : NaN,
    spanMs,
    complete: starts.length === o.low + o.high,
  };
}

export function matchingTable(r: MatchingRun): string {
  const pos = r.highPositions;
  const median = pos.length ? pos[Math.floor(pos.length / 2)]! : NaN;
  return table(
    [
      `${r.low} activities at priority 3 queued, then ${r.high} at priority 1; worker limited to ${r.rate}/s`,
      'value',
    ],
    [
      [
        `priority-1 activities: start positions (1 = first; honoured: ≤ ${r.high})`,
        pos.length ? `${pos[0]}…${pos[pos.length - 1]} (median ${median})` : '—',
      ],
      [
        'verdict',
        !pos.length
          ? '—'
          : pos[pos.length - 1]! <= r.high + 2
            ? 'priority honoured'
            : median <= r.high
              ? 'priority partly honoured (per partition)'
              : 'priority ignored',
      ],
      [`most starts in any sliding second (limit ${r.rate})`, r.maxPerSlidingSecond],
      [
        'mean rate after the first second',
        Number.isFinite(r.meanPerSecond) ? `${r.meanPerSecond.toFixed(1)}/s` : '—',
      ],
      ['every activity started', r.complete ? 'yes' : 'no'],
    ],
  );
}
