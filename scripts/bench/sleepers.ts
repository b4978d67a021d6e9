// Phase 4: 10,000 leads asleep for the night, then the morning. The service is restarted (the server
// is not) with a working window that opens a minute or two from now in the leads' time zone.
import os from 'node:os';
import { formatInTimeZone } from 'date-fns-tz';
import type { Client } from '@temporalio/client';
import { currentOrNextWindow, isWorkingTime, parseWorkingSchedule } from '../../domain/workingHours';
import { LEAD_STATUSES } from '../../workflows/types';
import type { Bench, ServiceProcess } from './context';
import { leadFields, nextPhone, ok2xx, openLoop, postLead } from './load';
import { scrape, type Snapshot } from './sdkMetrics';
import { fileSize, mb, rssKindsOf, rssOf, sleep } from './stats';

export interface NightWindow {
  zone: string;
  hours: string;
  startMs: number;
}

const ZONES = [
  'UTC',
  'Europe/Moscow',
  'Asia/Tokyo',
  'America/New_York',
  'Asia/Kolkata',
  'America/Los_Angeles',
  'Pacific/Auckland',
  'Asia/Dubai',
  'America/Sao_Paulo',
  'Pacific/Honolulu',
];

const hhmm = (min: number) =>
  `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;

/**
 * A window that opens on the first whole minute at least `leadMs` from now and lasts `lengthMin`,
 * in the first zone where that fits inside one local day (the config refuses windows across midnight).
 */
export function chooseWindow(now: number, leadMs: number, lengthMin = 180): NightWindow {
  for (const zone of ZONES) {
    const at = now + leadMs;
    const [h, m, s] = formatInTimeZone(at, zone, 'HH:mm:ss.SSS').split(':').map(Number) as [
      number,
      number,
      number,
    ];
    const start = h * 60 + m + (s > 0 ? 1 : 0);
    const [nh, nm] = formatInTimeZone(now, zone, 'HH:mm').split(':').map(Number) as [number, number];
    if (start < 1 || start + lengthMin > 24 * 60 || nh * 60 + nm >= start) continue;
    const hours = `${hhmm(start)}-${hhmm(start + lengthMin)}`;
    const schedule = parseWorkingSchedule(hours);
    if (isWorkingTime(now, zone, schedule)) continue;
    const { start: startMs } = currentOrNextWindow(now, zone, schedule);
    if (startMs - now < leadMs || startMs - now > leadMs + 61_000) continue;
    return { zone, hours, startMs };
  }
  throw new Error('no time zone has room for the test window right now');
}

const IN_FLIGHT = "WorkflowType = 'processLead' AND LeadStatus IN ('New', 'Calling', 'WaitingForResult')";
const ASLEEP = "WorkflowType = 'processLead' AND LeadStatus = 'WaitingForWorkingHours'";

async function count(client: Client, query: string): Promise<number> {
  return (await client.workflow.count(query)).count;
}

/** Leads still before or in their call (they never reached it, or are on their way). */
export function notYetCalled(client: Client): Promise<number> {
  return count(client, IN_FLIGHT);
}

export interface Memory {
  rss: number;
  heapUsed: number;
  serverRss?: number;
  /** the service's RSS that is anonymous (V8 heaps, malloc, stacks) vs mapped from files */
  kinds?: { anonymous: number; files: number };
}

/** The lead worker's workflow cache, from the service's SDK metrics. */
export interface CacheFigures {
  /** workflows cached at that moment */
  cached: number;
  /** forced evictions since the service started */
  forcedEvictions: number;
}

function cacheFigures(s: Snapshot): CacheFigures {
  const sum = (name: string) => s.filter((x) => x.name === name).reduce((a, x) => a + x.value, 0);
  return {
    cached: sum('temporal_sticky_cache_size'),
    forcedEvictions: sum('temporal_sticky_cache_total_forced_eviction'),
  };
}

export interface SleeperResult {
  window: NightWindow;
  posted: number;
  accepted: number;
  non2xx: number;
  /** leads posted per second */
  postRate: number;
  postMs: number;
  asleep: number;
  asleepAfterMs: number;
  baseline: Memory;
  asleepMemory: Memory;
  /** the workflow cache when the leads were asleep */
  asleepCache: CacheFigures;
  /** the lead worker's maxCachedWorkflows, as the service computed it */
  cacheCapacity?: number;
  /** machine load (1 min) when the asleep figures were read */
  asleepLoad: number;
  /** the same just before the window opened: the night at rest, once the last lead fell asleep */
  restMemory?: Memory;
  restAfterAsleepMs?: number;
  restCache?: CacheFigures;
  restLoad?: number;
  db: { db: number; wal: number; shm: number };
  crmLeadsSoFar: number;
  nightSms: number;
  /** leads called before the window opened (at night): must be 0 */
  callsAtNight: number;
  configuredRate: number;
  /** MORNING_LEADS_PER_SECOND: the leads wake at the lesser of it and CALLS_PER_SECOND */
  wakeRate: number;
  /** absent with --no-morning */
  morning?: MorningResult;
}

export interface MorningResult {
  peak: Memory;
  firstCallAfterMs?: number;
  allCallsAfterMs?: number;
  missingCalls: number;
  stalled: boolean;
  exactlyOne: number;
  moreThanOne: number;
  maxPerSecondBucket: number;
  maxPerSlidingSecond: number;
  /** first calls per second from the morning's first call to its last */
  meanCallsPerSecond?: number;
  /** of the leads called, in the order they were posted: the share of neighbours called in that order */
  inPostingOrder?: number;
  /** LeadStatus of this phase's leads once no call was in flight any more (bounded wait) */
  statuses: string;
}

async function memory(bench: Bench, service: ServiceProcess): Promise<Memory> {
  return {
    rss: service.rss(),
    heapUsed: (await service.heapUsed()) ?? 0,
    serverRss: rssOf(bench.server.pid),
    kinds: rssKindsOf(service.pid),
  };
}

/**
 * `leadsPerSecond`: what the service was seen to carry end to end (from its CPU per lead); the window
 * opens late enough for every lead to be posted and fall asleep at that pace, within the settings' bounds.
 */
export async function measureSleepers(
  bench: Bench,
  leadsPerSecond: number,
  say: (line: string) => void,
): Promise<SleeperResult> {
  const { sleepers: n, minNightSeconds, maxNightSeconds, morning, restSeconds } = bench.settings;
  const rate = bench.settings.morningCallsPerSecond;
  const wakeRate = bench.settings.morningLeadsPerSecond;
  const needed = (n / Math.max(1, leadsPerSecond)) * 1.2 + 60;
  // With a morning the night is capped (the whole run stays within an hour or so); without one the
  // window only has to open after the night at rest has been read, however long the evening takes.
  const leadMs = morning
    ? Math.min(maxNightSeconds, Math.max(minNightSeconds, needed)) * 1000
    : (Math.max(minNightSeconds, needed * 1.25) + restSeconds + 120) * 1000;
  const leftover = bench.service
    ? await count(bench.service.client, "WorkflowType = 'processLead' AND ExecutionStatus = 'Running'")
    : 0;
  await bench.stopService();
  say(`  ${leftover} leads of the earlier phases still open (left on their own task queues)`);
  const window = chooseWindow(Date.now(), leadMs);
  say(
    `  room for ${n} leads to fall asleep at ~${leadsPerSecond.toFixed(1)} leads/s (from phase 2's CPU per lead); ` +
      `window ${window.hours} in ${window.zone}: opens at ${new Date(window.startMs).toISOString()} ` +
      `(in ${Math.round((window.startMs - Date.now()) / 1000)} s); ` +
      (morning
        ? `CALLS_PER_SECOND=${rate}, MORNING_LEADS_PER_SECOND=${wakeRate}`
        : 'no morning: the night ends with its figures at rest'),
  );
  // Fresh task queues: leads of the earlier phases that are still open (stuck ones included) are not
  // polled by the restarted service, so they neither help nor hinder this phase. Same server.
  // The service in a process of its own, so its memory is measured alone (emulators stay here).
  const service = await bench.startServiceProcess(
    {
      WORKING_HOURS: window.hours,
      DEFAULT_TIMEZONE: window.zone,
      CALLS_PER_SECOND: String(rate),
      MORNING_LEADS_PER_SECOND: String(wakeRate),
      TEMPORAL_TASK_QUEUE: 'night-leads',
      TEMPORAL_CALL_TASK_QUEUE: 'night-calls',
      TEMPORAL_CRM_TASK_QUEUE: 'night-crm',
    },
    `${bench.tmpDir}-night-service.log`,
  );
  try {
    return await night(bench, service, window, rate, leadsPerSecond, say);
  } finally {
    await service.close();
  }
}

