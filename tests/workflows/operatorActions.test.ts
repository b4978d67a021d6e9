// Every operator action in every state the lead rests in: New, WaitingForWorkingHours, MissedCall,
// ManualHandling (by day and at night) and the final states. A refused action is the update's
// validator throwing (the API's 409 with that message); an allowed one is recorded with who and why.
// The actions while a call is ringing are in ringing.test.ts.
import type { LeadStatus, OperatorAction } from '../../workflows/types';
import {
  type LeadHandle,
  Stubs,
  historyLines,
  leadInput,
  localTime,
  DAY,
  HOUR,
  MINUTE,
  operatorAction,
  operatorActionAccepted,
  refusal,
  reportResult,
  skip,
  skipTo,
  waitForTimer,
  state,
  useTimeSkippingServer,
  waitForRinging,
  waitForState,
  waitForStatus,
  withLead,
  zoneAtLocalHour,
} from './harness';

const env = useTimeSkippingServer();
const who = { by: 'Ирина', note: 'клиент написал в чат' };
const closing = [
  {
    action: 'cancel' as const,
    status: 'Cancelled' as const,
    crmNote: 'Отменено (Ирина): клиент написал в чат',
  },
  {
    action: 'handled' as const,
    status: 'Handled' as const,
    crmNote: 'Обработано вручную (Ирина): клиент написал в чат',
  },
];
const NIGHT_REFUSAL = 'outside working hours in the customer’s time zone: no calls at night';

async function zoneAt(localHour: number) {
  return zoneAtLocalHour(await env().currentTimeMs(), localHour);
}

test.each(closing)(
  'New (the night SMS on its way): $action is kept and closes the lead, no call',
  async (c) => {
    const stubs: Stubs = new Stubs({
      sendSms: async () => {
        await stubs.gate('sms').wait;
        return { status: 'sent', smsId: 'sms-1' };
      },
    });
    await withLead(env(), stubs, leadInput(await zoneAt(3)), async ({ handle }) => {
      await stubs.waitForCalls('sendSms', 1);
      expect((await state(handle)).status).toBe('New');
      expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(
        'cannot call again while the lead is New',
      );
      const update = await operatorActionAccepted(handle, { action: c.action, ...who });
      stubs.gate('sms').open();
      await update.result();
      const final = await handle.result();
      expect(final.status).toBe(c.status);
      expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент написал в чат`);
      expect(historyLines(final)).not.toContain('оператор: call_now (Ирина): клиент написал в чат');
      expect(stubs.crmNotes.map((n) => n.comment)).toEqual([c.crmNote]);
      expect(stubs.robotCalls).toHaveLength(0);
      expect(stubs.smsKinds).toEqual(['night']);
    });
  },
);

test.each(closing)('WaitingForWorkingHours: call_now refused, $action closes the lead at once', async (c) => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await zoneAt(3)), async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(
      'cannot call again while the lead is WaitingForWorkingHours',
    );
    const answer = await operatorAction(handle, { action: c.action, ...who });
    expect(answer.status).toBe(c.status);
    expect(answer.nextCallAt).toBeUndefined();
    // The run ends at once: the window's opening never comes for it.
    const final = await handle.result();
    expect(final.status).toBe(c.status);
    expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент написал в чат`);
    expect(stubs.crmNotes.map((n) => n.comment)).toEqual([c.crmNote]);
    expect(stubs.robotCalls).toHaveLength(0);
  });
});

test('MissedCall by day: call_now calls again at once, without waiting for the retry delay', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await zoneAt(12)), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'no_answer');
    await waitForStatus(handle, 'MissedCall');
    const retry = await waitForTimer(handle, (t) => t.durationMs === 30 * MINUTE);
    const answer = await operatorAction(handle, { action: 'call_now', ...who });
    expect(answer).toMatchObject({ attempts: 2 });
    expect(['Calling', 'WaitingForResult']).toContain(answer.status);
    await waitForRinging(handle, 2);
    expect(stubs.robotCalls[1]!.at).toBeLessThan(retry.firesAt - 25 * MINUTE);
    await reportResult(handle, 2, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', attempts: 2 });
    expect(historyLines(final)).toContain('оператор: call_now (Ирина): клиент написал в чат');
    expect(stubs.robotCalls).toHaveLength(2);
  });
});

