// Working-time arithmetic in the customer's own time zone. Pure and deterministic (no clock read
// here), so workflows use it with their own deterministic time and the API and tests share it.
import { formatInTimeZone, fromZonedTime } from 'date-fns-tz';

/** A day's window in minutes after local midnight, [start, end). */
export interface DayWindow {
  start: number;
  end: number;
}

/** Seven entries, Monday first; null is a day with no calls. */
export interface WorkingSchedule {
  days: Array<DayWindow | null>;
}

function parseWindow(text: string, name: string): DayWindow | null {
  const value = text.trim().toLowerCase();
  if (value === 'off' || value === 'closed' || value === 'none') return null;
  const m = /^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$/.exec(value);
  if (!m) throw new Error(`${name} must look like 09:00-21:00 (or "off"), got "${text}"`);
  const [h1, m1, h2, m2] = m.slice(1).map(Number) as [number, number, number, number];
  if (h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || (h2 === 24 && m2 !== 0)) {
    throw new Error(`${name} has an impossible time: "${text}"`);
  }
  const start = h1 * 60 + m1;
  const end = h2 * 60 + m2;
  if (end <= start)
    throw new Error(`${name} must end after it starts (no windows across midnight): "${text}"`);
  return { start, end };
}

/** `weekdays` applies to every day unless `weekend` (Saturday and Sunday) is given. */
export function parseWorkingSchedule(weekdays: string, weekend?: string): WorkingSchedule {
  const daily = parseWindow(weekdays, 'WORKING_HOURS');
  const weekendWindow = weekend === undefined ? daily : parseWindow(weekend, 'WEEKEND_WORKING_HOURS');
  const days = [daily, daily, daily, daily, daily, weekendWindow, weekendWindow];
  if (days.every((d) => d === null)) throw new Error('the schedule has no working time at all');
  return { days };
}

interface LocalDay {
  date: string; // yyyy-MM-dd in the zone
  isoWeekday: number; // 1 = Monday
}

function localDay(instant: number, timeZone: string, dayOffset: number): LocalDay {
  const today = formatInTimeZone(instant, timeZone, 'yyyy-MM-dd');
  // Calendar arithmetic on the local date itself, so DST shifts cannot skip or repeat a day.
  const utcMidnight = Date.parse(`${today}T00:00:00Z`) + dayOffset * 86_400_000;
  const date = new Date(utcMidnight).toISOString().slice(0, 10);
  const jsDay = new Date(utcMidnight).getUTCDay();
  return { date, isoWeekday: jsDay === 0 ? 7 : jsDay };
}

function atLocalMinutes(date: string, minutes: number, timeZone: string): number {
  const hh = String(Math.floor(minutes / 60)).padStart(2, '0');
  const mm = String(minutes % 60).padStart(2, '0');
  if (minutes === 24 * 60) {
    const next = new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
    return fromZonedTime(`${next}T00:00:00`, timeZone).getTime();
  }
  return fromZonedTime(`${date}T${hh}:${mm}:00`, timeZone).getTime();
}

/** The working window that contains `instant`, or the next one to open: [start, end) in epoch ms. */
export function currentOrNextWindow(
  instant: number,
  timeZone: string,
  schedule: WorkingSchedule,
): { start: number; end: number } {
  for (let offset = -1; offset <= 8; offset++) {
    const day = localDay(instant, timeZone, offset);
    const window = schedule.days[day.isoWeekday - 1];
    if (!window) continue;
    const start = atLocalMinutes(day.date, window.start, timeZone);
    const end = atLocalMinutes(day.date, window.end, timeZone);
    if (instant < end) return { start, end };
  }
  throw new Error('working schedule has no open window within a week');
}

export function isWorkingTime(instant: number, timeZone: string, schedule: WorkingSchedule): boolean {
  const w = currentOrNextWindow(instant, timeZone, schedule);
  return instant >= w.start && instant < w.end;
}

/** `instant` itself when inside working time, else the moment the next window opens. */
export function nextWorkingTime(instant: number, timeZone: string, schedule: WorkingSchedule): number {
  const w = currentOrNextWindow(instant, timeZone, schedule);
  return Math.max(instant, w.start);
}
