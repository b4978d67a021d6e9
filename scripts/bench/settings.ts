// The benchmark's options and the one settings object every phase reads. Options come from the
// command line (`npm run bench -- --quick`) or from the BENCH_* variables of the same meaning; the
// command line wins. --quick scales the run down (QUICK overrides FULL).
import { parseArgs } from 'node:util';

const FULL = {
  /** warm-up before the floor and the latency runs (JIT, sticky cache, sockets); not counted */
  warmup: { rate: 10, seconds: 2 },
  floorSeconds: 10,
  /** after a floor run, how long the workflows' completions still count as their CPU */
  floorCpuTailMs: 2_000,
  latencySeconds: 12,
  latencyRates: [10, 50],
  /** bare workflows a second started beside the leads of each latency run (the floor under load) */
  besideRate: 5,
  /** after a latency run's last call, how long its leads' remaining work still counts as their CPU */
  latencyCpuTailMs: 10_000,
  /** leads per latency run whose histories are read for the breakdown of where the time goes */
  breakdownSample: 40,
  throughputRates: [100, 150, 200, 300],
  throughputSeconds: 10,
  /** a second call for the same lead may trail the first; wait this long before counting */
  duplicateGraceMs: 1_000,
  sleepers: 10_000,
  /** the night's service process settles this long after it is ready before its memory is read */
  serviceSettleMs: 5_000,
  /** CALLS_PER_SECOND of the service in the morning */
  morningCallsPerSecond: 50,
  /** the least and the most time from the service's restart to the morning window */
  minNightSeconds: 90,
  maxNightSeconds: 45 * 60,
  /** with --no-morning: how long after the last lead fell asleep the night at rest is read */
  restSeconds: 300,
  /** histories of the 10/s latency run replayed for the workflow code's own CPU cost */
  replaySample: 20,
  /** phase 5: leads posted evenly at the real limits, and how long to wait for the CRM and the alerts */
  burst: { leads: 3_000, rate: 50, maxWaitMs: 600_000 },
  /** the matching diagnostic: a low-priority backlog, a few high-priority tasks, a rate-limited worker */
  matching: { low: 300, high: 20, rate: 50 },
  httpTimeoutSeconds: 30,
  drainTimeoutMs: 240_000,
  /** stop waiting for calls when none arrived for this long: something is stuck, not slow */
  stallMs: 90_000,
};

const QUICK: Partial<typeof FULL> = {
  floorSeconds: 5,
  latencySeconds: 5,
  throughputSeconds: 3,
  sleepers: 1_000,
  minNightSeconds: 45,
  maxNightSeconds: 150,
  restSeconds: 60,
  drainTimeoutMs: 60_000,
  stallMs: 20_000,
  burst: { leads: 600, rate: 50, maxWaitMs: 180_000 },
};

const PHASES = ['latency', 'cpu', 'sleepers', 'burst', 'matching'] as const;
type Phase = (typeof PHASES)[number];

export type BenchSettings = typeof FULL & {
  quick: boolean;
  /** run the floor and latency phases only, the night only, or the CRM/alert burst only */
  only?: Phase;
  /** leads/s the night is sized for when the latency phase did not run to measure it */
  sleepRate: number;
  /** false with --no-morning: the night ends with its at-rest figures, no window opens */
  morning: boolean;
  /** MORNING_LEADS_PER_SECOND of the night's service: the pace its sleeping leads wake at */
  morningLeadsPerSecond: number;
  keepData: boolean;
  logLevel: string;
  /** dynamic config values the dev server runs with over the project's own */
  serverConfig: Record<string, string>;
  /** latency runs post as the shop (INTAKE_API_KEY): no per-phone daily slot on the intake path */
  asShop: boolean;
  /** the service's environment over the bench's own (A/B runs of its settings) */
  serviceEnv: Record<string, string>;
};

