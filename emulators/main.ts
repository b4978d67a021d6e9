// `npm run emulators`: the four provider emulators on their own, for trying the service by hand
// against them from another process (set the providers' URLs to the printed addresses).
// EMULATOR_CALL_RESULT_DELAY_MS: how long each emulated call "rings" before the scenario reports
// its result (default 50 ms). The control API is in-process only, so this is how another process (the
// cluster's fault tests) keeps calls in flight long enough to kill something in the middle of them.
import { startEmulators } from '.';

function callResultDelayMs(): number | undefined {
  const raw = process.env.EMULATOR_CALL_RESULT_DELAY_MS?.trim();
  if (!raw) return undefined;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0 || ms > 3_600_000) {
    console.error(`EMULATOR_CALL_RESULT_DELAY_MS: whole milliseconds from 0 to 3600000, got "${raw}"`);
    process.exit(1);
  }
  return ms;
}

const delayMs = callResultDelayMs();

startEmulators().then(
  (emulators) => {
    if (delayMs !== undefined)
      emulators.voximplant.control.setDefaultOutcome({ result: 'answered', delayMs });
    console.log(JSON.stringify(emulators.urls, null, 2));
    const stop = () => void emulators.close().then(() => process.exit(0));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  },
  (err: unknown) => {
    console.error('could not start the emulators:', err);
    process.exit(1);
  },
);