test.each(closing)('MissedCall: $action closes the lead, no further call', async (c) => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await zoneAt(12)), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'busy');
    await waitForStatus(handle, 'MissedCall');
    expect((await operatorAction(handle, { action: c.action, ...who })).status).toBe(c.status);
    const final = await handle.result();
    expect(final).toMatchObject({ status: c.status, attempts: 1, lastResult: 'busy' });
    expect(stubs.crmNotes.map((n) => n.comment)).toEqual(['Попытка 1: busy, 12 с', c.crmNote]);
    expect(stubs.robotCalls).toHaveLength(1);
    expect(stubs.sms).toHaveLength(0);
  });
});

test('MissedCall at night (the retry waits for tomorrow): call_now refused', async () => {
  const now = await env().currentTimeMs();
  const zone = zoneAtLocalHour(now, 3);
  const stubs = new Stubs();
  const input = leadInput(zone, { policy: { workingHoursText: '09:00-09:20' } });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    await skipTo(env(), (await waitForTimer(handle, (t) => t.durationMs > HOUR)).firesAt);
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'busy');
    const missed = await waitForStatus(handle, 'MissedCall');
    expect(missed.nextCallAt).toBe(localTime(now, zone, '09:00', 1));
    await skip(env(), 30 * MINUTE);
    expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(NIGHT_REFUSAL);
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled', attempts: 1 });
    expect(stubs.robotCalls).toHaveLength(1);
  });
});

/** One missed call with a limit of one attempt: ManualHandling(attempts_exhausted). */
async function toManualHandling(handle: LeadHandle, stubs: Stubs) {
  await waitForRinging(handle, 1);
  await reportResult(handle, 1, 'unavailable');
  const manual = await waitForStatus(handle, 'ManualHandling');
  expect(manual.manualReason).toBe('attempts_exhausted');
  await stubs.waitForCalls('notifySellers', 2);
}

test('ManualHandling by day: call_now places a new attempt at once and clears the manual reason', async () => {
  const stubs = new Stubs();
  await withLead(
    env(),
    stubs,
    leadInput(await zoneAt(12), { policy: { maxAttempts: 1 } }),
    async ({ handle }) => {
      await toManualHandling(handle, stubs);
      const answer = await operatorAction(handle, { action: 'call_now', ...who });
      expect(answer).toMatchObject({ attempts: 2 });
      expect(answer.manualReason).toBeUndefined();
      await waitForRinging(handle, 2);
      await reportResult(handle, 2, 'answered');
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'Answered', attempts: 2 });
      expect(final.manualReason).toBeUndefined();
      expect(stubs.smsKinds).toEqual(['confirmation']);
    },
  );
});

