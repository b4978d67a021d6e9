// What each report of the scenario leads to, the retry delay, the attempt limit, the result timeout
// and the manual-handling timeout, in the workflow's own time.
import {
  CRM_LEAD_ID,
  DAY,
  MINUTE,
  Stubs,
  claimCall,
  historyLines,
  leadInput,
  operatorAction,
  refusal,
  reportResult,
  reportResultBySignal,
  skipTo,
  waitForTimer,
  useTimeSkippingServer,
  waitForRinging,
  waitForState,
  waitForStatus,
  withLead,
} from './harness';

const env = useTimeSkippingServer();

const { dayZone } = env;

test('when the report comes as a signal, then the lead takes it as it takes the update; one for another attempt, and a repeat, change nothing', async () => {
  const stubs = new Stubs();
  const input = leadInput(await dayZone());
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    // The call's token asks for the report as a signal.
    expect(stubs.robotCalls[0]!.input).toMatchObject({ reportBySignal: true });
    await reportResultBySignal(handle, 2, 'answered');
    await reportResultBySignal(handle, 1, 'busy', { code: 486 });
    await reportResultBySignal(handle, 1, 'answered', { code: 200 });
    const state = await waitForStatus(handle, 'MissedCall');
    expect(state).toMatchObject({ attempts: 1, lastResult: 'busy' });
    expect(stubs.sms).toEqual([]);
  });
});

test('answered: the confirmation SMS, the lead closes as Answered, the call written to the CRM lead', async () => {
  const stubs = new Stubs();
  const input = leadInput(await dayZone());
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    expect(stubs.robotCalls.map((c) => c.input)).toEqual([
      expect.objectContaining({
        workflowId: handle.workflowId,
        runId: handle.firstExecutionRunId,
        ref: input.ref,
        attempt: 1,
        name: 'Анна',
        phone: '79161234567',
        resultUrl: input.policy.resultUrl,
        claimUrl: input.policy.claimUrl,
        // The result token outlives the wait for the report by an hour.
        tokenTtlSeconds: (10 * MINUTE + 60 * MINUTE) / 1000,
      }),
    ]);
    await reportResult(handle, 1, 'answered', { code: 200, duration: 34 });
    const final = await handle.result();
    expect(final).toMatchObject({
      status: 'Answered',
      attempts: 1,
      lastResult: 'answered',
      crmLeadId: CRM_LEAD_ID,
    });
    expect(final.manualReason).toBeUndefined();
    expect(stubs.sms.map((c) => c.input)).toEqual([
      {
        idempotencyKey: `${handle.workflowId}/${handle.firstExecutionRunId}/confirmation`,
        phone: '79161234567',
        text: 'Анна, ваш заказ принят.',
      },
    ]);
    expect(stubs.crmNotes).toEqual([
      { leadId: CRM_LEAD_ID, comment: 'Попытка 1: answered (код 200), 34 с', statusId: undefined },
      {
        leadId: CRM_LEAD_ID,
        comment: 'Клиент ответил: SMS с подтверждением',
        statusId: undefined,
      },
    ]);
    expect(stubs.robotCalls).toHaveLength(1);
  });
});

test('voicemail: the voicemail SMS, no further call', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'voicemail');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Voicemail', attempts: 1, lastResult: 'voicemail' });
    expect(stubs.smsKinds).toEqual(['voicemail']);
    expect(stubs.sms[0]!.input.text).toBe('Анна, мы вам звонили и не дозвонились.');
    expect(stubs.robotCalls).toHaveLength(1);
    expect(stubs.crmNotes.at(-1)!.comment).toBe('Автоответчик: SMS, повторных звонков нет');
  });
});

test('wrong number: calls stop, no SMS, the CRM lead is marked junk', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'wrong_number', { code: 404 });
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'WrongNumber', attempts: 1, lastResult: 'wrong_number' });
    expect(stubs.sms).toHaveLength(0);
    expect(stubs.robotCalls).toHaveLength(1);
    expect(stubs.crmNotes.at(-1)).toEqual({
      leadId: CRM_LEAD_ID,
      comment: 'Неверный номер: звонки прекращены',
      statusId: 'JUNK',
    });
  });
});

