// In-process pacing of requests to a provider.
import { systemClock, type Clock } from './clock';

/**
 * GCRA token bucket: `perSecond` sustained, with bursts of up to one second's worth, as Bitrix24's
 * leaky bucket allows.
 */
export function createRateLimiter(perSecond: number, clock: Clock = systemClock): () => Promise<void> {
  const interval = 1000 / perSecond;
  const tolerance = (Math.max(1, Math.floor(perSecond)) - 1) * interval;
  let theoreticalArrival = 0;
  return async () => {
    const now = clock.now();
    theoreticalArrival = Math.max(theoreticalArrival, now);
    const waitMs = theoreticalArrival - tolerance - now;
    theoreticalArrival += interval;
    if (waitMs > 0) await clock.sleep(waitMs);
  };
}

/**
 * Strict spacing: callers pass one at a time, each at least 1000/perSecond ms after the one before
 * actually went, so a late timer (a busy event loop) never lets a bunch through to catch up.
 */
export function createSpacer(perSecond: number, clock: Clock = systemClock): () => Promise<void> {
  const interval = 1000 / perSecond;
  let last = -Infinity;
  let queue: Promise<void> = Promise.resolve();
  return () => {
    const turn = queue.then(async () => {
      const waitMs = last + interval - clock.now();
      if (waitMs > 0) await clock.sleep(waitMs);
      last = clock.now();
    });
    queue = turn;
    return turn;
  };
}
