// The in-process pacing in front of VoxImplant and Bitrix24: how many requests a burst lets through.
import { createRateLimiter, createSpacer } from '../support/rateLimiter';

async function startTimes(limit: () => Promise<void>, n: number): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(Array.from({ length: n }, () => limit().then(() => performance.now() - t0)));
}

test('the spacer lets one through every 1/rate s: no tenth of a second holds more than a tenth of the rate', async () => {
  const times = (await startTimes(createSpacer(100), 30)).sort((a, b) => a - b);
  // 100/s → one every 10 ms; any 10 consecutive starts span at least 9 intervals.
  for (let i = 0; i + 9 < times.length; i++) expect(times[i + 9]! - times[i]!).toBeGreaterThanOrEqual(89);
  expect(times[times.length - 1]!).toBeGreaterThanOrEqual(285);
});

test('a busy event loop does not make the spacer bunch requests up to catch up', async () => {
  const spacer = createSpacer(100);
  const times: number[] = [];
  const t0 = performance.now();
  const all = Array.from({ length: 6 }, () => spacer().then(() => times.push(performance.now() - t0)));
  // Block the event loop for 50 ms once the first has gone: five intervals' worth of timers are late.
  await all[0];
  const until = performance.now() + 50;
  while (performance.now() < until);
  await Promise.all(all);
  for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(9);
});

test('the token bucket lets one second’s worth through at once, then paces', async () => {
  const times = (await startTimes(createRateLimiter(20), 25)).sort((a, b) => a - b);
  expect(times.filter((t) => t < 20)).toHaveLength(20);
  expect(times[24]!).toBeGreaterThanOrEqual(245);
});