test.each(['busy', 'no_answer', 'unavailable', 'failed'] as const)(
  '%s: MissedCall, the next call exactly the retry delay later',
  async (result) => {
    const stubs = new Stubs();
    await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
      await waitForRinging(handle, 1);
      await reportResult(handle, 1, result, { code: 486 });
      const missed = await waitForStatus(handle, 'MissedCall');
      expect(missed).toMatchObject({ attempts: 1, lastResult: result });
      expect(missed.manualReason).toBeUndefined();
      expect(historyLines(missed)).toContain(`недозвон (${result})`);
      const retry = await waitForTimer(
        handle,
        (t) => t.startedAt >= stubs.robotCalls[0]!.at && t.durationMs !== 10 * MINUTE,
      );
      expect(retry.durationMs).toBe(30 * MINUTE);
      expect(missed.nextCallAt).toBe(retry.firesAt);

      await skipTo(env(), retry.firesAt);
      await waitForRinging(handle, 2);
      expect(stubs.robotCalls.map((c) => c.input.attempt)).toEqual([1, 2]);
      expect(stubs.robotCalls[1]!.at).toBeGreaterThanOrEqual(retry.firesAt);
      await reportResult(handle, 2, 'answered');
      expect(await handle.result()).toMatchObject({ status: 'Answered', attempts: 2 });
      expect(stubs.smsKinds).toEqual(['confirmation']);
      expect(stubs.crmNotes.map((n) => n.comment).slice(0, 2)).toEqual([
        `Попытка 1: ${result} (код 486), 12 с`,
        'Попытка 2: answered, 12 с',
      ]);
    });
  },
);

test('the attempt limit: ManualHandling(attempts_exhausted), then closed as unhandled after the manual timeout', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    const results = ['busy', 'no_answer', 'failed'] as const;
    for (const [i, result] of results.entries()) {
      if (i > 0) {
        const lastCall = stubs.robotCalls[i - 1]!.at;
        await skipTo(
          env(),
          (await waitForTimer(handle, (t) => t.startedAt > lastCall && t.durationMs === 30 * MINUTE)).firesAt,
        );
      }
      await waitForRinging(handle, i + 1);
      await reportResult(handle, i + 1, result);
    }
    const manual = await waitForStatus(handle, 'ManualHandling');
    expect(manual).toMatchObject({ manualReason: 'attempts_exhausted', attempts: 3, lastResult: 'failed' });
    expect(manual.nextCallAt).toBeUndefined();
    await stubs.waitForCalls('notifySellers', 2);
    expect(stubs.alertsOf('new_lead')).toHaveLength(1);
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({
        reason: 'attempts_exhausted: недозвон после 3 попыток',
        actions: true,
        crmLeadId: CRM_LEAD_ID,
      }),
    ]);
    // Nobody acts: the wait for a person is one timer of the configured length.
    const wait = await waitForTimer(handle, (t) => t.durationMs > 30 * MINUTE);
    expect(wait.durationMs).toBe(DAY);
    const final = await handle.result();
    expect(final).toMatchObject({
      status: 'ManualHandling',
      manualReason: 'attempts_exhausted',
      attempts: 3,
    });
    expect(historyLines(final)).toContain('Никто не обработал заявку вовремя');
    expect(stubs.robotCalls).toHaveLength(3);
    expect(stubs.sms).toHaveLength(0);
  });
});