// Each option and the variable that sets it when the command line does not.
const OPTIONS = {
  quick: { type: 'boolean', env: 'BENCH_QUICK', help: 'scaled-down run (minutes instead of an hour)' },
  only: {
    type: 'string',
    env: 'BENCH_ONLY',
    help: 'latency | cpu | sleepers | burst | matching: one part only',
  },
  sleepers: { type: 'string', env: 'BENCH_SLEEPERS', help: 'leads asleep for the night (10000; quick 1000)' },
  'sleep-rate': {
    type: 'string',
    env: 'BENCH_SLEEP_RATE',
    help: 'leads/s the night is sized for with --only sleepers (8)',
  },
  'as-shop': {
    type: 'boolean',
    env: 'BENCH_AS_SHOP',
    help: "latency runs post with the shop's INTAKE_API_KEY (no per-phone slot): A/B of the limit",
  },
  'no-morning': {
    type: 'boolean',
    env: 'BENCH_NO_MORNING',
    help: 'the night only: memory at rest, no morning (for 50000 asleep)',
  },
  'morning-leads': {
    type: 'string',
    env: 'BENCH_MORNING_LEADS',
    help: "the night's MORNING_LEADS_PER_SECOND (the service's default, 10)",
  },
  'burst-leads': {
    type: 'string',
    env: 'BENCH_BURST_LEADS',
    help: 'leads of the CRM/alert burst at 50/s (3000; quick 600)',
  },
  'server-config': {
    type: 'string',
    env: 'BENCH_SERVER_CONFIG',
    help: "dev server dynamic config over the project's: key=value,… (A/B runs)",
  },
  'service-env': {
    type: 'string',
    env: 'BENCH_SERVICE_ENV',
    help: "the service's settings over the bench's: NAME=value,… (A/B runs)",
  },
  rates: {
    type: 'string',
    env: 'BENCH_RATES',
    help: 'leads/s of the latency runs, comma-separated (10,50)',
  },
  'keep-data': { type: 'boolean', env: 'BENCH_KEEP_DATA', help: 'keep the temporary folder' },
  'log-level': { type: 'string', env: 'BENCH_LOG_LEVEL', help: "the service's log level (warn)" },
  help: { type: 'boolean', short: 'h', env: '', help: 'this text' },
} as const;

export function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? ' <value>' : ''}`;
    return `  ${flag.padEnd(24)} ${o.env.padEnd(20)} ${o.help}`;
  });
  return ['Usage: npm run bench -- [options]', '  option                   variable', ...lines].join('\n');
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, not "${text}"`);
  return n;
}

function parsePairs(option: string, text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`--${option} takes key=value pairs, not "${pair}"`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}

/** Reads the options; throws with a message for a person on a bad one. */
export function benchSettings(
  argv = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): BenchSettings & { help: boolean } {
  const { values } = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
  const fromEnv = (name: keyof typeof OPTIONS) => (OPTIONS[name].env ? env[OPTIONS[name].env] : undefined);
  const text = (
    name:
      | 'only'
      | 'sleepers'
      | 'sleep-rate'
      | 'morning-leads'
      | 'log-level'
      | 'burst-leads'
      | 'server-config'
      | 'service-env'
      | 'rates',
  ) => values[name] ?? fromEnv(name);
  const flag = (name: 'quick' | 'keep-data' | 'no-morning' | 'as-shop') =>
    values[name] ?? !['', '0', 'false'].includes(fromEnv(name) ?? '');

  const only = text('only') || undefined;
  if (only !== undefined && !(PHASES as readonly string[]).includes(only)) {
    throw new Error(`--only takes ${PHASES.join(' or ')}, not "${only}"`);
  }
  const quick = flag('quick');
  const base = { ...FULL, ...(quick ? QUICK : {}) };
  const sleepers = text('sleepers');
  const burstLeads = text('burst-leads');
  return {
    ...base,
    quick,
    only: only as Phase | undefined,
    sleepers: sleepers ? Math.round(positive('sleepers', sleepers)) : base.sleepers,
    burst: burstLeads
      ? { ...base.burst, leads: Math.round(positive('burst-leads', burstLeads)) }
      : base.burst,
    sleepRate: positive('sleep-rate', text('sleep-rate') ?? '8'),
    morning: !flag('no-morning'),
    morningLeadsPerSecond: positive('morning-leads', text('morning-leads') ?? '10'),
    serverConfig: parsePairs('server-config', text('server-config') ?? ''),
    serviceEnv: parsePairs('service-env', text('service-env') ?? ''),
    latencyRates: text('rates')
      ? text('rates')!
          .split(',')
          .map((r) => positive('rates', r.trim()))
      : base.latencyRates,
    keepData: flag('keep-data'),
    asShop: flag('as-shop'),
    logLevel: text('log-level') ?? 'warn',
    help: values.help ?? false,
  };
}
