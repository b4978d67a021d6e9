// Phase 5: a burst of leads at the providers' real limits (the emulators' defaults: Bitrix24's
// leaky bucket of 2 requests/s, Telegram as its emulator enforces it, calls of 20 s). How long until
// every lead exists in the CRM (counted in the Bitrix24 emulator) and until every lead is named in a
// delivered Telegram message (the Telegram emulator's record), next to the lower bound the limits
// allow, and the first-call latency of the same leads beside it.
import type { Bench } from './context';
import { REAL_PACE_PROVIDERS, type ProviderProfile } from './context';
import { nextPhone, ok2xx, openLoop, postLead, type PostOutcome } from './load';
import { percentiles, sleep, type Percentiles } from './stats';

/** Bitrix24's `batch` carries up to 50 commands, and one request is one batch. */
export const BITRIX24_COMMANDS_PER_BATCH = 50;

/** The real-pace profile, on task queues of its own: the backlog it leaves weighs on no later phase. */
export const BURST_PROVIDERS: ProviderProfile = {
  ...REAL_PACE_PROVIDERS,
  label: 'real limits: emulators at their defaults (Bitrix24 2 requests/s), calls last 20 s',
  env: {
    ...REAL_PACE_PROVIDERS.env,
    TEMPORAL_TASK_QUEUE: 'burst-leads',
    TEMPORAL_CALL_TASK_QUEUE: 'burst-calls',
    TEMPORAL_CRM_TASK_QUEUE: 'burst-crm',
  },
};

export interface BurstRun {
  leads: number;
  rate: number;
  accepted: number;
  non2xx: number;
  /** from the first POST sent */
  postMs: number;
  /** the least time the limits allow for every CRM lead: leads ÷ (requests/s × commands per batch) */
  crmLowerBoundMs: number;
  requestsPerSecond: number;
  /** time from the first POST until the last lead existed in the CRM, or undefined when not all did */
  allInCrmMs?: number;
  /** time from the first POST until every lead was named in a delivered message */
  allAlertedMs?: number;
  /** how many were there when the phase stopped waiting */
  inCrm: number;
  alerted: number;
  /** when half of them were there */
  halfInCrmMs?: number;
  halfAlertedMs?: number;
  messages: number;
  bitrix24Requests: number;
  waitedMs: number;
  /** POST sent → StartScenarios for the burst's leads */
  firstCall: Percentiles;
  missingCalls: number;
}

/** A name of fixed width, so one lead's name is never a prefix of another's. */
const nameOf = (i: number) => `Burst Lead ${String(i).padStart(6, '0')}`;
const NAME_IN_TEXT = /Burst Lead (\d{6})/g;

export async function measureCrmBurst(bench: Bench, say: (line: string) => void): Promise<BurstRun> {
  const { leads, rate, maxWaitMs } = bench.settings.burst;
  const service = await bench.startService({}, BURST_PROVIDERS);
  const emulators = service.emulators!;
  const ledger = bench.ledger!;
  const requestsPerSecond = bench.config(BURST_PROVIDERS.env).bitrix24.requestsPerSecond;
  const crmLowerBoundMs = (leads / (requestsPerSecond * BITRIX24_COMMANDS_PER_BATCH)) * 1000;

  // Lead i is named nameOf(i); its phone is remembered for the call ledger.
  const indexByName = new Map<string, number>();
  const t0 = Date.now();
  const posts: PostOutcome[] = await openLoop(rate, leads / rate, (i) => {
    indexByName.set(nameOf(i), i);
    return postLead(bench.url!, { name: nameOf(i), phone: nextPhone() }, bench.settings.httpTimeoutSeconds);
  });
  const postMs = Date.now() - t0;
  const acceptedIdx = new Set<number>();
  posts.forEach((p, i) => {
    if (ok2xx(p)) acceptedIdx.add(i);
  });
  say(`  posted ${posts.length} leads in ${(postMs / 1000).toFixed(1)} s (${acceptedIdx.size} accepted)`);

  // When each accepted lead first showed up in the CRM and in a delivered message.
  const inCrmAt = new Map<number, number>();
  const alertedAt = new Map<number, number>();
  let leadsSeen = 0;
  let messagesSeen = 0;
  let editsSeen = 0;
  const scan = () => {
    const now = Date.now();
    const crm = emulators.bitrix24.state.leads;
    for (; leadsSeen < crm.length; leadsSeen++) {
      const i = indexByName.get(String(crm[leadsSeen]!.NAME ?? ''));
      if (i !== undefined && acceptedIdx.has(i) && !inCrmAt.has(i)) inCrmAt.set(i, now);
    }
    const named = (text: string, at: number) => {
      for (const match of text.matchAll(NAME_IN_TEXT)) {
        const i = Number(match[1]);
        if (acceptedIdx.has(i) && !alertedAt.has(i)) alertedAt.set(i, at);
      }
    };
    const { messages, edits } = emulators.telegram.state;
    for (; messagesSeen < messages.length; messagesSeen++) {
      const m = messages[messagesSeen]!;
      named(m.plainText, m.at.getTime());
    }
    // A message edited later (a digest that took in more leads) names them from the edit on.
    for (; editsSeen < edits.length; editsSeen++) {
      const e = edits[editsSeen]!;
      const m = messages.find((x) => x.messageId === e.messageId && x.chatId === e.chatId);
      if (m) named(m.plainText, e.at.getTime());
    }
  };
  const deadline = t0 + maxWaitMs;
  let lastReport = Date.now();
  for (;;) {
    scan();
    ledger.sync();
    const done = inCrmAt.size >= acceptedIdx.size && alertedAt.size >= acceptedIdx.size;
    if (done || Date.now() > deadline) break;
    if (Date.now() - lastReport >= 30_000) {
      lastReport = Date.now();
      say(
        `  after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${inCrmAt.size} in the CRM, ${alertedAt.size} named in alerts`,
      );
    }
    await sleep(250);
  }
  const waitedMs = Date.now() - t0;
  const nth = (times: Map<number, number>, k: number) => {
    if (times.size < k || k === 0) return undefined;
    return [...times.values()].sort((a, b) => a - b)[k - 1]! - t0;
  };
  const all = acceptedIdx.size;
  const called = posts.filter((p, i) => acceptedIdx.has(i) && ledger.first(p.phone) !== undefined);
  return {
    leads,
    rate,
    accepted: all,
    non2xx: posts.length - all,
    postMs,
    crmLowerBoundMs,
    requestsPerSecond,
    allInCrmMs: inCrmAt.size >= all ? nth(inCrmAt, all) : undefined,
    allAlertedMs: alertedAt.size >= all ? nth(alertedAt, all) : undefined,
    inCrm: inCrmAt.size,
    alerted: alertedAt.size,
    halfInCrmMs: nth(inCrmAt, Math.ceil(all / 2)),
    halfAlertedMs: nth(alertedAt, Math.ceil(all / 2)),
    messages: emulators.telegram.state.messages.length,
    bitrix24Requests: emulators.bitrix24.state.requests.length,
    waitedMs,
    firstCall: percentiles(called.map((p) => ledger.first(p.phone)! - p.sentAt)),
    missingCalls: all - called.length,
  };
}
