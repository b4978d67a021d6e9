// Whatever the real time of a run, some zone is in its working day and some in its night: tests
// that depend on working hours pick their zone here instead of assuming the clock.
import { isWorkingTime, nextWorkingTime, type WorkingSchedule } from '../../domain/workingHours';
import { uniquePhone } from './http';

// A lead's zone counts only when it is one of its number's country's (api/intake.ts), so each zone
// here is Russia's or the United States': between them they cover all but six hours of offsets,
// and a stack that posts these zones allows both countries (ALLOWED_PHONE_COUNTRIES=RU,US).
/** Russia's zones: a Russian number's post may name any of them. */
export const RUSSIAN_ZONES = [
  'Europe/Kaliningrad',
  'Europe/Moscow',
  'Europe/Samara',
  'Asia/Yekaterinburg',
  'Asia/Omsk',
  'Asia/Novosibirsk',
  'Asia/Irkutsk',
  'Asia/Yakutsk',
  'Asia/Vladivostok',
  'Asia/Magadan',
  'Asia/Kamchatka',
];
const US_ZONES = [
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Los_Angeles',
  'Pacific/Honolulu',
];
const ZONES = [...RUSSIAN_ZONES, ...US_ZONES];
export const ZONE_COUNTRIES = 'RU,US';

let usCounter = 0;
/** A new number of the zone's country: a Russian mobile, or a New York line for a US zone. */
export function phoneOfZone(zone: string): string {
  if (RUSSIAN_ZONES.includes(zone)) return uniquePhone();
  if (!US_ZONES.includes(zone)) throw new Error(`${zone} is not one of the zones tests use`);
  usCounter += 1;
  // A NANP exchange never starts with 0 or 1.
  const n = ((Date.now() % 100_000) * 100 + usCounter) % 8_000_000;
  return `1212${200 + Math.floor(n / 10_000)}${String(n % 10_000).padStart(4, '0')}`;
}

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
