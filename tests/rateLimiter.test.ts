// The in-process pacing in front of VoxImplant and Bitrix24, on a virtual clock: the schedule each
// lets through is asserted to the millisecond.
import { createRateLimiter, createSpacer } from '../support/rateLimiter';
import { VirtualClock } from './support/virtualClock';

/** Starts `n` callers at once; the returned list fills with the clock's time as each is let through. */
function startAll(limit: () => Promise<void>, clock: VirtualClock, n: number) {
  const t0 = clock.now();
  const times: number[] = [];
  const all = Promise.all(Array.from({ length: n }, () => limit().then(() => times.push(clock.now() - t0))));
  return { times, all };
}

test('the spacer lets one through every 1/rate s, in order', async () => {
  const clock = new VirtualClock();
  const { times, all } = startAll(createSpacer(100, clock), clock, 30);
  await clock.advance(0);
  expect(times).toEqual([0]);
  await clock.advance(9);
  expect(times).toEqual([0]);
  await clock.advance(1);
  expect(times).toEqual([0, 10]);
  await clock.advance(280);
  await all;
  expect(times).toEqual(Array.from({ length: 30 }, (_, i) => i * 10));
});

test('a busy event loop does not make the spacer bunch requests up to catch up', async () => {
  const clock = new VirtualClock();
  const { times, all } = startAll(createSpacer(100, clock), clock, 6);
  await clock.advance(0);
  expect(times).toEqual([0]);
  // The loop is blocked for 50 ms: the second caller's 10 ms timer fires 40 ms late.
  clock.stall(50);
  await clock.advance(0);
  expect(times).toEqual([0, 50]);
  await clock.advance(100);
  await all;
  // The rest keep a full interval after the late one instead of going at once to catch up.
  expect(times).toEqual([0, 50, 60, 70, 80, 90]);
});

test('the token bucket lets one second’s worth through at once, then paces', async () => {
  const clock = new VirtualClock();
  const limit = createRateLimiter(20, clock);
  const { times, all } = startAll(limit, clock, 25);
  await clock.advance(0);
  expect(times).toEqual(Array(20).fill(0));
  expect(clock.pending()).toEqual([50, 100, 150, 200, 250]);
  await clock.advance(250);
  await all;
  expect(times).toEqual([...Array(20).fill(0), 50, 100, 150, 200, 250]);

  // A full second after the last one was due, the bucket holds a whole burst again.
  await clock.advance(1000);
  const again = startAll(limit, clock, 21);
  await clock.advance(0);
  expect(again.times).toEqual(Array(20).fill(0));
  expect(clock.pending()).toEqual([50]);
  await clock.advance(50);
  await again.all;
  expect(again.times).toEqual([...Array(20).fill(0), 50]);
});
