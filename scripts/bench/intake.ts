// Phases 2 and 3: intake → first call request at a steady rate (latency), and the intake's ceiling
// at rising rates (throughput, 5xx, and whether every accepted lead got exactly one call).
import type { Bench } from './context';
import type { Floors } from './floor';
import { leadFields, nextPhone, ok2xx, openLoop, postLead, waves, type PostOutcome } from './load';
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

export interface LatencyRun {
  rate: number;
  seconds: number;
  posts: PostOutcome[];
  non2xx: number;
  missingCalls: number;
  /** POST sent → StartScenarios at the emulator, accepted leads that got a call */
  latency: Percentiles;
  /** POST sent → the customer's phone rang (the scenario's claim granted), leads that were dialled */
  dial: Percentiles;
  /** the first sessions' claims: granted, refused, unanswered (given up at claimUntil), still asked */
  claims: { granted: number; refused: number; unanswered: number; pending: number };
  /** POST sent → its HTTP answer */
  http: Percentiles;
  /** bare workflows started beside the leads during the run: the floor under the same load */
  bareBeside: Percentiles;
  probe: Probe;
  /** CPU seconds per accepted lead, node process and dev server, until a while after the last call */
  cpuPerLead: Cpu;
}

function postEvenly(bench: Bench, rate: number, seconds: number): Promise<PostOutcome[]> {
  const url = bench.url!;
  const timeout = bench.settings.httpTimeoutSeconds;
  const shopKey = bench.settings.asShop ? bench.config().intakeApiKey : undefined;
  return openLoop(rate, seconds, () => postLead(url, leadFields(nextPhone()), timeout, shopKey));
}

export async function measureIntakeLatency(bench: Bench, beside: Floors): Promise<LatencyRun[]> {
  const { settings } = bench;
  const ledger = bench.ledger!;
  const serverCpu = () => bench.serverCpu();
  const wait = (posts: PostOutcome[], timeoutMs: number) =>
    ledger.waitFor(
      posts.filter(ok2xx).map((p) => p.phone),
      { timeoutMs, stallMs: settings.stallMs },
    );
  await wait(await postEvenly(bench, settings.warmup.rate, settings.warmup.seconds), 30_000);

  const runs: LatencyRun[] = [];
  for (const rate of settings.latencyRates) {
    const probe = startProbe(serverCpu);
    const cpu0 = cpuNow(serverCpu);
    const [posts, bare] = await Promise.all([
      postEvenly(bench, rate, settings.latencySeconds),
      beside.bare(settings.besideRate, settings.latencySeconds),
    ]);
    const p = probe();
    const accepted = posts.filter(ok2xx);
    const { missing } = await wait(posts, settings.drainTimeoutMs);
    await sleep(settings.latencyCpuTailMs);
    const called = accepted.filter((p) => ledger.first(p.phone) !== undefined);
    // A claim may be asked for minutes (claimUntil) after its call request; the dial waits for it.
    await ledger.waitForClaims(
      called.map((p) => p.phone),
      settings.drainTimeoutMs,
    );
    const dialled = called.filter((p) => ledger.firstDial(p.phone) !== undefined);
    runs.push({
      rate,
      seconds: settings.latencySeconds,
      posts,
      non2xx: posts.length - accepted.length,
      missingCalls: missing,
      latency: percentiles(called.map((p) => ledger.first(p.phone)! - p.sentAt)),
      dial: percentiles(dialled.map((p) => ledger.firstDial(p.phone)! - p.sentAt)),
      claims: ledger.claims(called.map((p) => p.phone)),
      http: percentiles(posts.map((p) => p.doneAt - p.sentAt)),
      bareBeside: bare.latency,
      probe: p,
      cpuPerLead: cpuPer(cpu0, cpuNow(serverCpu), accepted.length),
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
  /** no HTTP answer at all (connection error, timeout) */
  noAnswer: number;
  acceptedPerSecond: number;
  /** of the requests that were answered */
  http: Percentiles;
  /** how late a lead left after the start of its second */
  sendLag: Percentiles;
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
  const { settings } = bench;
  const ledger = bench.ledger!;
  const steps: ThroughputStep[] = [];
  for (const rate of settings.throughputRates) {
    const probe = startProbe(() => bench.serverCpu());
    const { t0, posts } = await waves(
      bench.url!,
      rate,
      settings.throughputSeconds,
      settings.httpTimeoutSeconds,
    );
    const p = probe();
    const firstSent = Math.min(...posts.map((x) => x.sentAt));
    const lastSent = Math.max(...posts.map((x) => x.sentAt));
    const accepted = posts.filter(ok2xx);
    const wait = await ledger.waitFor(
      accepted.map((x) => x.phone),
      { timeoutMs: settings.drainTimeoutMs, stallMs: settings.stallMs },
    );
    await sleep(settings.duplicateGraceMs);
    ledger.sync();
    const counts = accepted.map((a) => ledger.count(a.phone));
    const lastAccepted = accepted.length ? Math.max(...accepted.map((a) => a.doneAt)) : firstSent;
    const answered = posts.filter((x) => x.status !== 0);
    steps.push({
      rate,
      seconds: settings.throughputSeconds,
      sent: posts.length,
      accepted: accepted.length,
      http5xx: posts.filter((x) => x.status >= 500).length,
      otherNon2xx: answered.filter((x) => x.status < 500 && !ok2xx(x)).length,
      noAnswer: posts.length - answered.length,
      acceptedPerSecond: (accepted.length / Math.max(1, lastAccepted - firstSent)) * 1000,
      http: percentiles(answered.map((x) => x.doneAt - x.sentAt)),
      sendLag: percentiles(
        posts
          .map((x) => x.sentAt)
          .sort((a, b) => a - b)
          .map((t, i) => t - (t0 + Math.floor(i / rate) * 1000)),
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
