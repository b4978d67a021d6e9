// Phases 2 and 3: intake → first call request at a steady rate (latency), and the intake's ceiling
// at rising open-loop rates (throughput, 5xx, and whether every accepted lead got exactly one call).
import type { Bench } from './context';
import { nextPhone, ok2xx, openLoop, type PostOutcome } from './load';
import { cpuNow, percentile, sleep, startProbe, type Probe } from './stats';

export const leadFields = (phone: string, extra: Record<string, unknown> = {}) => ({
  name: 'Bench Lead',
  phone,
  ...extra,
});

export interface LatencyRun {
  rate: number;
  seconds: number;
  posts: PostOutcome[];
  non2xx: number;
  missingCalls: number;
  latencies: number[];
  p50: number;
  p99: number;
  httpP50: number;
  httpP99: number;
  probe: Probe;
  /** CPU seconds per accepted lead, node process and dev server, until 10 s after the last call */
  cpuPerLead: { node: number; server: number };
}

async function postAtRate(bench: Bench, rate: number, seconds: number): Promise<PostOutcome[]> {
  const poster = bench.poster!;
  return openLoop(rate, seconds, (_i, lag) => poster.post(leadFields(nextPhone()), lag));
}

export async function measureIntakeLatency(bench: Bench): Promise<LatencyRun[]> {
  const { settings, server } = bench;
  const ledger = bench.ledger!;
  // Warm-up (JIT, sticky cache, sockets); not counted.
  const warm = await postAtRate(bench, 10, 2);
  await ledger.waitFor(
    warm.filter(ok2xx).map((p) => p.phone),
    { timeoutMs: 30_000, stallMs: settings.stallMs },
  );

  const runs: LatencyRun[] = [];
  for (const rate of settings.latencyRates) {
    const probe = startProbe(() => server.cpuSeconds());
    const cpu0 = cpuNow(() => server.cpuSeconds());
    const posts = await postAtRate(bench, rate, settings.latencySeconds);
    const p = probe();
    const accepted = posts.filter(ok2xx);
    const wait = await ledger.waitFor(
      accepted.map((p) => p.phone),
      {
        timeoutMs: settings.drainTimeoutMs,
        stallMs: settings.stallMs,
      },
    );
    await sleep(10_000);
    const cpu1 = cpuNow(() => server.cpuSeconds());
    const perLead = (a: number, b: number) => (b - a) / Math.max(1, accepted.length);
    const latencies = accepted
      .filter((p) => ledger.first(p.phone) !== undefined)
      .map((p) => ledger.first(p.phone)! - p.sentAt);
    const http = posts.map((p) => p.doneAt - p.sentAt);
    runs.push({
      rate,
      seconds: settings.latencySeconds,
      posts,
      non2xx: posts.length - accepted.length,
      missingCalls: wait.missing,
      latencies,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      httpP50: percentile(http, 50),
      httpP99: percentile(http, 99),
      probe: p,
      cpuPerLead: { node: perLead(cpu0.node, cpu1.node), server: perLead(cpu0.server, cpu1.server) },
    });
  }
  return runs;
}

export interface ThroughputStep {
  rate: number;
  seconds: number;
  sent: number;
  accepted: number;
  http5xx: number;
  otherNon2xx: number;
  /** no HTTP answer at all (connection error, 30 s timeout) */
  noAnswer: number;
  acceptedPerSecond: number;
  httpP50: number;
  httpP99: number;
  scheduleLagP99: number;
  exactlyOne: number;
  noCall: number;
  moreThanOne: number;
  /** calls for leads that were not answered 2xx (a start that succeeded after its request failed) */
  callsForRejected: number;
  /** from the last POST sent until the last accepted lead's call arrived */
  drainMs: number;
  drained: boolean;
  stalled: boolean;
  probe: Probe;
}

export async function measureThroughput(bench: Bench): Promise<ThroughputStep[]> {
  const { settings, server } = bench;
  const ledger = bench.ledger!;
  const steps: ThroughputStep[] = [];
  for (const rate of settings.throughputRates) {
    const probe = startProbe(() => server.cpuSeconds());
    const posts = await postAtRate(bench, rate, settings.throughputSeconds);
    const p = probe();
    const lastSent = Math.max(...posts.map((p) => p.sentAt));
    const accepted = posts.filter(ok2xx);
    const wait = await ledger.waitFor(
      accepted.map((p) => p.phone),
      {
        timeoutMs: settings.drainTimeoutMs,
        stallMs: settings.stallMs,
      },
    );
    // Calls can trail the first: give duplicates a moment to show before counting them.
    await new Promise((r) => setTimeout(r, 1_000));
    ledger.sync();
    const counts = accepted.map((a) => ledger.count(a.phone));
    const firstSent = Math.min(...posts.map((x) => x.sentAt));
    const lastAccepted = accepted.length ? Math.max(...accepted.map((a) => a.doneAt)) : firstSent;
    const http = posts.filter((x) => x.status !== 0).map((x) => x.doneAt - x.sentAt);
    steps.push({
      rate,
      seconds: settings.throughputSeconds,
      sent: posts.length,
      accepted: accepted.length,
      http5xx: posts.filter((x) => x.status >= 500).length,
      otherNon2xx: posts.filter((x) => x.status !== 0 && x.status < 500 && !ok2xx(x)).length,
      noAnswer: posts.filter((x) => x.status === 0).length,
      acceptedPerSecond: (accepted.length / Math.max(1, lastAccepted - firstSent)) * 1000,
      httpP50: percentile(http, 50),
      httpP99: percentile(http, 99),
      scheduleLagP99: percentile(
        posts.map((x) => x.lagMs),
        99,
      ),
      exactlyOne: counts.filter((c) => c === 1).length,
      noCall: counts.filter((c) => c === 0).length,
      moreThanOne: counts.filter((c) => c > 1).length,
      callsForRejected: posts.filter((x) => !ok2xx(x) && ledger.count(x.phone) > 0).length,
      drainMs: (wait.lastCallAt ?? lastSent) - lastSent,
      drained: wait.complete,
      stalled: wait.stalled,
      probe: p,
    });
  }
  return steps;
}
