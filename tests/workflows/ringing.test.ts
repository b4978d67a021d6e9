// Operator actions that race the call: while VoxImplant is being asked to call (Calling), while the
// customer's phone rings (WaitingForResult: placeRobotCall has returned, the scenario has not
// reported yet), and while the manual-handling alert is on its way; and the scenario's claim of its
// attempt before it dials. The report or the claim comes after the action here, which end-to-end
// tests only reach by luck.
import { WorkflowUpdateFailedError } from '@temporalio/client';
import {
  type LeadHandle,
  Stubs,
  claimCall,
  claimCallByUpdate,
  historyLines,
  leadInput,
  localTime,
  operatorAction,
  operatorActionAccepted,
  refusal,
  reportResult,
  skipTo,
  state,
  useTimeSkippingServer,
  waitForRinging,
  waitForTimer,
  waitForStatus,
  withLead,
  zoneAtLocalHour,
} from './harness';
import type { CallResult } from '../../workflows/types';

const env = useTimeSkippingServer();
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const who = { by: 'Ирина', note: 'клиент перезвонил сам' };
const closing = [
  {
    action: 'cancel' as const,
    status: 'Cancelled' as const,
    crmNote: 'Отменено (Ирина): клиент перезвонил сам',
  },
  {
    action: 'handled' as const,
    status: 'Handled' as const,
    crmNote: 'Обработано вручную (Ирина): клиент перезвонил сам',
  },
];

const { dayZone } = env;

/**
 * Stubs whose CRM notes wait for the test: the run stays open after the lead is closed (it ends
 * once its notes are written), so a late report meets the workflow and not a finished run.
 */
function notesHeld(behaviour: ConstructorParameters<typeof Stubs>[0] = {}): Stubs {
  const stubs: Stubs = new Stubs({
    ...behaviour,
    recordCallAttempts: async () => {
      await stubs.gate('notes').wait;
    },
  });
  return stubs;
}

/**
 * The scenario's report after the operator closed the lead: the workflow may take it or refuse it
 * as no longer awaited; what it must not do is act on it. The run's end is then let through.
 */
async function lateReport(handle: LeadHandle, stubs: Stubs, result: CallResult): Promise<void> {
  try {
    await reportResult(handle, 1, result);
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    expect(err.cause?.message).toBe('call attempt 1 is not awaited');
  }
  stubs.gate('notes').open();
}

test('call_now is refused while VoxImplant is asked to call and while the phone rings', async () => {
  const stubs: Stubs = new Stubs({
    placeRobotCall: async () => {
      await stubs.gate('call').wait;
      return { callSessionHistoryId: 1, deduplicated: false };
    },
  });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await stubs.waitForCalls('placeRobotCall', 1);
    expect((await state(handle)).status).toBe('Calling');
    expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(
      'cannot call again while the lead is Calling',
    );
    stubs.gate('call').open();
    await waitForRinging(handle, 1);
    expect(await refusal(operatorAction(handle, { action: 'call_now', ...who }))).toBe(
      'cannot call again while the lead is WaitingForResult',
    );
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', attempts: 1 });
    expect(historyLines(final).filter((l) => l.startsWith('оператор'))).toEqual([]);
    expect(stubs.robotCalls).toHaveLength(1);
  });
});

