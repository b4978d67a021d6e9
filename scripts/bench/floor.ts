// Phase 1, the floor: a bare one-activity workflow on the same server, started eagerly by a client
// that shares its NativeConnection with an in-process worker on a task queue of its own.
import { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { DevServer } from '../../support/temporalServer';
import { openLoop } from './load';
import type { BenchSettings } from './settings';
import {
  cpuNow,
  cpuPer,
  percentiles,
  sleep,
  startProbe,
  type Cpu,
  type Percentiles,
  type Probe,
} from './stats';

export interface FloorRun {
  rate: number;
  seconds: number;
  workflowIds: string[];
  errors: number;
  missing: number;
  /** from just before client.workflow.start to the activity's start */
  latency: Percentiles;
  probe: Probe;
  /** CPU seconds per workflow, node process and dev server, until its activity ran */
  cpuPerWorkflow: Cpu;
}

const TASK_QUEUE = 'bench-bare';

export async function measureFloor(
  settings: BenchSettings,
  server: DevServer,
  serverCpu: () => number | undefined,
  /** runs while the bare worker still exists (its metrics vanish with it) */
  beforeShutdown: () => Promise<void>,
  /** the service's TEMPORAL_GRPC_COMPRESSION: the floor pays for the same transport as the leads */
  grpcCompression: 'none' | 'gzip',
): Promise<FloorRun[]> {
  const connection = await NativeConnection.connect({
    address: server.address,
    grpcCompression: { codec: grpcCompression },
  });
  const client = new Client({ connection, namespace: server.namespace });
  const activityStartedAt = new Map<string, number>();
  const worker = await Worker.create({
    connection,
    namespace: server.namespace,
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

    await startMany(settings.warmup.rate, settings.warmup.seconds);
    const results: FloorRun[] = [];
    for (const rate of settings.latencyRates) {
      const seconds = settings.floorSeconds;
      const probe = startProbe(serverCpu);
      const cpu0 = cpuNow(serverCpu);
      const { sent, errors, latencies } = await startMany(rate, seconds);
      await sleep(settings.floorCpuTailMs);
      results.push({
        rate,
        seconds,
        workflowIds: sent.map((s) => s.workflowId),
        errors,
        missing: sent.length - latencies.length,
        latency: percentiles(latencies),
        probe: probe(),
        cpuPerWorkflow: cpuPer(cpu0, cpuNow(serverCpu), sent.length),
      });
    }
    await beforeShutdown();
    return results;
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await connection.close();
  }
}
