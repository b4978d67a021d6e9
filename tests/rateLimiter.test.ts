// The in-process pacing in front of Bitrix24, on a virtual clock: the schedule each
// lets through is asserted to the millisecond.
import { createRateLimiter } from '../support/rateLimiter';
import { VirtualClock } from './support/virtualClock';

/** Starts `n` callers at once; the returned list fills with the clock's time as each is let through. */
function startAll(limit: () => Promise<void>, clock: VirtualClock, n: number) {
  const t0 = clock.now();
  const times: number[] = [];
  const all = Promise.all(Array.from({ length: n }, () => limit().then(() => times.push(clock.now() - t0))));
  return { times, all };
}

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