test.each(closing)('ManualHandling: $action closes the lead, the manual reason kept', async (c) => {
  const stubs = new Stubs();
  await withLead(
    env(),
    stubs,
    leadInput(await zoneAt(12), { policy: { maxAttempts: 1 } }),
    async ({ handle }) => {
      await toManualHandling(handle, stubs);
      expect((await operatorAction(handle, { action: c.action, ...who })).status).toBe(c.status);
      const final = await handle.result();
      expect(final).toMatchObject({ status: c.status, manualReason: 'attempts_exhausted', attempts: 1 });
      expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент написал в чат`);
      expect(stubs.crmNotes.at(-1)!.comment).toBe(c.crmNote);
      expect(stubs.robotCalls).toHaveLength(1);
    },
  );
});

test('ManualHandling at night: call_now refused, handled accepted', async () => {
  const stubs = new Stubs();
  const input = leadInput(await zoneAt(3), { policy: { workingHoursText: '09:00-09:20', maxAttempts: 1 } });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    await skipTo(env(), (await waitForTimer(handle, (t) => t.durationMs > HOUR)).firesAt);
    await toManualHandling(handle, stubs);
    await skip(env(), 30 * MINUTE);
    expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(NIGHT_REFUSAL);
    expect((await operatorAction(handle, { action: 'handled', ...who })).status).toBe('Handled');
    expect(await handle.result()).toMatchObject({ status: 'Handled' });
    expect(stubs.robotCalls).toHaveLength(1);
  });
});

const ALL_ACTIONS: OperatorAction[] = [
  { action: 'call_now', ...who },
  { action: 'handled', ...who },
  { action: 'cancel', ...who },
];

async function expectAllRefused(handle: LeadHandle, status: LeadStatus) {
  for (const action of ALL_ACTIONS) {
    expect(await refusal(operatorAction(handle, action))).toBe(`the lead is ${status}: nothing to do`);
  }
}

// The run stays open after its final status while the CRM lead is on its way: held here.
function slowCrm(): Stubs {
  const stubs: Stubs = new Stubs({
    registerLead: async () => {
      await stubs.gate('crm').wait;
      return { leadId: 1, created: true };
    },
  });
  return stubs;
}

test.each([
  { result: 'answered' as const, status: 'Answered' as const },
  { result: 'voicemail' as const, status: 'Voicemail' as const },
  { result: 'wrong_number' as const, status: 'WrongNumber' as const },
])('$status (final): every action refused', async ({ result, status }) => {
  const stubs = slowCrm();
  await withLead(env(), stubs, leadInput(await zoneAt(12)), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, result);
    await waitForStatus(handle, status);
    await expectAllRefused(handle, status);
    stubs.gate('crm').open();
    const final = await handle.result();
    expect(final.status).toBe(status);
    expect(historyLines(final).filter((l) => l.startsWith('оператор'))).toEqual([]);
    expect(stubs.robotCalls).toHaveLength(1);
  });
});

test.each(closing)('$status (final): every further action refused', async (c) => {
  const stubs = slowCrm();
  await withLead(env(), stubs, leadInput(await zoneAt(3)), async ({ handle }) => {
    await waitForStatus(handle, 'WaitingForWorkingHours');
    await operatorAction(handle, { action: c.action, ...who });
    await waitForStatus(handle, c.status);
    await expectAllRefused(handle, c.status);
    stubs.gate('crm').open();
    const final = await handle.result();
    expect(historyLines(final).filter((l) => l.startsWith('оператор'))).toHaveLength(1);
  });
});

test('ManualHandling closed unhandled after its timeout (final): every action refused', async () => {
  // Held open by its last CRM note, written once the lead is closed.
  const stubs: Stubs = new Stubs({
    recordCallAttempts: async ({ notes }) => {
      if (notes.some((n) => n.comment === 'Никто не обработал заявку вовремя')) await stubs.gate('crm').wait;
    },
  });
  await withLead(
    env(),
    stubs,
    leadInput(await zoneAt(12), { policy: { maxAttempts: 1 } }),
    async ({ handle }) => {
      await toManualHandling(handle, stubs);
      await skipTo(env(), (await waitForTimer(handle, (t) => t.durationMs === DAY)).firesAt);
      await waitForState(handle, (s) => historyLines(s).includes('Никто не обработал заявку вовремя'));
      await expectAllRefused(handle, 'ManualHandling');
      stubs.gate('crm').open();
      expect(await handle.result()).toMatchObject({
        status: 'ManualHandling',
        manualReason: 'attempts_exhausted',
      });
      expect(stubs.robotCalls).toHaveLength(1);
    },
  );
});

test.each([
  { phone: '12345', phoneIssue: 'not_a_dialable_number' as const },
  { phone: '7916123456789', phoneIssue: 'phone_too_long' as const },
])('PhoneNotDialable ($phoneIssue): every action refused', async (overrides) => {
  const stubs = slowCrm();
  const input = leadInput(await zoneAt(12), { ...overrides, phoneCallable: false });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForState(handle, (s) => s.status === 'PhoneNotDialable');
    await expectAllRefused(handle, 'PhoneNotDialable');
    stubs.gate('crm').open();
    expect((await handle.result()).status).toBe('PhoneNotDialable');
    expect(stubs.robotCalls).toHaveLength(0);
  });
});
