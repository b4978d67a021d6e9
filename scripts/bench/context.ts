// What every phase needs: the dev server, the running service, its emulators' call ledger, and how
// to start or restart the service with config overrides.
import { serverOps, type Ops } from './serverOps';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadConfig, type AppConfig } from '../../config';
import { emulatorProviderEnv, startEmulators, type RunningEmulators } from '../../emulators';
import { startService, type RunningService } from '../../service';
import { mallocOf } from '../../support/malloc';
import { freePort, type DevServer } from '../../support/temporalServer';
import { workflowCacheSize } from '../../worker/cacheSize';
import { CallLedger } from './load';
import type { BenchSettings } from './settings';
import { cpuSecondsOf, rssOf } from './stats';

/** Every provider on its emulator, whatever the caller's shell exports. */
const NO_CREDENTIALS: Record<string, string> = {
  TEMPORAL_ADDRESS: '',
  TEMPORAL_TLS_CERT: '',
  TEMPORAL_TLS_KEY: '',
  TEMPORAL_API_KEY: '',
  PUBLIC_URL: '',
  BITRIX24_WEBHOOK_URL: '',
  BITRIX24_PORTAL_URL: '',
  BITRIX24_CLIENT_ID: '',
  BITRIX24_CLIENT_SECRET: '',
  BITRIX24_REFRESH_TOKEN: '',
  VOXIMPLANT_ACCOUNT_ID: '',
  VOXIMPLANT_API_KEY: '',
  VOXIMPLANT_CREDENTIALS_FILE: '',
  VOXIMPLANT_RULE_ID: '',
  SMSRU_API_ID: '',
  TELEGRAM_BOT_TOKEN: '',
  TELEGRAM_CHAT_ID: '',
};

/** How the providers behave around the service; every emulator answers its API requests at once. */
export interface ProviderProfile {
  label: string;
  /** how long a call lasts: the scenario reports its result this long after StartScenarios */
  callMs: number;
  /** whether the Bitrix24 emulator enforces the portal's 2 requests/s (and the service paces itself) */
  bitrix24RateLimit: boolean;
  env: Record<string, string>;
}

/** The worst case for the service: every step of every lead competes for the same two cores. */
export const INSTANT_PROVIDERS: ProviderProfile = {
  label: 'instant providers: the call reports 5 ms after it starts, Bitrix24 at 50 requests/s',
  callMs: 5,
  bitrix24RateLimit: false,
  env: {},
};

/**
 * What a shop sees: a robot call with its recording lasts about 20 s before the scenario reports,
 * and a Bitrix24 portal takes 2 requests/s, so the CRM work of a burst trails behind it. On task
 * queues of their own, so the CRM backlog it leaves never weighs on the phases after it.
 */
export const REAL_PACE_PROVIDERS: ProviderProfile = {
  label: 'real pace: calls last 20 s, Bitrix24 at its 2 requests/s',
  callMs: 20_000,
  bitrix24RateLimit: true,
  env: {
    BITRIX24_REQUESTS_PER_SECOND: '2',
    TEMPORAL_TASK_QUEUE: 'pace-leads',
    TEMPORAL_CALL_TASK_QUEUE: 'pace-calls',
    TEMPORAL_CRM_TASK_QUEUE: 'pace-crm',
  },
};

/**
 * The service as `npm run service` runs it, in a process of its own, against emulators that stay in
 * this one: its memory is the service's alone, not the benchmark's, the emulators' or the ledger's.
 */
export interface ServiceProcess {
  url: string;
  pid: number;
  /** a client of the benchmark's own, for visibility counts */
  client: Client;
  emulators: RunningEmulators;
  /** resident set of the service process, bytes */
  rss(): number;
  /** the malloc it runs with (scripts/node.sh preloads jemalloc when the system has it) */
  malloc: 'jemalloc' | 'system';
  /** the service's V8 heap in use, from its /metrics (prom-client's default metrics) */
  heapUsed(): Promise<number | undefined>;
  /** the text of its /metrics (ours and the SDK's) */
  metrics(): Promise<string>;
  /** its lead worker's maxCachedWorkflows, from the same settings */
  cacheCapacity: number;
  close(): Promise<void>;
}

export class Bench {
  service?: RunningService;
  /** one bundle for the whole run: the service and the replay diagnostic run the same code */
  workflowBundle?: { code: string };
  /** where the running service takes leads */
  url?: string;
  ledger?: CallLedger;
  readonly dataDir: string;

  constructor(
    readonly settings: BenchSettings,
    readonly server: DevServer,
    readonly tmpDir: string,
    /** the dev server's Prometheus metrics, when it serves them */
    readonly serverMetricsUrl?: string,
  ) {
    this.dataDir = path.join(tmpDir, 'data');
    fs.mkdirSync(this.dataDir, { recursive: true });
  }

  /** The dev server's operation counters so far (see serverOps). */
  async serverOps(): Promise<Ops> {
    return this.serverMetricsUrl ? serverOps(this.serverMetricsUrl) : new Map();
  }

  /** CPU seconds the dev server has used so far */
  serverCpu(): number | undefined {
    return cpuSecondsOf(this.server.pid);
  }

