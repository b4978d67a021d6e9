// Places in the morning queue. Every lead asleep for the night has one timer to the window's
// opening, so without a place of its own each of them wakes at that same instant: thousands of
// workflow tasks at once, most of them replays of leads the cache no longer holds, and the calls
// they schedule wait in the call queue while the later wake-ups push the earlier leads out of the
// cache again. A lead that falls asleep takes the next place for its window instead, and wakes at
// `windowStart + place / perSecond`: the leads wake in the order they came, at the pace their calls
// can go and the workers can carry their mornings. The counter lives in DATA_DIR (under a lock, as
// the providers' budgets do), so the worker processes sharing it hand out one sequence; without a
// directory it is this process's own.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { systemClock, type Clock } from './clock';
import { safeJson, withFileLock } from './fileLock';

export interface WakeSlot {
  /** 0 for the first lead asleep for this window, 1 for the next, and so on. */
  place: number;
  /** Epoch ms this lead wakes at: the window's opening plus its place at the morning's pace. */
  wakeAt: number;
}

export interface WakeSlots {
  /** The next place for the window that opens at `windowStart` (epoch ms). */
  take(windowStart: number): Promise<WakeSlot>;
}

export interface WakeSlotOptions {
  /** DATA_DIR; without it the places are counted in this process only. */
  dir?: string;
  /** Leads woken per second: the lesser of CALLS_PER_SECOND and MORNING_LEADS_PER_SECOND. */
  perSecond: number;
  clock?: Clock;
}

/** Counters of windows this long past their opening are forgotten. */
const KEEP_AFTER_OPENING_MS = 24 * 3_600_000;

const LOCK = {
  staleMs: 5_000,
  waitMs: 10_000,
  pollMs: 5,
  onTimeout: () => new Error('another process holds the wake-slot lock'),
};

/** Next free place per window, keyed by the window's opening (epoch ms, as a string). */
const Counters = z.record(z.string(), z.number().int().nonnegative());
type Counters = z.output<typeof Counters>;

export function openWakeSlots(opts: WakeSlotOptions): WakeSlots {
  const clock = opts.clock ?? systemClock;
  const spacingMs = 1000 / opts.perSecond;
  const update = opts.dir ? fileCounters(opts.dir) : memoryCounters();
  // One at a time within the process: the lock is then only ever contended by other processes.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    async take(windowStart) {
      const taken = queue.then(() =>
        update((counters) => {
          const now = clock.now();
          for (const key of Object.keys(counters)) {
            if (Number(key) < now - KEEP_AFTER_OPENING_MS) delete counters[key];
          }
          const key = String(windowStart);
          const next = counters[key] ?? 0;
          counters[key] = next + 1;
          return next;
        }),
      );
      queue = taken.catch(() => undefined);
      const place = await taken;
      return { place, wakeAt: windowStart + Math.floor(place * spacingMs) };
    },
  };
}

type Take = (counters: Counters) => number;

function memoryCounters(): (fn: Take) => Promise<number> {
  const counters: Counters = {};
  return async (fn) => fn(counters);
}

function fileCounters(dir: string): (fn: Take) => Promise<number> {
  const file = path.join(dir, 'limits', 'wake-slots.json');
  return (fn) =>
    withFileLock(`${file}.lock`, LOCK, async () => {
      const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
      // A torn or missing file starts the count afresh: at worst two leads share a place, and the
      // call queue's own limit still spaces their calls.
      const parsed = Counters.safeParse(safeJson(text) ?? {});
      const counters = parsed.success ? parsed.data : {};
      const place = fn(counters);
      await fs.promises.writeFile(file, JSON.stringify(counters), { mode: 0o600 });
      return place;
    });
}
