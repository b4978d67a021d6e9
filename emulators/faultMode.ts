// The outage an emulator is told to play ('down', 'rate_limit', 'auth_error'), for a number of
// requests or until changed, shared by the emulators so each answers only in its provider's shape.
export type EmulatorMode = 'ok' | 'down' | 'rate_limit' | 'auth_error';

export class FaultMode {
  private mode: EmulatorMode = 'ok';
  private left = Number.POSITIVE_INFINITY;

  /** `times`: how many requests get this mode before it falls back to 'ok' (default: until changed). */
  set(mode: EmulatorMode, times = Number.POSITIVE_INFINITY): void {
    this.mode = mode;
    this.left = times;
  }

  /** The mode for the request being answered; counts it against `times`. */
  take(): EmulatorMode {
    if (this.mode === 'ok') return 'ok';
    const current = this.mode;
    this.left -= 1;
    if (this.left <= 0) this.mode = 'ok';
    return current;
  }

  reset(): void {
    this.set('ok');
  }
}