describe.each(closing)('$action during the call', (c) => {
  test.each(['answered', 'voicemail'] as const)(
    `while the phone rings, then "%s" is reported: no SMS, no further call, the lead ${c.status}`,
    async (result) => {
      const stubs = notesHeld();
      await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
        await waitForRinging(handle, 1);
        const update = await operatorActionAccepted(handle, { action: c.action, ...who });
        await lateReport(handle, stubs, result);
        await update.result();
        const final = await handle.result();
        expect(final.status).toBe(c.status);
        expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент перезвонил сам`);
        expect(stubs.crmNotes.map((n) => n.comment)).toContain(c.crmNote);
        expect(stubs.sms).toHaveLength(0);
        expect(stubs.robotCalls).toHaveLength(1);
      });
    },
  );

  test(`while the phone rings, then "busy" is reported: no retry, the lead ${c.status}`, async () => {
    const stubs = notesHeld();
    await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
      await waitForRinging(handle, 1);
      const update = await operatorActionAccepted(handle, { action: c.action, ...who });
      await lateReport(handle, stubs, 'busy');
      await update.result();
      const final = await handle.result();
      expect(final.status).toBe(c.status);
      expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент перезвонил сам`);
      expect(stubs.robotCalls).toHaveLength(1);
      expect(stubs.sms).toHaveLength(0);
    });
  });

  test(`while VoxImplant is asked to call, then "answered" is reported: no SMS, the lead ${c.status}`, async () => {
    const stubs: Stubs = notesHeld({
      placeRobotCall: async () => {
        await stubs.gate('call').wait;
        return { callSessionHistoryId: 1, deduplicated: false };
      },
    });
    await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
      await stubs.waitForCalls('placeRobotCall', 1);
      const update = await operatorActionAccepted(handle, { action: c.action, ...who });
      stubs.gate('call').open();
      await lateReport(handle, stubs, 'answered');
      await update.result();
      const final = await handle.result();
      expect(final.status).toBe(c.status);
      expect(historyLines(final)).toContain(`оператор: ${c.action} (Ирина): клиент перезвонил сам`);
      expect(stubs.sms).toHaveLength(0);
      expect(stubs.robotCalls).toHaveLength(1);
    });
  });
});

test.each(closing)('ManualHandling while its alert is on its way: $action is kept', async (c) => {
  const stubs: Stubs = new Stubs({
    notifySellers: async (alert) => {
      if (alert.kind === 'manual_handling') await stubs.gate('alert').wait;
      return { messageId: 1 };
    },
  });
  const input = leadInput(await dayZone(), { policy: { maxAttempts: 1 } });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'busy');
    await waitForStatus(handle, 'ManualHandling');
    await stubs.waitForCalls('notifySellers', 2);
    const update = await operatorActionAccepted(handle, { action: c.action, ...who });
    stubs.gate('alert').open();
    expect((await update.result()).status).toBe(c.status);
    const final = await handle.result();
    expect(final).toMatchObject({ status: c.status, manualReason: 'attempts_exhausted' });
    expect(stubs.crmNotes.at(-1)!.comment).toBe(c.crmNote);
  });
});

test('the claim before dialling is no task of the lead: the lead learns of it when the attempt ends, with its time', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    const claimedAt = await env().currentTimeMs();
    expect(await claimCall(stubs, 1, 'session-a')).toEqual({ claimed: true });
    // The lead's history has no update for it: nothing of the lead ran for the claim.
    const events = (await handle.fetchHistory()).events ?? [];
    expect(events.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    const claims = final.history.filter((h) => h.what.startsWith('звонок'));
    expect(claims.map((h) => h.what)).toEqual(['звонок, попытка 1 (сессия session-a)']);
    expect(claims[0]!.at).toBeGreaterThanOrEqual(claimedAt);
    // The attempt is sealed: a late claim of another session is refused.
    expect(await refusal(claimCall(stubs, 1, 'session-b'))).toBe('call attempt 1 is already claimed');
  });
});

test('a claim by update (an attempt placed before 1.7.0, its token without du) still counts as dialled', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    expect(await refusal(claimCallByUpdate(handle, 2, 'session-a'))).toBe('call attempt 2 is not awaited');
    expect(await claimCallByUpdate(handle, 1, 'session-a')).toEqual({ claimed: true });
    expect(await refusal(claimCallByUpdate(handle, 1, 'session-b'))).toBe(
      'call attempt 1 is already claimed',
    );
    // Its first answer may have been lost on the way: the same session is granted again.
    expect(await claimCallByUpdate(handle, 1, 'session-a')).toEqual({ claimed: true });
    // No report: claimed, so the customer may have been rung, and a person decides (not a retry).
    const timeout = await waitForTimer(handle, () => true);
    await skipTo(env(), timeout.firesAt);
    expect(await waitForStatus(handle, 'ManualHandling')).toMatchObject({ manualReason: 'no_call_result' });
    expect(stubs.robotCalls).toHaveLength(1);
    expect(historyLines(await state(handle)).filter((l) => l.startsWith('звонок'))).toEqual([
      'звонок, попытка 1 (сессия session-a)',
    ]);
  });
});

