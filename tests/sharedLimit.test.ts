// The request budgets shared by worker processes, on a virtual clock: the schedule each lets
// through is asserted exactly, in one process and across two sharing a directory.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  IN_FLIGHT_LEASE_MS,
  openSharedLimitUncached,
  sharedLimit,
  type LimitPolicy,
  type SharedLimit,
} from '../support/sharedLimit';
import { VirtualClock } from './support/virtualClock';
import { callBudget } from '../activities';

/** Starts `n` takes; `times` fills with the clock's time (from now) as each is let through. */
function takeAll(take: SharedLimit['take'], clock: VirtualClock, n: number) {
  const t0 = clock.now();
  const times: number[] = [];
  const all = Promise.all(
    Array.from({ length: n }, async () => {
      const answered = await take();
      times.push(clock.now() - t0);
      await answered(); // at once: the provider answered in no time
    }),
  );
  return { times, all };
}

/**
 * Waits (on real file I/O, not on time) until every budget with takers left has its first taker
 * asleep on the clock: nothing more can pass before the clock moves.
 */
async function untilSettled(clock: VirtualClock, limits: SharedLimit[]): Promise<void> {
  while (clock.pending().length < limits.filter((l) => l.waiting() > 0).length) {
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const bucket: LimitPolicy = { kind: 'bucket', perSecond: 2, burst: 5 };

test('a bucket lets its burst through at once, then one per 1/rate s', async () => {
  const clock = new VirtualClock();
  const limit = sharedLimit({ name: 'portal', policy: bucket, clock });
  const { times, all } = takeAll(limit.take, clock, 8);
  await clock.advance(0);
  expect(times).toEqual([0, 0, 0, 0, 0]);
  expect(limit.waiting()).toBe(3);
  await clock.advance(499);
  expect(times).toHaveLength(5);
  await clock.advance(1);
  expect(times).toEqual([0, 0, 0, 0, 0, 500]);
  await clock.advance(1000);
  await all;
  expect(times).toEqual([0, 0, 0, 0, 0, 500, 1000, 1500]);
  expect(limit.waiting()).toBe(0);
});

test('a bucket drains while idle: after a quiet spell the burst is there again', async () => {
  const clock = new VirtualClock();
  const limit = openSharedLimitUncached({ name: 'p', policy: bucket, clock });
  await takeAll(limit.take, clock, 5).all;
  await clock.advance(1000); // two drained
  const { times, all } = takeAll(limit.take, clock, 3);
  await clock.advance(0);
  expect(times).toEqual([0, 0]);
  await clock.advance(500);
  await all;
  expect(times).toEqual([0, 0, 500]);
});

test('a bucket of one (the call budget) spaces takers 1/rate s apart, and a busy loop does not bunch them', async () => {
  const clock = new VirtualClock();
  const limit = openSharedLimitUncached({
    name: 'calls',
    policy: { kind: 'bucket', perSecond: 100, burst: 1 },
    clock,
  });
  const { times, all } = takeAll(limit.take, clock, 6);
  await clock.advance(0);
  expect(times).toEqual([0]);
  await clock.advance(9);
  expect(times).toEqual([0]);
  await clock.advance(1);
  expect(times).toEqual([0, 10]);
  // The loop is blocked for 50 ms: the third taker's 10 ms timer fires 40 ms late.
  clock.stall(50);
  await clock.advance(0);
  expect(times).toEqual([0, 10, 60]);
  await clock.advance(100);
  await all;
  // The rest keep a full interval after the late one instead of going at once to catch up.
  expect(times).toEqual([0, 10, 60, 70, 80, 90]);
});

test('a window allows `limit` per window and keeps the minimum gap', async () => {
  const clock = new VirtualClock();
  const policy: LimitPolicy = { kind: 'window', limit: 3, windowMs: 60_000, minGapMs: 1000 };
  const limit = openSharedLimitUncached({ name: 'chat', policy, clock });
  const { times, all } = takeAll(limit.take, clock, 7);
  await clock.advance(130_000);
  await all;
  expect(times).toEqual([0, 1000, 2000, 60_000, 61_000, 62_000, 120_000]);
});

test('with a minimum gap, a request in flight holds the next one until it is answered, then the gap', async () => {
  const clock = new VirtualClock();
  const policy: LimitPolicy = { kind: 'window', limit: 20, windowMs: 60_000, minGapMs: 1000 };
  const limit = openSharedLimitUncached({ name: 'chat', policy, clock });
  const answered = await limit.take();
  let second = false;
  const next = limit.take().then((done) => {
    second = true;
    return done;
  });
  await clock.advance(5000); // the first request is still in flight
  expect(second).toBe(false);
  await answered();
  await clock.advance(999);
  expect(second).toBe(false);
  await clock.advance(1);
  expect(second).toBe(true);
  await (
    await next
  )();
});

test('a sender that died with a request in flight holds the others only for the lease', async () => {
  const clock = new VirtualClock();
  const policy: LimitPolicy = { kind: 'window', limit: 20, windowMs: 60_000, minGapMs: 1000 };
  const limit = openSharedLimitUncached({ name: 'chat', policy, clock });
  await limit.take(); // never answered
  let second = false;
  void limit.take().then(() => (second = true));
  await clock.advance(IN_FLIGHT_LEASE_MS - 1);
  expect(second).toBe(false);
  await clock.advance(1);
  expect(second).toBe(true);
});

test('holdUntil stops every taker until then', async () => {
  const clock = new VirtualClock();
  const limit = openSharedLimitUncached({ name: 'p', policy: bucket, clock });
  await limit.holdUntil(clock.now() + 3000);
  await limit.holdUntil(clock.now() + 1000); // an earlier hold does not shorten it
  const { times, all } = takeAll(limit.take, clock, 2);
  await clock.advance(2999);
  expect(times).toEqual([]);
  await clock.advance(1);
  await all;
  expect(times).toEqual([3000, 3000]);
});

test('two processes sharing a directory share one budget', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-limit-'));
  const clock = new VirtualClock();
  const a = openSharedLimitUncached({ name: 'portal', dir, policy: bucket, clock });
  const b = openSharedLimitUncached({ name: 'portal', dir, policy: bucket, clock });
  const fromA = takeAll(a.take, clock, 6);
  const fromB = takeAll(b.take, clock, 6);
  const passed = () => fromA.times.length + fromB.times.length;
  // Both heads asleep: the budget is spent. Together they got the burst, not a burst each.
  await untilSettled(clock, [a, b]);
  expect(passed()).toBe(5);
  for (let second = 1; passed() < 12; second++) {
    await clock.advance(1000);
    await untilSettled(clock, [a, b]);
    // 2 per second drained, whoever takes them.
    expect(passed()).toBe(Math.min(12, 5 + 2 * second));
  }
  await Promise.all([fromA.all, fromB.all]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('when the file was cleaned away meanwhile, both processes share the one on disk again', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-limit-'));
  const clock = new VirtualClock();
  const a = openSharedLimitUncached({ name: 'portal', dir, policy: bucket, clock });
  const b = openSharedLimitUncached({ name: 'portal', dir, policy: bucket, clock });
  await takeAll(a.take, clock, 5).all;
  fs.rmSync(path.join(dir, 'limits'), { recursive: true, force: true });
  // Budget state is gone with the file: a starts afresh and b sees what a took since.
  await takeAll(a.take, clock, 4).all;
  const fromB = takeAll(b.take, clock, 2);
  await untilSettled(clock, [b]);
  expect(fromB.times).toEqual([0]);
  await clock.advance(500);
  await fromB.all;
  expect(fromB.times).toEqual([0, 500]);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('when a longer state is followed by a shorter one, the file still reads as the shorter', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-limit-'));
  const clock = new VirtualClock();
  const window: LimitPolicy = { kind: 'window', limit: 3, windowMs: 1000 };
  const a = openSharedLimitUncached({ name: 'chat', dir, policy: window, clock });
  await takeAll(a.take, clock, 3).all;
  const longer = fs.statSync(path.join(dir, 'limits', 'chat.json')).size;
  await clock.advance(5000);
  await takeAll(a.take, clock, 1).all; // the window's list is down to one entry
  const text = fs.readFileSync(path.join(dir, 'limits', 'chat.json'), 'utf8');
  expect(text.length).toBe(longer);
  expect(JSON.parse(text).sent).toEqual([clock.now()]);
  // Another process reads the same: one sent, two more allowed now, the fourth a window later.
  const b = openSharedLimitUncached({ name: 'chat', dir, policy: window, clock });
  const fromB = takeAll(b.take, clock, 3);
  await untilSettled(clock, [b]);
  expect(fromB.times).toEqual([0, 0]);
  await clock.advance(1000);
  await fromB.all;
  expect(fromB.times).toEqual([0, 0, 1000]);
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('the call budget (CALLS_PER_SECOND)', () => {
  /** The most takes in any window of one second, `times` sorted. */
  const mostInOneSecond = (times: number[]) =>
    Math.max(...times.map((t, i) => times.filter((u, j) => j >= i && u < t + 1000).length));

  test.each([5, 20, 50, 1000])(
    'when %d/s are asked for continuously, then no second holds more, and the rate is nearly kept',
    async (rate) => {
      const clock = new VirtualClock();
      const limit = openSharedLimitUncached({
        name: 'calls',
        policy: callBudget({ call: { callsPerSecond: rate } } as never),
        clock,
      });
      const { times, all } = takeAll(limit.take, clock, rate * 3);
      await clock.advance(3_200);
      await all;
      expect(mostInOneSecond(times)).toBeLessThanOrEqual(rate);
      // Three seconds' worth within about three seconds: the budget gives away at most 5%.
      expect(times[times.length - 1]!).toBeLessThanOrEqual(3_000 * 1.05);
    },
  );

  test('when a burst of leads comes at 1000/s allowed, then a twentieth of a second’s calls go at once', async () => {
    const clock = new VirtualClock();
    const limit = openSharedLimitUncached({
      name: 'calls',
      policy: callBudget({ call: { callsPerSecond: 1000 } } as never),
      clock,
    });
    const { times, all } = takeAll(limit.take, clock, 50);
    await clock.advance(0);
    await all;
    expect(times).toEqual(Array(50).fill(0));
  });
});
