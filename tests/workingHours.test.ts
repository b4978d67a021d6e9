import { isWorkingTime, nextWorkingTime, parseWorkingSchedule } from '../domain/workingHours';
import { parseDuration } from '../domain/duration';
import { LEAD_PRIORITY, leadPriority } from '../api/intake';

const daily = parseWorkingSchedule('09:00-21:00');
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('working time in the customer’s own zone', () => {
  test('the same instant can be working time in Moscow and night in Vladivostok', () => {
    // 07:00Z = 10:00 MSK = 17:00 Vladivostok: both working
    expect(isWorkingTime(at('2026-11-25T07:00:00Z'), 'Europe/Moscow', daily)).toBe(true);
    expect(isWorkingTime(at('2026-11-25T07:00:00Z'), 'Asia/Vladivostok', daily)).toBe(true);
    // 17:00Z = 20:00 MSK (working) = 03:00 Vladivostok (night)
    expect(isWorkingTime(at('2026-11-25T17:00:00Z'), 'Europe/Moscow', daily)).toBe(true);
    expect(isWorkingTime(at('2026-11-25T17:00:00Z'), 'Asia/Vladivostok', daily)).toBe(false);
  });

  test('a night lead waits for 09:00 local, not Moscow time', () => {
    expect(iso(nextWorkingTime(at('2026-11-25T17:00:00Z'), 'Asia/Vladivostok', daily))).toBe(
      '2026-11-25T23:00:00.000Z',
    );
    expect(iso(nextWorkingTime(at('2026-11-25T23:30:00Z'), 'Europe/Moscow', daily))).toBe(
      '2026-11-26T06:00:00.000Z',
    );
  });

  test('inside the window the answer is now; the window end is exclusive', () => {
    const t = at('2026-11-25T10:00:00Z');
    expect(nextWorkingTime(t, 'Europe/Moscow', daily)).toBe(t);
    expect(isWorkingTime(at('2026-11-25T18:00:00Z'), 'Europe/Moscow', daily)).toBe(false); // 21:00 MSK
    expect(isWorkingTime(at('2026-11-25T17:59:59Z'), 'Europe/Moscow', daily)).toBe(true);
  });

  test('half-hour offsets (India +05:30, Adelaide +10:30 in summer)', () => {
    expect(iso(nextWorkingTime(at('2026-11-25T00:00:00Z'), 'Asia/Kolkata', daily))).toBe(
      '2026-11-25T03:30:00.000Z',
    );
    expect(iso(nextWorkingTime(at('2026-11-25T12:00:00Z'), 'Australia/Adelaide', daily))).toBe(
      '2026-11-25T22:30:00.000Z',
    );
  });

  test('DST: the morning after Europe/Berlin falls back opens at 09:00 CET (UTC+1)', () => {
    // 2026-10-25 03:00 CEST → 02:00 CET
    expect(iso(nextWorkingTime(at('2026-10-24T22:00:00Z'), 'Europe/Berlin', daily))).toBe(
      '2026-10-25T08:00:00.000Z',
    );
    // the day before, still summer time (UTC+2)
    expect(iso(nextWorkingTime(at('2026-10-23T22:00:00Z'), 'Europe/Berlin', daily))).toBe(
      '2026-10-24T07:00:00.000Z',
    );
  });

  test('DST: New York spring forward, a window starting in the skipped hour still opens once', () => {
    const early = parseWorkingSchedule('02:30-21:00');
    // 2026-03-08 02:00 EST → 03:00 EDT; 02:30 does not exist that day
    const next = nextWorkingTime(at('2026-03-08T05:00:00Z'), 'America/New_York', early);
    expect(next).toBeGreaterThanOrEqual(at('2026-03-08T06:30:00Z'));
    expect(next).toBeLessThanOrEqual(at('2026-03-08T07:30:00Z'));
  });

  test('weekend hours: closed weekends skip to Monday', () => {
    const weekdaysOnly = parseWorkingSchedule('09:00-18:00', 'off');
    // Friday 2026-11-27 19:00 MSK → Monday 2026-11-30 09:00 MSK
    expect(iso(nextWorkingTime(at('2026-11-27T16:00:00Z'), 'Europe/Moscow', weekdaysOnly))).toBe(
      '2026-11-30T06:00:00.000Z',
    );
    const shortWeekend = parseWorkingSchedule('09:00-21:00', '11:00-16:00');
    // Saturday 2026-11-28 10:00 MSK → 11:00 MSK
    expect(iso(nextWorkingTime(at('2026-11-28T07:00:00Z'), 'Europe/Moscow', shortWeekend))).toBe(
      '2026-11-28T08:00:00.000Z',
    );
  });

  test('a full-day window is always working time', () => {
    const always = parseWorkingSchedule('00:00-24:00');
    expect(isWorkingTime(at('2026-11-25T21:30:00Z'), 'Europe/Moscow', always)).toBe(true);
  });

  test.each(['9-21', '21:00-09:00', '09:00-25:00', 'sometimes'])('schedule %j is refused', (text) => {
    expect(() => parseWorkingSchedule(text)).toThrow(/WORKING_HOURS/);
  });

  test('an all-closed schedule is refused', () => {
    expect(() => parseWorkingSchedule('off', 'off')).toThrow(/no working time/);
  });
});

describe('durations in configuration', () => {
  test.each([
    ['30m', 1_800_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['45s', 45_000],
    ['250ms', 250],
    ['90', 90_000],
  ])('%s', (text, ms) => expect(parseDuration(text)).toBe(ms));
  test.each(['', 'm30', '30 minutes', '1x'])('%j is not a duration', (text) =>
    expect(parseDuration(text)).toBeUndefined(),
  );
});

describe('lead priority at intake', () => {
  // 12:00 UTC is inside 09:00-21:00 in London (winter) and outside it in Tokyo (21:00 local).
  const noon = Date.UTC(2026, 0, 15, 12, 0);
  const policy = { workingSchedule: daily } as unknown as Parameters<typeof leadPriority>[1];
  const lead = (timezone: string, phoneCallable = true) =>
    ({ timezone, phoneCallable }) as unknown as Parameters<typeof leadPriority>[0];

  test('a lead called at once goes ahead of one that waits for the window or is not called', () => {
    expect(isWorkingTime(noon, 'Europe/London', daily)).toBe(true);
    expect(isWorkingTime(noon, 'Asia/Tokyo', daily)).toBe(false);
    expect(leadPriority(lead('Europe/London'), policy, noon)).toBe(LEAD_PRIORITY.callableNow);
    expect(leadPriority(lead('Asia/Tokyo'), policy, noon)).toBe(LEAD_PRIORITY.later);
    expect(leadPriority(lead('Europe/London', false), policy, noon)).toBe(LEAD_PRIORITY.later);
    expect(LEAD_PRIORITY.callableNow).toBeLessThan(LEAD_PRIORITY.later);
  });
});