async function night(
  bench: Bench,
  service: ServiceProcess,
  window: NightWindow,
  rate: number,
  leadsPerSecond: number,
  say: (line: string) => void,
): Promise<SleeperResult> {
  const { settings } = bench;
  const n = settings.sleepers;
  const ledger = bench.ledger!;
  // Settled after its start (the workflow bundle is built at start-up).
  await sleep(settings.serviceSettleMs);
  const baseline = await memory(bench, service);
  say(`  the service's malloc: ${service.malloc} (scripts/node.sh)`);

  const t0 = Date.now();
  // Posted evenly at the pace the night is sized for: what the service carries, so the leads fall
  // asleep as they come, as over an evening, instead of queueing behind each other (a burst is
  // phase 5's business).
  const posts = await openLoop(leadsPerSecond, n / leadsPerSecond, () =>
    postLead(service.url, leadFields(nextPhone(), { timezone: window.zone }), settings.httpTimeoutSeconds),
  );
  const postMs = Date.now() - t0;
  const accepted = posts.filter(ok2xx);
  say(`  posted ${n} leads in ${(postMs / 1000).toFixed(1)} s (${accepted.length} accepted)`);

  // A lead shows WaitingForWorkingHours from its start request on; it is asleep once its evening's
  // work is done too: its night SMS sent and its CRM lead created (one of each per lead).
  const emulators = service.emulators;
  const eveningDone = () => Math.min(emulators.smsru.state.sms.length, emulators.bitrix24.state.leads.length);
  const asleepNow = async () => Math.min(await count(service.client, ASLEEP), eveningDone());
  let asleep = await asleepNow();
  while (asleep < accepted.length && Date.now() < window.startMs - 3_000) {
    await sleep(1_000);
    asleep = await asleepNow();
  }
  const asleepAfterMs = Date.now() - t0;
  const asleepMemory = await memory(bench, service);
  const asleepCache = cacheFigures(await scrape(service.metrics));
  const asleepLoad = os.loadavg()[0]!;
  const dbFile = bench.server.dbFile;
  const db = { db: fileSize(dbFile), wal: fileSize(`${dbFile}-wal`), shm: fileSize(`${dbFile}-shm`) };
  const crmLeadsSoFar = emulators.bitrix24.state.leads.length;
  const nightSms = emulators.smsru.state.sms.length;
  say(
    `  ${asleep} asleep ${(asleepAfterMs / 1000).toFixed(1)} s after the first post; ` +
      `window opens in ${Math.round((window.startMs - Date.now()) / 1000)} s; service RSS ${mb(asleepMemory.rss)} ` +
      `(${mb(baseline.rss)} before posting), ${asleepCache.cached} cached, ${asleepCache.forcedEvictions} forced evictions, load ${asleepLoad.toFixed(1)}`,
  );

  // The night at rest: nothing happens between the last lead falling asleep and the morning, which
  // is what a shop's service does most nights (V8 and the core free what the evening left behind).
  let rest: Pick<SleeperResult, 'restMemory' | 'restAfterAsleepMs' | 'restCache' | 'restLoad'> = {};
  const restAt = settings.morning ? window.startMs - 5_000 : Date.now() + settings.restSeconds * 1000;
  if (restAt - Date.now() >= 10_000) {
    await sleep(restAt - Date.now());
    rest = {
      restMemory: await memory(bench, service),
      restAfterAsleepMs: Date.now() - t0 - asleepAfterMs,
      restCache: cacheFigures(await scrape(service.metrics)),
      restLoad: os.loadavg()[0]!,
    };
    say(
      `  at rest, ${Math.round(rest.restAfterAsleepMs! / 1000)} s later: service RSS ${mb(rest.restMemory!.rss)}, ${rest.restCache!.cached} cached, load ${rest.restLoad!.toFixed(1)}`,
    );
  }

  const phones = accepted.map((p) => p.phone);
  ledger.sync();
  const night: SleeperResult = {
    window,
    posted: n,
    accepted: accepted.length,
    non2xx: n - accepted.length,
    postRate: leadsPerSecond,
    postMs,
    asleep,
    asleepAfterMs,
    baseline,
    asleepMemory,
    asleepCache,
    cacheCapacity: service.cacheCapacity,
    asleepLoad,
    ...rest,
    db,
    crmLeadsSoFar,
    nightSms,
    callsAtNight: phones.filter((p) => {
      const t = ledger.first(p);
      return t !== undefined && t < window.startMs;
    }).length,
    configuredRate: rate,
    wakeRate: settings.morningLeadsPerSecond,
  };
  if (!settings.morning) return night;
  return { ...night, morning: await theMorning(bench, service, window, phones, asleepMemory, t0) };
}

