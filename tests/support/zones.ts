// Whatever the real time of a run, some zone is in its working day and some in its night: tests
// that depend on working hours pick their zone here instead of assuming the clock.
import { isWorkingTime, nextWorkingTime, type WorkingSchedule } from '../../domain/workingHours';

const ZONES = [
  'Asia/Vladivostok',
  'Asia/Tokyo',
  'Asia/Kolkata',
  'Europe/Moscow',
  'Europe/London',
  'America/New_York',
  'America/Los_Angeles',
  'Pacific/Honolulu',
  'Pacific/Auckland',
];

/** A zone in its night whose window opens more than two hours from now. */
export function nightZone(now: number, schedule: WorkingSchedule): { zone: string; opensAt: number } {
  for (const zone of ZONES) {
    const opensAt = nextWorkingTime(now, zone, schedule);
    if (!isWorkingTime(now, zone, schedule) && opensAt - now > 2 * 3_600_000) return { zone, opensAt };
  }
  throw new Error('no zone in its night: extend ZONES');
}

/** A zone in its working day with at least three hours of the window left. */
export function dayZone(now: number, schedule: WorkingSchedule): string {
  for (const zone of ZONES) {
    if (isWorkingTime(now, zone, schedule) && isWorkingTime(now + 3 * 3_600_000, zone, schedule)) return zone;
  }
  throw new Error('no zone in its working day: extend ZONES');
}
