// What a test file needs to run the real service against a real Temporal server: a dev server on
// free ports (or the Java time-skipping server), the emulators, and the API + worker in-process.
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import { loadConfig, type AppConfig } from '../../config';
import { startService, type RunningService } from '../../service';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/searchAttributes';
import { DEV_SERVER_TUNING } from '../../support/temporalServer';
import type { RunningEmulators } from '../../emulators';

export interface TestStack {
  env: TestWorkflowEnvironment;
  service: RunningService;
  emulators: RunningEmulators;
  config: AppConfig;
  url: string;
  dataDir: string;
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
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: process.env.STL_TEMPORAL_CLI! },
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      extraArgs: DEV_SERVER_TUNING.filter(
        (a) => !a.startsWith('journal') && !a.startsWith('synchronous') && a !== '--sqlite-pragma',
      ),
      log: { level: 'warn', format: 'json' },
    },
  });
}

/**
 * The SDK gives the server five seconds to listen; a JVM on a busy machine can take longer, so a
 * start that ran out of that time is tried again (a JVM that starts cold needs no more than that).
 */
async function createTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({
        server: { executable: { type: 'existing-path', path: process.env.STL_TEST_SERVER! } },
      });
    } catch (err) {
      if (attempt >= 4 || !/did not start within/.test(String(err))) throw err;
    }
  }
}

export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  quietSdkLogs();
  const env = await createTimeSkippingEnv();
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
    ...overrides,
  };
}

export async function startStack(
  env: TestWorkflowEnvironment,
  overrides: Record<string, string> = {},
  opts: { role?: 'all' | 'api' | 'worker' } = {},
): Promise<TestStack> {
  const processEnv = testEnv(overrides);
  let config = loadConfig(processEnv);
  // The dev server is already running; point the service at it.
  config = { ...config, temporal: { ...config.temporal, namespace: env.namespace ?? 'default' } };
  const service = await startService(config, {
    connection: env.nativeConnection,
    workflows: workflowBundle(),
    role: opts.role,
    // Tests assert on outcomes, not on the portal's 2 requests/s; the rate limit has its own tests.
    emulatorOptions: { bitrix24: { rateLimit: false } },
  });
  return {
    env,
    service,
    emulators: service.emulators!,
    config: service.config,
    url: service.url!,
    dataDir: processEnv.DATA_DIR!,
    close: () => service.close(),
  };
}
