// A provider's request budget, shared by every process that sends to it. Bitrix24 counts requests
// per portal and Telegram per chat, not per process: two workers pacing themselves each at the
// full rate would together send twice too much. With a directory (DATA_DIR), the budget's state
// lives in a small file there, read and written under a lock, so every worker sharing DATA_DIR
// takes from the same budget; without one, it is this process's alone.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { systemClock, type Clock } from './clock';
import { safeJson, withFileLockSync } from './fileLock';

export type LimitPolicy =
  /** A leaky bucket: `burst` requests at once, drained at `perSecond` (Bitrix24). */
  | { kind: 'bucket'; perSecond: number; burst: number }
  /**
   * At most `limit` requests in any `windowMs` (Telegram). With `minGapMs`, one request at a time:
   * the next goes `minGapMs` after the one before has been answered (see `take`), so however late
   * a request reaches the provider, two never arrive closer than that.
   */
  | { kind: 'window'; limit: number; windowMs: number; minGapMs?: number };

export interface SharedLimit {
  /**
   * Resolves when one request may go; callers in this process are let through in order. Call the
   * function it resolves to once the request has been answered: a window with a minimum gap counts
   * the gap from then (a request in flight holds the others, in every process, for up to
   * IN_FLIGHT_LEASE_MS); for the others it does nothing.
   */
  take(): Promise<() => Promise<void>>;
  /** The provider said "not before": nobody sharing this budget is let through before `epochMs`. */
  holdUntil(epochMs: number): Promise<void>;
  /** Callers of take() in this process not yet let through. */
  waiting(): number;
}

export interface SharedLimitOptions {
  /** Names the budget (a portal, a chat); a file name is derived from it. */
  name: string;
  dir?: string;
  policy: LimitPolicy;
  clock?: Clock;
}

const State = z.object({
  level: z.number().default(0),
  at: z.number().default(0),
  sent: z.array(z.number()).default([]),
  notBefore: z.number().default(0),
  /** A request admitted under a minimum gap and not yet answered: who sent it and until when it holds. */
  inFlight: z.object({ id: z.string(), until: z.number() }).optional(),
  answeredAt: z.number().default(0),
});
type State = z.output<typeof State>;

// The lock is held for one read and one write of a few bytes; one older than this was left by a
// process that died holding it.
const LOCK = {
  staleMs: 5_000,
  waitMs: 30_000,
  pollMs: 5,
  onTimeout: () => new Error('another process holds the request budget lock'),
};

/** Longer than any provider request's timeout: a sender that died mid-request holds no longer. */
export const IN_FLIGHT_LEASE_MS = 15_000;
const IN_FLIGHT_POLL_MS = 100;

const instances = new WeakMap<Clock, Map<string, SharedLimit>>();

/** The process's one instance of the named budget (per directory and clock). */
export function sharedLimit(opts: SharedLimitOptions): SharedLimit {
  const clock = opts.clock ?? systemClock;
  const key = `${opts.dir ?? ''}#${opts.name}#${JSON.stringify(opts.policy)}`;
  let byKey = instances.get(clock);
  if (!byKey) instances.set(clock, (byKey = new Map()));
  let limit = byKey.get(key);
  if (!limit) byKey.set(key, (limit = openSharedLimitUncached(opts)));
  return limit;
}

/** A fresh instance: what another process would have (tests). */
export function openSharedLimitUncached(opts: SharedLimitOptions): SharedLimit {
  const clock = opts.clock ?? systemClock;
  const { policy } = opts;
  const store = opts.dir ? fileStore(opts.dir, opts.name) : memoryStore();
  let queue: Promise<unknown> = Promise.resolve();
  let waiting = 0;

  const oneAtATime = policy.kind === 'window' && (policy.minGapMs ?? 0) > 0;
  let sequence = 0;

  /** Takes one request from the budget if it allows one now; otherwise says how long to wait. */
  const attempt = (id: string) =>
    store.update((state) => {
      const now = clock.now();
      let waitMs = Math.max(state.notBefore - now, admit(policy, state, now));
      if (oneAtATime && waitMs <= 0) {
        const gapMs = (policy as { minGapMs: number }).minGapMs;
        // Held by a request in flight: look again soon, since its answer (perhaps in another
        // process) ends the hold long before the lease would.
        const held =
          state.inFlight && state.inFlight.until > now
            ? Math.min(IN_FLIGHT_POLL_MS, state.inFlight.until - now)
            : 0;
        waitMs = Math.max(held, state.answeredAt + gapMs - now);
        if (waitMs > 0) return { waitMs };
        state.inFlight = { id, until: now + IN_FLIGHT_LEASE_MS };
      }
      return waitMs > 0 ? { waitMs } : { waitMs: 0, next: state };
    });

  const answered = (id: string) => async () => {
    if (!oneAtATime) return;
    await store.update((state) => {
      const next = { ...state, answeredAt: Math.max(state.answeredAt, clock.now()) };
      if (state.inFlight?.id === id) delete next.inFlight;
      return { waitMs: 0, next };
    });
  };

  return {
    take() {
      waiting += 1;
      const id = `${process.pid}.${Math.random().toString(36).slice(2)}.${(sequence += 1)}`;
      const turn = queue.then(async (): Promise<() => Promise<void>> => {
        for (;;) {
          const waitMs = await attempt(id);
          if (waitMs <= 0) return answered(id);
          await clock.sleep(waitMs);
        }
      });
      // One caller's failure (a lock that could not be had) must not stop the ones behind it.
      queue = turn.catch(() => undefined);
      return turn.finally(() => {
        waiting -= 1;
      });
    },
    async holdUntil(epochMs) {
      await store.update((state) =>
        epochMs > state.notBefore ? { waitMs: 0, next: { ...state, notBefore: epochMs } } : { waitMs: 0 },
      );
    },
    waiting: () => waiting,
  };
}

