// The local Temporal dev server: where its CLI comes from and the flags it runs with. Shared by the
// run command, the tests and the benchmark so all three measure the same server.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { searchAttributeFlags } from '../workflows/searchAttributes';

const SCRIPTS = path.resolve(__dirname, '..', 'scripts');

/** Finds or provisions the pinned Temporal CLI (scripts/temporal-cli.sh) and returns its path. */
export function temporalCliPath(): string {
  const out = execFileSync('bash', [path.join(SCRIPTS, 'temporal-cli.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

/** The Java time-skipping test server's wrapper (scripts/test-server.sh). */
export function timeSkippingServerPath(): string {
  const out = execFileSync('bash', [path.join(SCRIPTS, 'test-server.sh')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  return out.trim().split('\n').pop()!;
}

/**
 * The dev server's defaults cap it near 20 workflows/s (README, "Figures"): WAL and
 * synchronous=normal lift SQLite's write ceiling, the transfer-queue poll rate lifts the 20/s cap,
 * and eager activity dispatch saves a matching round trip per activity.
 */
export const DEV_SERVER_TUNING = [
  '--sqlite-pragma',
  'journal_mode=wal',
  '--sqlite-pragma',
  'synchronous=normal',
  '--dynamic-config-value',
  'history.transferProcessorMaxPollRPS=1000',
  '--dynamic-config-value',
  'system.enableActivityEagerExecution=true',
];

export interface DevServerArgs {
  ip: string;
  port: number;
  uiPort: number;
  namespace: string;
  dbFile: string;
  uiCodecEndpoint?: string;
}

export function devServerArgs(o: DevServerArgs): string[] {
  return [
    'server',
    'start-dev',
    '--ip',
    o.ip,
    '--port',
    String(o.port),
    '--ui-port',
    String(o.uiPort),
    '--namespace',
    o.namespace,
    '--db-filename',
    o.dbFile,
    '--log-level',
    'warn',
    ...DEV_SERVER_TUNING,
    ...searchAttributeFlags().flatMap((f) => ['--search-attribute', f]),
    ...(o.uiCodecEndpoint ? ['--ui-codec-endpoint', o.uiCodecEndpoint] : []),
  ];
}
