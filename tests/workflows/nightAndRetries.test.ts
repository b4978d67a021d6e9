// Working hours in the customer's own zone: the night SMS (once per lead, however many nights), one
// timer to the window's opening, and retries that never land outside the window.
import { ApplicationFailure } from '@temporalio/common';
import type { WorkingSchedule } from '../../domain/workingHours';
import { openWakeSlots } from '../../support/wakeSlots';
import {
  DAY,
  HOUR,
  MINUTE,
  Stubs,
  leadInput,
  localTime,
  operatorAction,
  processTimers,
  reportResult,
  skipTo,
  waitForTimer,
  useTimeSkippingServer,
  waitForRinging,
  waitForState,
  waitForStatus,
  withLead,
  zoneAtLocalHour,
} from './harness';

const env = useTimeSkippingServer();

test.each([
  { localHour: 3, opensOnDay: 0, when: 'before the window' },
  { localHour: 22, opensOnDay: 1, when: 'after the window' },
])(
  'a lead at $localHour:xx local ($when): one night SMS, no call until 09:00 there',
  async ({ localHour, opensOnDay }) => {
    const now = await env().currentTimeMs();
    const zone = zoneAtLocalHour(now, localHour);
    const opening = localTime(now, zone, '09:00', opensOnDay);
    const stubs = new Stubs();
    await withLead(env(), stubs, leadInput(zone), async ({ handle }) => {
      const asleep = await waitForStatus(handle, 'WaitingForWorkingHours');
      expect(asleep).toMatchObject({ nightSmsSent: true, nextCallAt: opening, attempts: 0 });
      expect(stubs.sms.map((c) => c.input.text)).toEqual([
        'Здравствуйте, Анна! Перезвоним вам в рабочее время (09:00-21:00).',
      ]);
      expect(stubs.smsKinds).toEqual(['night']);
      // One timer, not a polling loop, and it cannot fire before the opening.
      const timer = await waitForTimer(handle, (t) => t.durationMs > HOUR);
      expect(await processTimers(handle)).toHaveLength(1);
      expect(timer.firesAt).toBeGreaterThanOrEqual(opening);

      await skipTo(env(), timer.firesAt);
      await waitForRinging(handle, 1);
      expect(stubs.robotCalls).toHaveLength(1);
      expect(stubs.robotCalls[0]!.at).toBeGreaterThanOrEqual(opening);
      await reportResult(handle, 1, 'answered');
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'Answered', attempts: 1, nightSmsSent: true });
      expect(stubs.smsKinds).toEqual(['night', 'confirmation']);
    });
  },
);

test('the timer to the window fires at the opening sharp, however long the night SMS took', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  const opening = localTime(now, zone, '09:00');
  let tries = 0;
  // The gateway fails once: the activity's retry makes the SMS end two seconds (or more) later.
  const stubs = new Stubs({
    sendSms: async () => {
      tries += 1;
      if (tries === 1) throw ApplicationFailure.retryable('SMS.ru: HTTP 503', 'SmsGatewayError');
      return { status: 'sent', smsId: 'sms-1' };
    },
  });
  await withLead(env(), stubs, leadInput(zone), async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    const timer = await waitForTimer(handle, (t) => t.durationMs > HOUR);
    await operatorAction(handle, { action: 'cancel' });
    await handle.result();
    expect(tries).toBe(2);
    // The SMS's retry took two seconds or more; the timer makes up for them. Since 1.3.0 it may
    // start a workflow task after the lead fell asleep (its place in the morning's queue is a local
    // activity), which on a busy worker is a few milliseconds later: never before the opening.
    expect(timer.firesAt).toBeGreaterThanOrEqual(opening);
    expect(timer.firesAt).toBeLessThan(opening + 1_000);
  });
});

test('a lead during the working day is called at once: no night SMS, no timer before the call', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 12);
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(zone), async ({ handle }) => {
    const ringing = await waitForRinging(handle, 1);
    expect(ringing.nightSmsSent).toBe(false);
    expect(stubs.sms).toHaveLength(0);
    // The only timer so far is the wait for the call's result.
    await waitForTimer(handle, (t) => t.durationMs === 10 * MINUTE);
    expect((await processTimers(handle)).map((t) => t.durationMs)).toEqual([10 * MINUTE]);
    await reportResult(handle, 1, 'answered');
    expect(await handle.result()).toMatchObject({ status: 'Answered', nightSmsSent: false });
    expect(stubs.smsKinds).toEqual(['confirmation']);
  });
});

