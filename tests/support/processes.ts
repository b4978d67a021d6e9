// Real processes for fault tests: a Temporal dev server on a SQLite file and service processes,
// each of which a test can kill -9 and start again.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { freePort, startDevServer, type DevServer } from '../../support/temporalServer';
import { emulatorProviderEnv, type RunningEmulators } from '../../emulators';

const ROOT = path.resolve(__dirname, '..', '..');

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready in ${timeoutMs} ms`);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function kill9(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await exited(child);
}

export type DevServerProcess = DevServer;

/** A dev server on a SQLite file with the run command's flags, so it can die and come back. */
export function startDevServerProcess(): Promise<DevServerProcess> {
  return startDevServer({
    dir: fs.mkdtempSync(path.join(os.tmpdir(), 'stl-fault-')),
    cli: process.env.STL_TEMPORAL_CLI,
  });
}

export interface ServiceProcess {
  url: string;
  /** `{ authorization: 'Bearer <OPERATOR_TOKEN>' }` for the operator routes */
  operator: Record<string, string>;
  child?: ChildProcess;
  start(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** `tsx service/main.ts` against the given Temporal, with every provider pointed at `emulators`. */
export async function serviceProcess(
  temporalAddress: string,
  emulators: RunningEmulators,
  extraEnv: Record<string, string> = {},
): Promise<ServiceProcess> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-svc-'));
  const operatorToken = `test-operator-${crypto.randomBytes(12).toString('hex')}`;
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    TEMPORAL_ADDRESS: temporalAddress,
    SDK_METRICS_PORT: '0',
    // Several service processes on one host: none may take the default metrics port.
    METRICS_PORT: '0',
    ...emulatorProviderEnv(emulators.urls),
    BITRIX24_REQUESTS_PER_SECOND: '50',
    INTAKE_RATE_LIMIT_PER_MINUTE: '100000',
    CALLS_PER_SECOND: '100',
    OPERATOR_TOKEN: operatorToken,
    ...extraEnv,
  };
  const url = `http://127.0.0.1:${port}`;
  const svc: ServiceProcess = {
    url,
    operator: { authorization: `Bearer ${env.OPERATOR_TOKEN}` },
    async start() {
      // node itself with tsx as a loader: the tsx CLI would run the service in a grandchild that a
      // kill -9 of the child would leave behind.
      svc.child = spawn(process.execPath, ['--import', 'tsx', 'service/main.ts'], {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      if (env.SERVICE_ROLE === 'worker') {
        // A worker alone serves no HTTP: it is ready once Temporal sees it polling the lead queue.
        await waitFor(() => pollsLeadQueue(temporalAddress), 60_000, 'worker');
      } else {
        await waitFor(async () => (await fetch(`${url}/readyz`)).ok, 60_000, 'service');
      }
    },
    kill: () => kill9(svc.child),
    async stop() {
      if (svc.child && svc.child.exitCode === null) {
        svc.child.kill('SIGTERM');
        await Promise.race([exited(svc.child), new Promise((r) => setTimeout(r, 15_000).unref())]);
        await kill9(svc.child);
      }
    },
  };
  return svc;
}

/** Whether a worker polls the default lead workflow queue (`leads`) of this Temporal. */
async function pollsLeadQueue(address: string): Promise<boolean> {
  const connection = await Connection.connect({ address });
  try {
    const { pollers } = await connection.workflowService.describeTaskQueue({
      namespace: 'default',
      taskQueue: { name: 'leads' },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (pollers?.length ?? 0) > 0;
  } finally {
    await connection.close();
  }
}