test('a claim that comes after the working window closed is refused: nobody is rung at night, the lead is called in the morning', async () => {
  const stubs = new Stubs();
  const now = await env().currentTimeMs();
  // The window closes within the hour; the lead waits two hours for its report.
  const zone = zoneAtLocalHour(now, 20);
  const input = leadInput(zone, { policy: { resultTimeoutMs: 2 * HOUR } });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    // The claim endpoint refuses claims after this (tests/leadFlow.test.ts): the window's end.
    expect((stubs.robotCalls[0]!.input as { dialUntil?: number }).dialUntil).toBe(
      localTime(now, zone, '21:00'),
    );
    await skipTo(env(), localTime(now, zone, '21:00') + MINUTE);
    const s = await state(handle);
    expect(s.status).toBe('WaitingForResult');
    expect(historyLines(s).filter((l) => l.startsWith('звонок'))).toEqual([]);
    // Nobody was rung, so at the result timeout the lead sleeps until the morning like a night
    // lead (the text saying so, no alert to the sellers) instead of waiting for a person.
    await skipTo(env(), (await waitForTimer(handle, (t) => t.durationMs === 2 * HOUR)).firesAt);
    const asleep = await waitForStatus(handle, 'WaitingForWorkingHours');
    expect(asleep).toMatchObject({ attempts: 1, nextCallAt: localTime(now, zone, '09:00', 1) });
    expect(asleep.manualReason).toBeUndefined();
    expect(stubs.smsKinds).toEqual(['night']);
    expect(stubs.alertsOf('manual_handling')).toEqual([]);
    await skipTo(env(), localTime(now, zone, '09:00', 1));
    await waitForRinging(handle, 2);
    await claimCall(stubs, 2, 'session-b');
    await reportResult(handle, 2, 'answered');
    expect(await handle.result()).toMatchObject({ status: 'Answered', attempts: 2 });
    expect(stubs.robotCalls).toHaveLength(2);
  });
});

test.each(closing)(
  '$action while VoxImplant is asked to call: no claim granted, no second action taken',
  async (c) => {
    const stubs: Stubs = new Stubs({
      placeRobotCall: async () => {
        await stubs.gate('call').wait;
        return { callSessionHistoryId: 1, deduplicated: false };
      },
    });
    await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
      await stubs.waitForCalls('placeRobotCall', 1);
      const update = await operatorActionAccepted(handle, { action: c.action, ...who });
      expect((await state(handle)).pendingAction).toBe(c.action);
      // An attempt placed by an older release: its claim, an update, is refused by the lead itself.
      expect(await refusal(claimCallByUpdate(handle, 1, 'session-a'))).toBe(
        `an operator's ${c.action} stopped the call`,
      );
      const other = c.action === 'cancel' ? 'handled' : 'cancel';
      expect(await refusal(operatorAction(handle, { action: other }))).toBe(
        `an operator's ${c.action} is being carried out`,
      );
      stubs.gate('call').open();
      expect((await update.result()).status).toBe(c.status);
      const final = await handle.result();
      // The lead sealed the attempt as it stopped: a claim after that is refused (the API seals it
      // before it even tells the lead, tests/security.test.ts).
      expect(await refusal(claimCall(stubs, 1, 'session-a'))).toBe('call attempt 1 is not awaited');
      expect(final.status).toBe(c.status);
      expect(final.pendingAction).toBeUndefined();
      expect(historyLines(final).filter((l) => l.startsWith('оператор'))).toHaveLength(1);
      expect(historyLines(final).filter((l) => l.startsWith('звонок'))).toEqual([]);
    });
  },
);
