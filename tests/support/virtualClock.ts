// A clock that moves only when the test moves it: a schedule then comes out exact, however busy
// the machine is. Sleeps fire in deadline order, each at its own deadline.
import type { Clock } from '../../support/clock';

interface Sleeper {
  at: number;
  resolve: () => void;
}

/** Lets every promise continuation that is already due run (they all run before an immediate). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class VirtualClock implements Clock {
  private t: number;
  private sleepers: Sleeper[] = [];

  constructor(start = Date.UTC(2026, 0, 5, 9)) {
    this.t = start;
  }

  now = (): number => this.t;

  sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      this.sleepers.push({ at: this.t + Math.max(0, ms), resolve });
    });

  /** How long each waiting sleep has left, soonest first. */
  pending(): number[] {
    return this.sleepers.map((s) => s.at - this.t).sort((a, b) => a - b);
  }

  /**
   * Moves time on by `ms`. A sleep due on the way wakes at its deadline, and what it starts runs
   * before the clock moves further, so sleeps it starts in turn are honoured too.
   */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await settle();
      const due = this.sleepers.filter((s) => s.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.sleepers.splice(this.sleepers.indexOf(due), 1);
      this.t = Math.max(this.t, due.at);
      due.resolve();
    }
    this.t = target;
    await settle();
  }

  /** Time passes with the event loop blocked: nothing wakes until the next advance, then late. */
  stall(ms: number): void {
    this.t += ms;
  }
}
