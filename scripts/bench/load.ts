// Load on the intake, and the call ledger that matches StartScenarios requests at the VoxImplant
// emulator to the leads that caused them. Every lead has a phone of its own, so each figure can
// follow a lead from its POST to its call.
//
// HTTP load comes from autocannon: volley() for a fixed number of leads over a number of
// connections (the night's fill), waves() for an open loop (the intake's ceiling). autocannon's own
// rate limit would cap the leads in flight at one second's worth (no more connections than
// requests per second), so waves() starts one volley per second instead, and a slow answer never
// holds back the next second's leads. The latency phase compares each lead with the floor's evenly
// spaced workflow starts, so it keeps an evenly spaced loop of its own (openLoop + postLead).
import autocannon from 'autocannon';
import type { VoximplantEmulatorState } from '../../emulators/voximplant';
import { sleep } from './stats';

export interface PostOutcome {
  phone: string;
  /** Date.now() just before the request was written */
  sentAt: number;
  doneAt: number;
  /** 0: no HTTP answer (connection error or timeout) */
  status: number;
}

export const ok2xx = (o: { status: number }) => o.status >= 200 && o.status < 300;

let phoneSeq = 0;
/** Distinct, dialable Russian mobile numbers: 7916 followed by a counter. */
export function nextPhone(): string {
  return `7916${String(phoneSeq++).padStart(7, '0')}`;
}

export const leadFields = (phone: string, extra: Record<string, unknown> = {}) => ({
  name: 'Bench Lead',
  phone,
  ...extra,
});

const leadsUrl = (baseUrl: string) => new URL('/api/leads', baseUrl).href;

/** One POST /api/leads; never throws (status 0 when there was no answer). */
export async function postLead(
  baseUrl: string,
  fields: Record<string, unknown>,
  timeoutSeconds: number,
  /** the shop's INTAKE_API_KEY: the lead is the shop's own (no per-phone daily limit, no slot) */
  shopKey?: string,
): Promise<PostOutcome> {
  const phone = String(fields.phone);
  const sentAt = Date.now();
  const status = await fetch(leadsUrl(baseUrl), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(shopKey ? { authorization: `Bearer ${shopKey}` } : {}),
    },
    body: JSON.stringify(fields),
    signal: AbortSignal.timeout(timeoutSeconds * 1000),
  }).then(
    async (res) => {
      await res.arrayBuffer();
      return res.status;
    },
    () => 0,
  );
  return { phone, sentAt, doneAt: Date.now(), status };
}

/**
 * Calls `send(i)` at `rate` per second for `seconds`, on schedule whatever the answers do; resolves
 * with every send's result once all have answered.
 */
export async function openLoop<T>(
  rate: number,
  seconds: number,
  send: (i: number) => Promise<T>,
): Promise<T[]> {
  const n = Math.max(1, Math.round(rate * seconds));
  const pending: Array<Promise<T>> = [];
  const t0 = performance.now() + 2;
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait >= 1) await sleep(wait);
    pending.push(send(i));
  }
  return Promise.all(pending);
}

/**
 * `amount` leads posted by autocannon over `connections` connections. Each connection carries one
 * request at a time, so its context names the lead of the answer; a lead whose request timed out or
 * lost its connection stays at status 0.
 */
export async function volley(
  baseUrl: string,
  o: {
    amount: number;
    connections: number;
    timeoutSeconds: number;
    fields?: (phone: string) => Record<string, unknown>;
  },
): Promise<PostOutcome[]> {
  const posts: PostOutcome[] = [];
  const byPhone = new Map<string, PostOutcome>();
  type Context = { phone?: string };
  await autocannon({
    url: leadsUrl(baseUrl),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    amount: o.amount,
    connections: Math.min(o.connections, o.amount),
    timeout: o.timeoutSeconds,
    requests: [
      {
        setupRequest: (request, context: Context) => {
          const phone = nextPhone();
          context.phone = phone;
          const post = { phone, sentAt: Date.now(), doneAt: 0, status: 0 };
          posts.push(post);
          byPhone.set(phone, post);
          return { ...request, body: JSON.stringify(o.fields?.(phone) ?? leadFields(phone)) };
        },
        onResponse: (status, _body, context: Context) => {
          const post = byPhone.get(context.phone ?? '');
          if (post) Object.assign(post, { status, doneAt: Date.now() });
        },
      },
    ],
  });
  for (const p of posts) if (p.status === 0) p.doneAt = p.sentAt + o.timeoutSeconds * 1000;
  return posts;
}