async function theMorning(
  bench: Bench,
  service: ServiceProcess,
  window: NightWindow,
  phones: string[],
  asleepMemory: Memory,
  t0: number,
): Promise<MorningResult> {
  const { settings } = bench;
  const ledger = bench.ledger!;
  const n = settings.sleepers;
  // The leads wake at the lesser of the two rates: that is the pace the morning can keep.
  const rate = Math.min(settings.morningCallsPerSecond, settings.morningLeadsPerSecond);
  const peak: Memory = { ...asleepMemory };
  const samplePeak = async () => {
    const m = await memory(bench, service);
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.serverRss = Math.max(peak.serverRss ?? 0, m.serverRss ?? 0);
  };
  let lastSample = 0;
  const wait = await ledger.waitFor(phones, {
    timeoutMs: window.startMs - Date.now() + (n / rate) * 2_000 + 180_000,
    stallMs: settings.stallMs,
    progressFrom: window.startMs,
    onTick: () => {
      if (Date.now() - lastSample >= 1_000) {
        lastSample = Date.now();
        void samplePeak();
      }
    },
  });
  await sleep(settings.duplicateGraceMs);
  ledger.sync();

  // In the order posted, which is the order they fell asleep.
  const calledInPostingOrder = phones.map((p) => ledger.first(p)).filter((t): t is number => t !== undefined);
  const firstCalls = [...calledInPostingOrder].sort((a, b) => a - b);
  const buckets = new Map<number, number>();
  for (const t of firstCalls) {
    const b = Math.floor(t / 1000);
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  let sliding = 0;
  for (let i = 0, j = 0; i < firstCalls.length; i++) {
    while (firstCalls[i]! - firstCalls[j]! >= 1000) j++;
    sliding = Math.max(sliding, i - j + 1);
  }
  const counts = phones.map((p) => ledger.count(p));
  // A queue served first come, first served calls neighbours in that order.
  let inOrder = 0;
  for (let i = 1; i < calledInPostingOrder.length; i++) {
    if (calledInPostingOrder[i]! >= calledInPostingOrder[i - 1]!) inOrder += 1;
  }
  // Let the calls' results land, then see where the leads ended up.
  const since = `StartTime >= '${new Date(t0 - 5_000).toISOString()}'`;
  const inCall = `WorkflowType = 'processLead' AND ${since} AND LeadStatus IN ('Calling', 'WaitingForResult')`;
  const settleUntil = Date.now() + settings.drainTimeoutMs;
  while ((await count(service.client, inCall)) > 0 && Date.now() < settleUntil) await sleep(2_000);
  const byStatus: string[] = [];
  for (const status of LEAD_STATUSES) {
    const c = await count(
      service.client,
      `WorkflowType = 'processLead' AND ${since} AND LeadStatus = '${status}'`,
    );
    if (c > 0) byStatus.push(`${status} ${c}`);
  }
  const first = firstCalls[0];
  const last = firstCalls[firstCalls.length - 1];
  return {
    peak,
    firstCallAfterMs: first === undefined ? undefined : first - window.startMs,
    allCallsAfterMs: wait.complete && last !== undefined ? last - window.startMs : undefined,
    missingCalls: wait.missing,
    stalled: wait.stalled,
    exactlyOne: counts.filter((c) => c === 1).length,
    moreThanOne: counts.filter((c) => c > 1).length,
    maxPerSecondBucket: Math.max(0, ...buckets.values()),
    maxPerSlidingSecond: sliding,
    meanCallsPerSecond:
      first !== undefined && last !== undefined && last > first
        ? (firstCalls.length - 1) / ((last - first) / 1000)
        : undefined,
    inPostingOrder: calledInPostingOrder.length > 1 ? inOrder / (calledInPostingOrder.length - 1) : undefined,
    statuses: byStatus.join(', '),
  };
}