  env(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...NO_CREDENTIALS,
      NODE_ENV: 'development',
      DATA_DIR: this.dataDir,
      HOST: '127.0.0.1',
      PORT: '0',
      TEMPORAL_PORT: String(this.server.port),
      TEMPORAL_NAMESPACE: this.server.namespace,
      WORKING_HOURS: '00:00-24:00',
      WEEKEND_WORKING_HOURS: '',
      CALLS_PER_SECOND: '1000',
      BITRIX24_REQUESTS_PER_SECOND: '50',
      INTAKE_RATE_LIMIT_PER_MINUTE: '100000000',
      LOG_LEVEL: 'warn',
      SDK_METRICS_PORT: '0',
      // /metrics on a loopback port of its own, any free one: nothing else on the host is disturbed.
      METRICS_PORT: '0',
      // --as-shop: the bench's own shop key (posts with it skip the per-phone daily limit).
      ...(this.settings.asShop ? { INTAKE_API_KEY: 'bench-shop-key-0123456789abcdef0123456789' } : {}),
      ...this.settings.serviceEnv,
      ...overrides,
    };
  }

  config(overrides: Record<string, string> = {}): AppConfig {
    return loadConfig(this.env(overrides));
  }

  async startService(
    overrides: Record<string, string> = {},
    providers: ProviderProfile = INSTANT_PROVIDERS,
  ): Promise<RunningService> {
    await this.stopService();
    const service = await startService(this.config({ ...providers.env, ...overrides }), {
      role: 'all',
      ...(this.workflowBundle ? { workflows: { workflowBundle: this.workflowBundle } } : {}),
      // A funded SMS account (the emulator's default balance runs out after ~285 messages).
      emulatorOptions: {
        bitrix24: providers.bitrix24RateLimit ? {} : { rateLimit: false },
        smsru: { balance: 1e9 },
      },
    });
    service.emulators!.voximplant.control.setDefaultOutcome({
      result: 'answered',
      delayMs: providers.callMs,
    });
    this.service = service;
    this.url = service.url!;
    this.ledger = new CallLedger(service.emulators!.voximplant.state);
    return service;
  }

  async startServiceProcess(overrides: Record<string, string>, logFile: string): Promise<ServiceProcess> {
    await this.stopService();
    const emulators = await startEmulators({ bitrix24: { rateLimit: false }, smsru: { balance: 1e9 } });
    emulators.voximplant.control.setDefaultOutcome({ result: 'answered', delayMs: 5 });
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const sdkMetricsPort = await freePort([port]);
    // The service's /metrics is on a loopback port of its own, chosen here so this process knows it.
    const metricsUrl = `http://127.0.0.1:${await freePort([port, sdkMetricsPort])}/metrics`;
    const env = {
      // The SDK's metrics on a port of its own, appended to /metrics: the workflow cache's figures.
      ...this.env({
        SDK_METRICS_PORT: String(sdkMetricsPort),
        METRICS_PORT: new URL(metricsUrl).port,
        ...overrides,
      }),
      PORT: String(port),
      PUBLIC_URL: url,
      // Real-provider mode, pointed at this process's emulators.
      ...emulatorProviderEnv(emulators.urls),
    };
    const repo = path.resolve(__dirname, '..', '..');
    const log = fs.openSync(logFile, 'a');
    // As `npm run service` starts it (scripts/node.sh sets its memory settings, then execs node).
    const child: ChildProcess = spawn(
      'bash',
      [path.join(repo, 'scripts', 'node.sh'), path.join(repo, 'service', 'main.ts')],
      {
        cwd: repo,
        env,
        stdio: ['ignore', log, log],
      },
    );
    fs.closeSync(log);
    // A benchmark stopped with Ctrl-C (or failing) takes the service with it.
    const killOnExit = () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    };
    process.on('exit', killOnExit);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ready = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        await emulators.close();
        throw new Error(`the service process did not become ready (see ${logFile})`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const connection = await Connection.connect({ address: this.server.address });
    const client = new Client({ connection, namespace: this.server.namespace });
    this.url = url;
    this.ledger = new CallLedger(emulators.voximplant.state);
    const pid = child.pid!;
    const metrics = () =>
      fetch(metricsUrl).then(
        (r) => r.text(),
        () => '',
      );
    return {
      url,
      pid,
      client,
      emulators,
      rss: () => rssOf(pid) ?? 0,
      malloc: mallocOf(pid),
      metrics,
      cacheCapacity: workflowCacheSize(this.config(overrides)),
      heapUsed: async () => {
        const text = await metrics();
        const m = /^nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
        return m ? Number(m[1]) : undefined;
      },
      close: async () => {
        this.url = undefined;
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
        process.off('exit', killOnExit);
        await connection.close();
        await emulators.close();
      },
    };
  }

  async stopService(): Promise<void> {
    this.url = undefined;
    const s = this.service;
    this.service = undefined;
    if (s) await s.close();
  }
}

function codeVersion(): string {
  const repo = path.resolve(__dirname, '..', '..');
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim();
    return `code ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain') ? ' (+ uncommitted changes)' : ''}`;
  } catch {
    return 'code version unknown';
  }
}

export function machineText(server: DevServer): string {
  const cpus = os.cpus();
  const version = execFileSync(server.cli, ['--version'], { encoding: 'utf8' }).trim().split('\n')[0];
  return [
    `machine: ${cpus.length} CPUs (${cpus[0]?.model ?? 'unknown'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ` +
      `${os.type()} ${os.release()} ${os.arch()}`,
    `node ${process.version}; ${version}; dev server flags of startDevServer(); ${codeVersion()}`,
  ].join('\n');
}
