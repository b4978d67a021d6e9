// Phase 1, the floor: a bare one-activity workflow on the same server, started eagerly by a client
// that shares its NativeConnection with an in-process worker on a task queue of its own.
import { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { openLoop } from './load';
import { cpuNow, percentile, sleep, startProbe, type Probe } from './stats';

export interface FloorRun {
  rate: number;
  seconds: number;
  started: number;
  errors: number;
  missing: number;
  latencies: number[];
  p50: number;
  p99: number;
  probe: Probe;
  /** CPU seconds per workflow, node process and dev server, until its activity ran */
  cpuPerWorkflow: { node: number; server: number };
}

const TASK_QUEUE = 'bench-bare';

export async function measureFloor(opts: {
  address: string;
  namespace: string;
  runs: Array<{ rate: number; seconds: number }>;
  serverCpu: () => number | undefined;
  /** runs while the bare worker still exists (its metrics vanish with it) */
  beforeShutdown?: () => Promise<void>;
}): Promise<FloorRun[]> {
  const connection = await NativeConnection.connect({ address: opts.address });
  const client = new Client({ connection, namespace: opts.namespace });
  const activityStartedAt = new Map<string, number>();
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace,
    taskQueue: TASK_QUEUE,
    workflowsPath: require.resolve('./bareWorkflow'),
    activities: {
      async touch() {
        activityStartedAt.set(Context.current().info.workflowExecution?.workflowId ?? '', Date.now());
      },
    },
  });
  const running = worker.run();
  try {
    let seq = 0;
    const startMany = async (rate: number, seconds: number) => {
      let errors = 0;
      const sent = await openLoop(rate, seconds, async () => {
        const workflowId = `bare-${seq++}`;
        const sentAt = Date.now();
        try {
          await client.workflow.start('bare', { taskQueue: TASK_QUEUE, workflowId, requestEagerStart: true });
        } catch {
          errors += 1;
        }
        return { workflowId, sentAt };
      });
      const deadline = Date.now() + 60_000;
      while (sent.some((s) => !activityStartedAt.has(s.workflowId)) && Date.now() < deadline) await sleep(20);
      const latencies = sent
        .filter((s) => activityStartedAt.has(s.workflowId))
        .map((s) => activityStartedAt.get(s.workflowId)! - s.sentAt);
      return { sent, errors, latencies };
    };

    await startMany(10, 2); // warm-up: JIT, sticky cache, connections
    const results: FloorRun[] = [];
    for (const { rate, seconds } of opts.runs) {
      const probe = startProbe(opts.serverCpu);
      const cpu0 = cpuNow(opts.serverCpu);
      const { sent, errors, latencies } = await startMany(rate, seconds);
      await sleep(2_000); // the workflows' completions
      const cpu1 = cpuNow(opts.serverCpu);
      const per = (a: number, b: number) => (b - a) / Math.max(1, sent.length);
      results.push({
        rate,
        seconds,
        started: sent.length,
        errors,
        missing: sent.length - latencies.length,
        latencies,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        probe: probe(),
        cpuPerWorkflow: { node: per(cpu0.node, cpu1.node), server: per(cpu0.server, cpu1.server) },
      });
    }
    await opts.beforeShutdown?.();
    return results;
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
  }
}
