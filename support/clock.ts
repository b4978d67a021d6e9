// Time as pacing code sees it. Injected wherever a schedule matters, so a test can run the exact
// schedule on a virtual clock instead of measuring a real one on a busy machine.
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves once `ms` have passed (or later: a busy event loop delays it). */
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