/** `rate` leads at the start of each of `seconds` seconds, each second on connections of its own. */
export async function waves(baseUrl: string, rate: number, seconds: number, timeoutSeconds: number) {
  const t0 = Date.now();
  const sent = await Promise.all(
    Array.from({ length: seconds }, async (_, k) => {
      await sleep(t0 + k * 1000 - Date.now());
      return volley(baseUrl, { amount: rate, connections: rate, timeoutSeconds });
    }),
  );
  return { t0, posts: sent.flat() };
}

/** StartScenarios requests the emulator received, by the phone in script_custom_data. */
export class CallLedger {
  private seen = 0;
  readonly byPhone = new Map<string, number[]>();

  constructor(private readonly state: VoximplantEmulatorState) {}

  sync(): void {
    const calls = this.state.calls;
    for (; this.seen < calls.length; this.seen++) {
      const call = calls[this.seen]!;
      const phone = typeof call.customData?.phone === 'string' ? call.customData.phone : '';
      const list = this.byPhone.get(phone);
      if (list) list.push(call.startedAt.getTime());
      else this.byPhone.set(phone, [call.startedAt.getTime()]);
    }
  }

  first(phone: string): number | undefined {
    return this.byPhone.get(phone)?.[0];
  }

  /** The first call of the phone whose claim was answered (granted, refused or given up), if any. */
  private claimOf(phone: string) {
    return this.state.calls.find((c) => c.customData?.phone === phone && c.claim !== undefined);
  }

  /** When the phone's customer was rung: its first session granted its claim (the dial). */
  firstDial(phone: string): number | undefined {
    const call = this.state.calls.find((c) => c.customData?.phone === phone && c.dialledAt);
    return call?.dialledAt?.getTime();
  }

  /**
   * The claims of the phones' first sessions: granted (dialled), refused (409, e.g. after the
   * window) or unanswered (the scenario gave up at claimUntil), or still being asked.
   */
  claims(phones: string[]): { granted: number; refused: number; unanswered: number; pending: number } {
    const out = { granted: 0, refused: 0, unanswered: 0, pending: 0 };
    const byPhone = new Map<string, (typeof this.state.calls)[number]>();
    for (const c of this.state.calls) {
      const phone = typeof c.customData?.phone === 'string' ? c.customData.phone : '';
      if (!byPhone.has(phone)) byPhone.set(phone, c);
    }
    for (const phone of phones) {
      const outcome = byPhone.get(phone)?.claim?.outcome;
      if (outcome === 'granted') out.granted += 1;
      else if (outcome === 'refused') out.refused += 1;
      else if (outcome === 'unreachable' || outcome === 'no_claim_url') out.unanswered += 1;
      else out.pending += 1;
    }
    return out;
  }

  /** Waits until the first session of every phone has its claim answered, or `timeoutMs` passed. */
  async waitForClaims(phones: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && phones.some((p) => !this.claimOf(p))) await sleep(100);
  }

  count(phone: string): number {
    return this.byPhone.get(phone)?.length ?? 0;
  }

  /**
   * Waits until every phone has a call, or `timeoutMs` passed, or no new one arrived for `stallMs`
   * (counted from `progressFrom` at the earliest); resolves with when the last of them arrived.
   */
  async waitFor(
    phones: string[],
    opts: { timeoutMs: number; stallMs: number; progressFrom?: number; onTick?: () => void },
  ): Promise<{ complete: boolean; stalled: boolean; missing: number; lastCallAt?: number }> {
    const deadline = Date.now() + opts.timeoutMs;
    let missing = phones.length;
    let lastProgress = Math.max(Date.now(), opts.progressFrom ?? 0);
    let stalled = false;
    for (;;) {
      this.sync();
      opts.onTick?.();
      const now = Date.now();
      const left = phones.filter((p) => !this.byPhone.has(p)).length;
      if (left < missing) lastProgress = Math.max(now, opts.progressFrom ?? 0);
      missing = left;
      if (missing === 0 || now > deadline) break;
      if (now - lastProgress > opts.stallMs) {
        stalled = true;
        break;
      }
      await sleep(50);
    }
    const times = phones.map((p) => this.first(p)).filter((t): t is number => t !== undefined);
    return {
      complete: missing === 0,
      stalled,
      missing,
      lastCallAt: times.length ? Math.max(...times) : undefined,
    };
  }
}