/** Ms to wait before the policy admits a request; when it admits one now, records it in `state`. */
function admit(policy: LimitPolicy, state: State, now: number): number {
  if (policy.kind === 'bucket') {
    const level = Math.max(0, state.level - (Math.max(0, now - state.at) / 1000) * policy.perSecond);
    // Whole milliseconds, as timers go: a wait of a float's rounding error would never move a clock.
    if (level + 1 > policy.burst) return Math.ceil(((level + 1 - policy.burst) / policy.perSecond) * 1000);
    state.level = level + 1;
    state.at = now;
    return 0;
  }
  const recent = state.sent.filter((t) => t > now - policy.windowMs);
  const last = recent[recent.length - 1];
  const gapWait = last === undefined ? 0 : last + (policy.minGapMs ?? 0) - now;
  const windowWait =
    recent.length >= policy.limit ? recent[recent.length - policy.limit]! + policy.windowMs - now : 0;
  const waitMs = Math.max(gapWait, windowWait);
  if (waitMs > 0) return waitMs;
  recent.push(now);
  state.sent = recent.slice(-policy.limit);
  return 0;
}

type Update = (state: State) => { waitMs: number; next?: State };
interface Store {
  /** Applies `fn` to the current state atomically; writes `next` when given; answers waitMs. */
  update(fn: Update): Promise<number>;
}

function memoryStore(): Store {
  let state = State.parse({});
  return {
    async update(fn) {
      const copy = { ...state, sent: [...state.sent] };
      const { waitMs, next } = fn(copy);
      if (next) state = next;
      return waitMs;
    },
  };
}

function fileStore(dir: string, name: string): Store {
  const file = path.join(dir, 'limits', `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`);
  const state = openStateFile(file);
  return {
    // A few bytes read and written under the lock in one synchronous step (see withFileLockSync):
    // a call budget is taken for every call, dozens a second in a burst.
    update: (fn) =>
      withFileLockSync(`${file}.lock`, LOCK, () => {
        // A torn or missing file starts the budget afresh: at worst one burst too many, which the
        // provider answers with a limit error that is waited out.
        const parsed = State.safeParse(safeJson(state.read()) ?? {});
        const { waitMs, next } = fn(parsed.success ? parsed.data : State.parse({}));
        if (next) state.write(JSON.stringify(next));
        return waitMs;
      }),
  };
}

/**
 * The budget's file, kept open and rewritten in place: opening it and truncating it for every take
 * cost 130 µs a write here, several takes per lead. A shorter text is padded with spaces, which
 * JSON ignores, so the file never shrinks and is never truncated. A file removed meanwhile (its
 * directory cleaned) is opened again, so every process keeps sharing the one on disk.
 */
function openStateFile(file: string): { read(): string; write(text: string): void } {
  let fd: number | undefined;
  /** The file's length as last read: a write never leaves less (update reads before it writes). */
  let length = 0;
  let buffer = Buffer.alloc(256);
  const reopened = (): number => {
    if (fd !== undefined && fs.fstatSync(fd).nlink > 0) return fd;
    if (fd !== undefined) fs.closeSync(fd);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
    return fd;
  };
  return {
    read() {
      const h = reopened();
      for (;;) {
        length = fs.readSync(h, buffer, 0, buffer.length, 0);
        if (length < buffer.length) return buffer.toString('utf8', 0, length);
        buffer = Buffer.alloc(buffer.length * 2);
      }
    },
    write(text) {
      const bytes = Buffer.from(text + ' '.repeat(Math.max(0, length - Buffer.byteLength(text))), 'utf8');
      fs.writeSync(fd ?? reopened(), bytes, 0, bytes.length, 0);
      length = bytes.length;
    },
  };
}
