// Load generation (open loop: send on schedule, never wait for answers) and the call ledger that
// matches StartScenarios requests at the VoxImplant emulator to the leads that caused them.
import http from 'node:http';
import type { VoximplantEmulatorState } from '../../emulators/voximplant';
import { sleep } from './stats';

export interface PostOutcome {
  phone: string;
  /** Date.now() just before the request was written */
  sentAt: number;
  doneAt: number;
  /** 0: no HTTP answer (connection error or timeout) */
  status: number;
  error?: string;
  /** how late the open-loop schedule sent it, ms */
  lagMs: number;
}

export const ok2xx = (o: { status: number }) => o.status >= 200 && o.status < 300;

let phoneSeq = 0;
/** Distinct, dialable Russian mobile numbers: 7916 followed by a counter. */
export function nextPhone(): string {
  return `7916${String(phoneSeq++).padStart(7, '0')}`;
}

export class LeadPoster {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });
  private readonly url: URL;

  constructor(baseUrl: string) {
    this.url = new URL('/api/leads', baseUrl);
  }

  post(fields: Record<string, unknown>, lagMs = 0, timeoutMs = 30_000): Promise<PostOutcome> {
    const payload = JSON.stringify(fields);
    const phone = String(fields.phone);
    return new Promise((resolve) => {
      let settled = false;
      const done = (status: number, error?: string) => {
        if (settled) return;
        settled = true;
        resolve({ phone, sentAt, doneAt: Date.now(), status, error, lagMs });
      };
      const sentAt = Date.now();
      const req = http.request(
        this.url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => done(res.statusCode ?? 0));
          res.on('error', (err) => done(0, err.message));
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', (err) => done(0, err.message));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/**
 * Calls `send(i)` at `rate` per second for `seconds`, on schedule whatever the answers do; resolves
 * with every send's result once all have answered.
 */
export async function openLoop<T>(
  rate: number,
  seconds: number,
  send: (i: number, lagMs: number) => Promise<T>,
): Promise<T[]> {
  const n = Math.max(1, Math.round(rate * seconds));
  const pending: Array<Promise<T>> = [];
  const t0 = performance.now() + 2;
  for (let i = 0; i < n; i++) {
    const target = t0 + (i * 1000) / rate;
    const wait = target - performance.now();
    if (wait >= 1) await sleep(wait);
    pending.push(send(i, Math.max(0, performance.now() - target)));
  }
  return Promise.all(pending);
}

/** `n` sends with at most `concurrency` in flight. */
export async function closedLoop<T>(n: number, concurrency: number, send: (i: number) => Promise<T>) {
  const results: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, n) }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await send(i);
      }
    }),
  );
  return results;
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
    let lastCallAt: number | undefined;
    for (const p of phones) {
      const t = this.first(p);
      if (t !== undefined && (lastCallAt === undefined || t > lastCallAt)) lastCallAt = t;
    }
    return { complete: missing === 0, stalled, missing, lastCallAt };
  }
}
