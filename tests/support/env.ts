// What a test file needs to run the real service against a real Temporal server: a dev server on
// free ports (or the Java time-skipping server), the emulators, and the API + worker in-process.
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import os from 'node:os';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { loadConfig, type AppConfig } from '../../config';
import { startService, type RunningService } from '../../service';
import { ALL_SEARCH_ATTRIBUTES, searchAttributeFlags } from '../../workflows/searchAttributes';
import { DEV_SERVER_TUNING, healthy } from '../../support/temporalServer';
import type { RunningEmulators } from '../../emulators';
import { freePort } from '../../support/temporalServer';
import type { Clock } from '../../support/clock';

export interface TestStack {
  env: TestWorkflowEnvironment;
  service: RunningService;
  emulators: RunningEmulators;
  config: AppConfig;
  url: string;
  /** GET /metrics of this stack: its own loopback port, off the API's */
  metricsUrl: string;
  dataDir: string;
  /** OPERATOR_TOKEN of this stack */
  operatorToken: string;
  /** the header the operator routes want: `{ authorization: 'Bearer <OPERATOR_TOKEN>' }` */
  operator: Record<string, string>;
  close(): Promise<void>;
}

export function workflowBundle() {
  const codePath = process.env.STL_WORKFLOW_BUNDLE;
  if (!codePath) throw new Error('STL_WORKFLOW_BUNDLE is unset: run the tests with `npm test`');
  return { workflowBundle: { codePath } };
}

/** The SDK's own logs at ERROR (activity retries the tests provoke are expected), once per test process (the Runtime can be installed only once). */
function quietSdkLogs(): void {
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    // already installed in this process
  }
}

export async function startDevServer(): Promise<TestWorkflowEnvironment> {
  quietSdkLogs();
  const port = await freePort();
  const server = await launch(process.env.STL_TEMPORAL_CLI!, 'Temporal dev server', port, [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--namespace',
    'default',
    '--log-level',
    'warn',
    '--log-format',
    'json',
    ...DEV_SERVER_TUNING.filter(
      (a) => !a.startsWith('journal') && !a.startsWith('synchronous') && a !== '--sqlite-pragma',
    ),
    ...searchAttributeFlags().flatMap((f) => ['--search-attribute', f]),
  ]);
  // The port opens before the frontend is healthy; on a busy machine a first call in between was
  // refused ("Frontend is not healthy yet", seen in CI). Wait as the run command's server does.
  const address = `127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (!(await healthy(process.env.STL_TEMPORAL_CLI!, address))) {
    if (Date.now() > deadline)
      throw new Error(`the Temporal dev server at ${address} did not become healthy`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const env = await TestWorkflowEnvironment.createFromExistingServer({ address, namespace: 'default' });
  return withServer(env, server);
}

/**
 * The SDK's own way to start the test server (createTimeSkipping) gives the JVM a fixed five
 * seconds to open its port, which a busy machine does not always meet. So the JVM is started here
 * and waited for as long as it takes, and the environment is made on it with the SDK's own factory
 * (not public, hence the cast) in its time-skipping form.
 */
interface TimeSkippingOnExistingServer {
  create(opts: {
    server: { type: 'existing' };
    supportsTimeSkipping: true;
    address: string;
    namespace: string;
  }): Promise<TestWorkflowEnvironment>;
}

export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  quietSdkLogs();
  // A free port may be taken before the JVM binds it (seen in CI: another file's dev server opened
  // one of its own ports there, so the port answered, the JVM failed to bind and the SDK met the
  // other server): then another port, a few times.
  for (let tries = 1; ; tries++) {
    const port = await freePort();
    let server: ChildProcess | undefined;
    try {
      server = await launch(process.env.STL_TEST_SERVER!, 'time-skipping test server', port, [String(port)]);
      return await timeSkippingEnvironment(port, server);
    } catch (err) {
      server?.kill('SIGKILL');
      if (tries >= 3) throw err;
    }
  }
}

async function timeSkippingEnvironment(port: number, server: ChildProcess): Promise<TestWorkflowEnvironment> {
  const env = await (TestWorkflowEnvironment as unknown as TimeSkippingOnExistingServer).create({
    server: { type: 'existing' },
    supportsTimeSkipping: true,
    address: `127.0.0.1:${port}`,
    namespace: 'default',
  });
  // The Java test server knows no custom search attributes until they are added.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      ALL_SEARCH_ATTRIBUTES.map((k) => [
        k.name,
        temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${k.type}`],
      ]),
    ),
  });
  return withServer(env, server);
}

/**
 * Starts a server process and resolves once its port accepts connections; rejects (and stops it)
 * if it exits first, or has not served within `capMs`, which only keeps a broken server from
 * outliving the test file.
 */
async function launch(
  executable: string,
  what: string,
  port: number,
  args: string[],
  capMs = 50_000,
): Promise<ChildProcess> {
  const child = spawn(executable, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const cap = Date.now() + capMs;
  try {
    while (!(await accepts(port))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${what} exited (${child.signalCode ?? child.exitCode}) before it served`);
      }
      if (Date.now() > cap) throw new Error(`${what} did not serve within ${capMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The environment's teardown also stops the server process it runs on. */
function withServer(env: TestWorkflowEnvironment, server: ChildProcess): TestWorkflowEnvironment {
  const teardown = env.teardown.bind(env);
  env.teardown = async () => {
    await teardown();
    if (server.exitCode !== null || server.signalCode !== null) return;
    const gone = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await gone;
  };
  return env;
}

/** Env for loadConfig: short, test-friendly durations unless the test overrides them. */
export function testEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-data-'));
  return {
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    WORKING_HOURS: '00:00-24:00',
    CALL_RESULT_TIMEOUT: '5s',
    CALL_RETRY_DELAY: '1s',
    CALLS_PER_SECOND: '100',
    BITRIX24_REQUESTS_PER_SECOND: '50',
    INTAKE_RATE_LIMIT_PER_MINUTE: '100000',
    OPERATOR_TOKEN: `test-operator-${crypto.randomBytes(12).toString('hex')}`,
    // Test files run side by side: each stack's metrics on a free port of its own.
    METRICS_PORT: '0',
    ...overrides,
  };
}

export async function startStack(
  env: TestWorkflowEnvironment,
  overrides: Record<string, string> = {},
  opts: { role?: 'all' | 'api' | 'worker'; clock?: Clock } = {},
): Promise<TestStack> {
  const processEnv = testEnv(overrides);
  let config = loadConfig(processEnv);
  // The dev server is already running; point the service at it.
  config = { ...config, temporal: { ...config.temporal, namespace: env.namespace ?? 'default' } };
  const service = await startService(config, {
    connection: env.nativeConnection,
    workflows: workflowBundle(),
    role: opts.role,
    clock: opts.clock,
    // Tests assert on outcomes, not on the portal's 2 requests/s; the rate limit has its own tests.
    emulatorOptions: { bitrix24: { rateLimit: false } },
  });
  return {
    env,
    service,
    emulators: service.emulators!,
    config: service.config,
    url: service.url!,
    metricsUrl: service.metricsUrl ?? `${service.url!}/metrics`,
    dataDir: processEnv.DATA_DIR!,
    operatorToken: service.config.operator.token,
    operator: { authorization: `Bearer ${service.config.operator.token}` },
    close: () => service.close(),
  };
}
