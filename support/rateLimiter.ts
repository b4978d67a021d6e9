// In-process pacing of requests to a provider (GCRA): `perSecond` sustained, with bursts of up to
// `burst` requests at once (default: one second's worth, as Bitrix24's leaky bucket allows).
// `burst: 1` spaces requests evenly, so no sliding second ever holds more than `perSecond`.
export function createRateLimiter(
  perSecond: number,
  { burst = Math.max(1, Math.floor(perSecond)) }: { burst?: number } = {},
): () => Promise<void> {
  const interval = 1000 / perSecond;
  const tolerance = (Math.max(1, burst) - 1) * interval;
  let theoreticalArrival = 0;
  return async () => {
    const now = Date.now();
    theoreticalArrival = Math.max(theoreticalArrival, now);
    const waitMs = theoreticalArrival - tolerance - now;
    theoreticalArrival += interval;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
  };
}
