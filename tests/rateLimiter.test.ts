// The in-process pacing in front of VoxImplant and Bitrix24: how many requests a burst lets through.
import { createRateLimiter } from '../support/rateLimiter';

async function startTimes(limit: () => Promise<void>, n: number): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(Array.from({ length: n }, () => limit().then(() => performance.now() - t0)));
}

test('burst 1 spaces requests evenly: no window of 1/10 s holds more than a tenth of the rate', async () => {
  const times = (await startTimes(createRateLimiter(100, { burst: 1 }), 30)).sort((a, b) => a - b);
  // 100/s → one every 10 ms; any 10 consecutive starts span at least 9 intervals (timers never fire early).
  for (let i = 0; i + 9 < times.length; i++) expect(times[i + 9]! - times[i]!).toBeGreaterThanOrEqual(89);
  expect(times[times.length - 1]!).toBeGreaterThanOrEqual(285);
});

test('the default burst lets one second’s worth through at once, then paces', async () => {
  const times = (await startTimes(createRateLimiter(20), 25)).sort((a, b) => a - b);
  expect(times.filter((t) => t < 20)).toHaveLength(20);
  expect(times[24]!).toBeGreaterThanOrEqual(245);
});
