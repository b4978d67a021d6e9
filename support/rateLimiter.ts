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