test('several nights of retries: one night SMS in all, each retry pushed to the next day’s opening', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  // A 20-minute window: a retry 30 minutes after a missed call always falls outside it.
  const input = leadInput(zone, { policy: { workingHoursText: '09:00-09:20', maxAttempts: 4 } });
  const stubs = new Stubs();
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    let next = await waitForTimer(handle, (t) => t.durationMs > HOUR);
    const missed = ['busy', 'no_answer', 'unavailable', 'failed'] as const;
    for (const [i, result] of missed.entries()) {
      await skipTo(env(), next.firesAt);
      await waitForRinging(handle, i + 1);
      const call = stubs.robotCalls[i]!;
      expect(call.input.attempt).toBe(i + 1);
      expect(call.at).toBeGreaterThanOrEqual(localTime(now, zone, '09:00', i));
      expect(call.at).toBeLessThan(localTime(now, zone, '09:20', i));
      await reportResult(handle, i + 1, result);
      if (i === missed.length - 1) break;
      const nextDay = localTime(now, zone, '09:00', i + 1);
      const waiting = await waitForState(handle, (s) => s.status === 'MissedCall' && s.attempts === i + 1);
      expect(waiting).toMatchObject({ lastResult: result, nextCallAt: nextDay, nightSmsSent: true });
      next = await waitForTimer(handle, (t) => t.startedAt >= call.at && t.durationMs > HOUR);
      expect(next.firesAt).toBe(nextDay);
    }
    const manual = await waitForStatus(handle, 'ManualHandling');
    expect(manual).toMatchObject({ manualReason: 'attempts_exhausted', attempts: 4 });
    // The night and every retry pushed to an opening took a place in that morning's queue.
    expect(stubs.of<{ windowStart: number }>('takeWakeSlot').map((c) => c.input.windowStart)).toEqual(
      [0, 1, 2, 3].map((day) => localTime(now, zone, '09:00', day)),
    );
    expect(stubs.smsKinds).toEqual(['night']);
    // Calls of the morning and retries are not first calls: they go by the rate-limited call queue.
    expect([...new Set(stubs.robotCalls.map((c) => c.taskQueue))]).toEqual([input.policy.callTaskQueue]);
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled' });
  });
});

test('a closed day: the lead sleeps through two nights on one timer, with one night SMS', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  const opening = localTime(now, zone, '09:00', 2);
  // Open only on the weekday two local days from now.
  const isoWeekday = ((new Date(opening + zone.offsetHours * 3_600_000).getUTCDay() + 6) % 7) + 1;
  const workingSchedule: WorkingSchedule = {
    days: Array.from({ length: 7 }, (_, i) =>
      i === isoWeekday - 1 ? { start: 9 * 60, end: 21 * 60 } : null,
    ),
  };
  const stubs = new Stubs();
  const input = leadInput(zone, { policy: { workingSchedule } });
  await withLead(env(), stubs, input, async ({ handle }) => {
    const asleep = await waitForStatus(handle, 'WaitingForWorkingHours');
    expect(asleep.nextCallAt).toBe(opening);
    const timer = await waitForTimer(handle, (t) => t.durationMs > HOUR);
    expect(await processTimers(handle)).toHaveLength(1);
    expect(timer.durationMs).toBeGreaterThan(DAY + 6 * HOUR);
    await skipTo(env(), timer.firesAt);
    await waitForRinging(handle, 1);
    expect(stubs.robotCalls[0]!.at).toBeGreaterThanOrEqual(opening);
    expect(stubs.smsKinds).toEqual(['night']);
    await reportResult(handle, 1, 'voicemail');
    expect(await handle.result()).toMatchObject({ status: 'Voicemail' });
    expect(stubs.smsKinds).toEqual(['night', 'voicemail']);
  });
});

test('leads asleep for one window wake in turn: with five asleep before it, a lead wakes 5 s after the opening at 1 call/s', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  const opening = localTime(now, zone, '09:00');
  // The real counter, at one call a second; five leads fell asleep for this window before this one.
  const slots = openWakeSlots({ perSecond: 1 });
  for (let i = 0; i < 5; i++) await slots.take(opening);
  const stubs = new Stubs({ takeWakeSlot: ({ windowStart }) => slots.take(windowStart) });
  await withLead(env(), stubs, leadInput(zone), async ({ handle }) => {
    const asleep = await waitForStatus(handle, 'WaitingForWorkingHours');
    // Shown as due at the opening: the place only orders it among the others.
    expect(asleep.nextCallAt).toBe(opening);
    const timer = await waitForTimer(handle, (t) => t.durationMs > HOUR);
    // At its place, before the next one's; a little after it when the place came in a later
    // workflow task than the one that put the lead to sleep (a busy worker), never before.
    expect(timer.firesAt).toBeGreaterThanOrEqual(opening + 5_000);
    expect(timer.firesAt).toBeLessThan(opening + 6_000);
    expect(stubs.of('takeWakeSlot').map((c) => c.input)).toEqual([{ windowStart: opening }]);

    await skipTo(env(), timer.firesAt);
    await waitForRinging(handle, 1);
    expect(stubs.robotCalls[0]!.at).toBeGreaterThanOrEqual(opening + 5_000);
    await reportResult(handle, 1, 'answered');
    expect(await handle.result()).toMatchObject({ status: 'Answered', attempts: 1 });
  });
  // The next lead for that window would take the place after it.
  expect(await slots.take(opening)).toEqual({ place: 6, wakeAt: opening + 6_000 });
});

test.each([
  {
    what: 'the counter fails',
    takeWakeSlot: async (): Promise<never> => {
      throw ApplicationFailure.nonRetryable('DATA_DIR is read-only', 'Error');
    },
  },
  {
    what: 'its place lies past the window’s end',
    takeWakeSlot: async ({ windowStart }: { windowStart: number }) => ({
      place: 50_000,
      wakeAt: windowStart + 13 * HOUR,
    }),
  },
])('without a place in the morning’s queue ($what) a lead wakes at the opening', async ({ takeWakeSlot }) => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  const opening = localTime(now, zone, '09:00');
  const stubs = new Stubs({ takeWakeSlot });
  await withLead(env(), stubs, leadInput(zone), async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    const timer = await waitForTimer(handle, (t) => t.durationMs > HOUR);
    // At the opening (a busy worker may start the timer a task later, never earlier), not 13 h on.
    expect(timer.firesAt).toBeGreaterThanOrEqual(opening);
    expect(timer.firesAt).toBeLessThan(opening + MINUTE);
    expect(stubs.of('takeWakeSlot').length).toBeGreaterThanOrEqual(1);
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled' });
  });
});