test('a claimed call with no report within the result timeout: ManualHandling(no_call_result); a late report is refused', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    // The scenario was let dial: the customer may have been rung, so a person decides.
    await claimCall(stubs, 1, 'session-a');
    const timeout = await waitForTimer(handle, () => true);
    expect(timeout.durationMs).toBe(10 * MINUTE);
    await skipTo(env(), timeout.firesAt);
    const manual = await waitForStatus(handle, 'ManualHandling');
    expect(manual).toMatchObject({ manualReason: 'no_call_result', attempts: 1 });
    expect(await refusal(reportResult(handle, 1, 'answered'))).toBe('call attempt 1 is not awaited');
    await stubs.waitForCalls('notifySellers', 2);
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({ reason: 'no_call_result: нет отчёта о звонке (попытка 1)' }),
    ]);

    await operatorAction(handle, { action: 'handled', by: 'Ирина', note: 'перезвонила сама' });
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Handled', manualReason: 'no_call_result' });
    expect(stubs.sms).toHaveLength(0);
    expect(stubs.crmNotes.map((n) => n.comment)).toEqual([
      'Попытка 1: нет отчёта о звонке',
      'Нужна ручная обработка: нет отчёта о звонке (попытка 1)',
      'Обработано вручную (Ирина): перезвонила сама',
    ]);
  });
});

describe('an attempt whose scenario never claimed it (never dialled) ends without a report', () => {
  const UNCLAIMED = 'Попытка 1: звонка не было (сценарий не получил разрешения позвонить)';

  test('it is tried again at once, with no alert to the sellers', async () => {
    const stubs = new Stubs();
    const input = leadInput(await dayZone());
    await withLead(env(), stubs, input, async ({ handle }) => {
      await waitForRinging(handle, 1);
      const timeout = await waitForTimer(handle, () => true);
      await skipTo(env(), timeout.firesAt);
      await waitForRinging(handle, 2);
      // At once, not after a missed call's retry delay (the server's clock runs on meanwhile).
      expect(stubs.robotCalls[1]!.at).toBeGreaterThanOrEqual(timeout.firesAt);
      expect(stubs.robotCalls[1]!.at).toBeLessThan(timeout.firesAt + input.policy.retryDelayMs);
      expect(await refusal(claimCall(stubs, 1, 'late-session'))).toBe('call attempt 1 is not awaited');
      await claimCall(stubs, 2, 'session-b');
      await reportResult(handle, 2, 'answered');
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'Answered', attempts: 2 });
      expect(final.manualReason).toBeUndefined();
      expect(historyLines(final)).toContain(UNCLAIMED);
      expect(stubs.alertsOf('manual_handling')).toEqual([]);
      expect(stubs.crmNotes.map((n) => n.comment)).toEqual([
        UNCLAIMED,
        'Попытка 2: answered, 12 с',
        'Клиент ответил: SMS с подтверждением',
      ]);
      expect(stubs.smsKinds).toEqual(['confirmation']);
    });
  });

  test('at the last attempt: ManualHandling(no_call_result), the sellers alerted', async () => {
    const stubs = new Stubs();
    const input = leadInput(await dayZone(), { policy: { maxAttempts: 1 } });
    await withLead(env(), stubs, input, async ({ handle }) => {
      await waitForRinging(handle, 1);
      await skipTo(env(), (await waitForTimer(handle, () => true)).firesAt);
      const manual = await waitForStatus(handle, 'ManualHandling');
      expect(manual).toMatchObject({ manualReason: 'no_call_result', attempts: 1 });
      await stubs.waitForCalls('notifySellers', 2);
      const detail =
        'звонка не было (попытка 1, сценарий не получил разрешения позвонить), попытки исчерпаны';
      expect(stubs.alertsOf('manual_handling')).toEqual([
        expect.objectContaining({ reason: `no_call_result: ${detail}` }),
      ]);
      await operatorAction(handle, { action: 'cancel' });
      expect(await handle.result()).toMatchObject({ status: 'Cancelled', attempts: 1 });
      expect(stubs.robotCalls).toHaveLength(1);
    });
  });
});

test('a report for another attempt, or a second report, is refused', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    expect(await refusal(reportResult(handle, 2, 'answered'))).toBe('call attempt 2 is not awaited');
    await reportResult(handle, 1, 'busy');
    expect(await refusal(reportResult(handle, 1, 'answered'))).toBe('call attempt 1 is not awaited');
    const missed = await waitForState(handle, (s) => s.status === 'MissedCall');
    expect(missed.lastResult).toBe('busy');
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled', lastResult: 'busy' });
    expect(stubs.sms).toHaveLength(0);
  });
});
