// The local Temporal dev server: where its CLI comes from, the flags it runs with, and the one
// launcher the run command, the tests and the benchmark start it with, so all three run the same
// server.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { searchAttributeFlags } from '../workflows/searchAttributes';

const SCRIPTS = path.resolve(__dirname, '..', 'scripts');

function lastLineOf(script: string): string {
  const out = execFileSync('bash', [path.join(SCRIPTS, script)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

/** Finds or provisions the pinned Temporal CLI (scripts/temporal-cli.sh) and returns its path. */
export const temporalCliPath = (): string => lastLineOf('temporal-cli.sh');

/** The Java time-skipping test server's wrapper (scripts/test-server.sh). */
export const timeSkippingServerPath = (): string => lastLineOf('test-server.sh');

/** A TCP port nobody listens on at 127.0.0.1 right now, other than those in `avoid`. */
export async function freePort(avoid: number[] = []): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!avoid.includes(port)) return port;
  }
}

const flagEach = (flag: string, values: string[]) => values.flatMap((v) => [flag, v]);

/** Concurrent long-running requests (polls, updates, queries) the frontend takes per API method. */
export const CONCURRENT_LONG_REQUESTS = 20_000;

/**
 * Without these the dev server tops out near 20 workflows/s (see PERFORMANCE.md): SQLite's rollback
 * journal with synchronous=FULL queues every write, the history transfer queue is polled 20 times a
 * second per shard, and the server does not hand activities to the worker eagerly. The cluster's
 * dynamic config (scripts/cluster/dynamicconfig.yaml) carries the same values.
 */
export const DEV_SERVER_TUNING = [
  ...flagEach('--sqlite-pragma', ['journal_mode=wal', 'synchronous=normal']),
  ...flagEach('--dynamic-config-value', [
    'history.transferProcessorMaxPollRPS=1000',
    'system.enableActivityEagerExecution=true',
    // Every call scenario's claim and report is an update the API holds open until the lead's
    // workflow answers; the frontend's default of 1,200 concurrent long-running requests per API
    // refused 2,868 of them in a 3,000-lead burst ("namespace concurrent poller limit exceeded").
    `frontend.namespaceCount=${CONCURRENT_LONG_REQUESTS}`,
  ]),
];

/**
 * What only a single-node server wants. One matching partition per task queue: with the default
 * four, a task written to one partition and a poller waiting on another meet only after a
 * forwarding hop, and a queue's rate limit is split four ways. The new matcher is the one that
 * honours task priorities (`priority` on workflows and activities; the old one ignores them).
 */
export const SINGLE_NODE_DYNAMIC_CONFIG: Readonly<Record<string, string>> = {
  'matching.numTaskqueueReadPartitions': '1',
  'matching.numTaskqueueWritePartitions': '1',
  'matching.useNewMatcher': 'true',
};

/** The dev server's flags; `dynamicConfig` overrides or adds dynamic config values (benchmark A/B runs). */
export function devServerTuning(dynamicConfig: Record<string, string> = {}): string[] {
  const values = { ...SINGLE_NODE_DYNAMIC_CONFIG, ...dynamicConfig };
  return [
    ...DEV_SERVER_TUNING,
    ...flagEach(
      '--dynamic-config-value',
      Object.entries(values).map(([k, v]) => `${k}=${v}`),
    ),
  ];
}

export interface DevServerOptions {
  /** holds temporal.sqlite (and temporal-server.log with `log`) */
  dir: string;
  /** the Temporal CLI (default: the pinned one, provisioned if missing) */
  cli?: string;
  /** default: free ports */
  port?: number;
  uiPort?: number;
  namespace?: string;
  uiCodecEndpoint?: string;
  /** append the server's output to dir/temporal-server.log (default: discard it) */
  log?: boolean;
  /** dynamic config values over DEV_SERVER_DYNAMIC_CONFIG (the benchmark's A/B runs) */
  dynamicConfig?: Record<string, string>;
  /** the server's Prometheus metrics on this loopback port (the benchmark counts its operations) */
  metricsPort?: number;
  /** the server exited without stop(), kill() or restart() asking it to */
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
}

