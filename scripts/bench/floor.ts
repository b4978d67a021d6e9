// Phase 1, the floors, and the probe beside the leads. The bare floor: a one-activity workflow on
// the same server, started eagerly by a client that shares its NativeConnection with an in-process
// worker on a task queue of its own. The call-path floor: what the first call needs at the least,
// HTTP POST → an eager start → one workflow task → one activity on a queue with a server-side rate
// limit (as the service's call queue has), timed to the activity's start. The same bare workflow,
// started beside the leads during their runs, gives the floor under the same load.
import { opsPer, type Ops } from './serverOps';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { DevServer } from '../../support/temporalServer';
import { callPathQueue } from './bareWorkflow';
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
  /** the server's operations per bare workflow */
  opsPerWorkflow: Ops;
  /** the call-path floor at this rate: POST sent → its activity started */
  callPath: Percentiles;
}

export interface Starts {
  workflowIds: string[];
  errors: number;
  /** started but whose activity never ran within a minute */
  missing: number;
  latency: Percentiles;
}

export interface Floors {
  /** `rate` bare workflows a second for `seconds`, each timed from its start request to its activity. */
  bare(rate: number, seconds: number): Promise<Starts>;
  /** `rate` POSTs a second to the call-path floor's HTTP server, each timed to its activity. */
  callPath(rate: number, seconds: number): Promise<Starts>;
  close(): Promise<void>;
}

const BARE_QUEUE = 'bench-bare';
const CALL_PATH_QUEUE = 'bench-call-path';
/** The service's call queue in the bench runs at CALLS_PER_SECOND=1000: the same limit here. */
const CALL_PATH_RATE_LIMIT = 1000;

let seq = 0;

/**
 * The floors' workers and HTTP server, in this process (as the service is in the latency runs):
 * `grpcCompression` is the service's TEMPORAL_GRPC_COMPRESSION, so both pay for the same transport.
 */
export async function openFloors(server: DevServer, grpcCompression: 'none' | 'gzip'): Promise<Floors> {
  const connection = await NativeConnection.connect({
    address: server.address,
    grpcCompression: { codec: grpcCompression },
  });
  const client = new Client({ connection, namespace: server.namespace });
  const activityStartedAt = new Map<string, number>();
  const touch = async () => {
    activityStartedAt.set(Context.current().info.workflowExecution?.workflowId ?? '', Date.now());
  };
  const common = { connection, namespace: server.namespace, activities: { touch } } as const;
  const workflowsPath = require.resolve('./bareWorkflow');
  const workers = await Promise.all([
    Worker.create({ ...common, taskQueue: BARE_QUEUE, workflowsPath }),
    Worker.create({ ...common, taskQueue: CALL_PATH_QUEUE, workflowsPath }),
    Worker.create({
      ...common,
      taskQueue: callPathQueue(CALL_PATH_QUEUE),
      maxTaskQueueActivitiesPerSecond: CALL_PATH_RATE_LIMIT,
    }),
  ]);
  const running = workers.map((w) => w.run());

  const start = (type: 'bare' | 'callPath', workflowId: string) =>
    client.workflow.start(type, {
      taskQueue: type === 'bare' ? BARE_QUEUE : CALL_PATH_QUEUE,
      workflowId,
      workflowIdConflictPolicy: 'FAIL',
      requestEagerStart: true,
    });
  // The call path's intake: a JSON body with the workflow id, answered 202 once the start returned.
  const intake = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk));
    req.on('end', () => {
      const { id } = JSON.parse(body) as { id: string };
      start('callPath', id).then(
        () => res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"started"}'),
        () => res.writeHead(503).end(),
      );
    });
  });
  await new Promise<void>((resolve) => intake.listen(0, '127.0.0.1', resolve));
  const intakeUrl = `http://127.0.0.1:${(intake.address() as AddressInfo).port}/`;

  const timed = async (
    rate: number,
    seconds: number,
    prefix: string,
    send: (workflowId: string) => Promise<unknown>,
  ): Promise<Starts> => {
    let errors = 0;
    const sent = await openLoop(rate, seconds, async () => {
      const workflowId = `${prefix}-${seq++}`;
      const sentAt = Date.now();
      await send(workflowId).catch(() => (errors += 1));
      return { workflowId, sentAt };
    });
    const deadline = Date.now() + 60_000;
    while (sent.some((s) => !activityStartedAt.has(s.workflowId)) && Date.now() < deadline) await sleep(20);
    const ran = sent.filter((s) => activityStartedAt.has(s.workflowId));
    return {
      workflowIds: sent.map((s) => s.workflowId),
      errors,
      missing: sent.length - ran.length - errors,
      latency: percentiles(ran.map((s) => activityStartedAt.get(s.workflowId)! - s.sentAt)),
    };
  };

  return {
    bare: (rate, seconds) => timed(rate, seconds, 'bare', (id) => start('bare', id)),
    callPath: (rate, seconds) =>
      timed(rate, seconds, 'call-path', async (id) => {
        const res = await fetch(intakeUrl, { method: 'POST', body: JSON.stringify({ id }) });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`HTTP ${res.status}`);
      }),
    async close() {
      await new Promise((resolve) => intake.close(resolve));
      for (const w of workers) w.shutdown();
      await Promise.all(running.map((r) => r.catch(() => undefined)));
      await connection.close();
    },
  };
}

export async function measureFloor(
  settings: BenchSettings,
  server: DevServer,
  serverCpu: () => number | undefined,
  serverOps: () => Promise<Ops>,
  /** runs while the floor's workers still exist (their metrics vanish with them) */
  beforeShutdown: () => Promise<void>,
  grpcCompression: 'none' | 'gzip',
): Promise<FloorRun[]> {
  const floors = await openFloors(server, grpcCompression);
  try {
    await floors.bare(settings.warmup.rate, settings.warmup.seconds);
    await floors.callPath(settings.warmup.rate, settings.warmup.seconds);
    const results: FloorRun[] = [];
    for (const rate of settings.latencyRates) {
      const seconds = settings.floorSeconds;
      const probe = startProbe(serverCpu);
      const cpu0 = cpuNow(serverCpu);
      const ops0 = await serverOps();
      const bare = await floors.bare(rate, seconds);
      await sleep(settings.floorCpuTailMs);
      const cpu = cpuPer(cpu0, cpuNow(serverCpu), bare.workflowIds.length);
      const ops = opsPer(ops0, await serverOps(), bare.workflowIds.length);
      const p = probe();
      const callPath = await floors.callPath(rate, seconds);
      await sleep(settings.floorCpuTailMs);
      results.push({
        rate,
        seconds,
        workflowIds: bare.workflowIds,
        errors: bare.errors,
        missing: bare.missing,
        latency: bare.latency,
        probe: p,
        cpuPerWorkflow: cpu,
        opsPerWorkflow: ops,
        callPath: callPath.latency,
      });
    }
    await beforeShutdown();
    return results;
  } finally {
    await floors.close();
  }
}