export interface DevServer {
  cli: string;
  address: string;
  port: number;
  uiPort: number;
  namespace: string;
  dbFile: string;
  logFile?: string;
  /** the running server process (a new one after restart()) */
  readonly pid: number | undefined;
  /** SIGTERM, then SIGKILL if it is still there after 10 s */
  stop(): Promise<void>;
  /** kill -9 */
  kill(): Promise<void>;
  /** kill -9 without waiting, for a process 'exit' handler */
  killNow(): void;
  /** kill -9, then the same server again on the same ports and database */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

/** Whether the server at `address` answers `temporal operator cluster health` with SERVING. */
export function healthy(cli: string, address: string): Promise<boolean> {
  return new Promise((resolve) =>
    execFile(cli, ['operator', 'cluster', 'health', '--address', address], { timeout: 5_000 }, (err, out) =>
      resolve(!err && /SERVING/.test(String(out))),
    ),
  );
}

/** A wait that does not keep the process alive by itself. */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

// setpriv --pdeathsig: the kernel kills the server when the process that started it dies without
// cleaning up (kill -9, a Jest worker torn down), so no server is ever left behind.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f));

/** Starts a dev server with the project's flags and resolves once it reports SERVING. */
export async function startDevServer(o: DevServerOptions): Promise<DevServer> {
  const cli = o.cli ?? temporalCliPath();
  fs.mkdirSync(o.dir, { recursive: true });
  const port = o.port ?? (await freePort([o.uiPort ?? 0]));
  const uiPort = o.uiPort ?? (await freePort([port]));
  const namespace = o.namespace ?? 'default';
  const dbFile = path.join(o.dir, 'temporal.sqlite');
  const logFile = o.log ? path.join(o.dir, 'temporal-server.log') : undefined;
  const flags = {
    ip: '127.0.0.1',
    port,
    'ui-port': uiPort,
    namespace,
    'db-filename': dbFile,
    'log-level': 'warn',
  };
  const args = [
    ...['server', 'start-dev', ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)])],
    ...devServerTuning(o.dynamicConfig),
    ...flagEach('--search-attribute', searchAttributeFlags()),
    ...(o.uiCodecEndpoint ? ['--ui-codec-endpoint', o.uiCodecEndpoint] : []),
    ...(o.metricsPort ? ['--metrics-port', String(o.metricsPort)] : []),
  ];
  const address = `127.0.0.1:${port}`;

  let child: ChildProcess | undefined;
  let exited = Promise.resolve();
  let alive = false;
  let expectExit = false;

  const launch = async () => {
    expectExit = false;
    const out = logFile ? fs.openSync(logFile, 'a') : 'ignore';
    const [command, ...rest] = SETPRIV
      ? [SETPRIV, '--pdeathsig', 'KILL', '--', cli, ...args]
      : [cli, ...args];
    const current = spawn(command!, rest, { stdio: ['ignore', out, out] });
    if (typeof out === 'number') fs.closeSync(out);
    child = current;
    alive = true;
    exited = new Promise<void>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (!alive || child !== current) return resolve();
        alive = false;
        if (!expectExit) o.onUnexpectedExit?.(code, signal);
        resolve();
      };
      current.once('exit', done);
      current.once('error', () => done(null, null));
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const see = logFile ? `; see ${logFile}` : '';
    while (!(await healthy(cli, address))) {
      if (!alive) throw new Error(`the Temporal dev server exited at start${see}`);
      if (Date.now() > deadline) {
        await server.kill();
        throw new Error(
          `the Temporal dev server did not become healthy in ${READY_TIMEOUT_MS / 1000} s${see}`,
        );
      }
      await sleep(250);
    }
  };

  const server: DevServer = {
    cli,
    address,
    port,
    uiPort,
    namespace,
    dbFile,
    logFile,
    get pid() {
      return alive ? child?.pid : undefined;
    },
    async stop() {
      expectExit = true;
      if (!alive) return;
      child!.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
      if (alive) await server.kill();
    },
    async kill() {
      expectExit = true;
      if (!alive) return;
      child!.kill('SIGKILL');
      await exited;
    },
    killNow() {
      expectExit = true;
      if (alive) child!.kill('SIGKILL');
    },
    async restart() {
      await server.kill();
      await launch();
    },
  };
  await launch();
  return server;
}
