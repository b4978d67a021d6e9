// VoxImplant refusing or failing the call, SMS.ru's uncertain or failed SMS, and numbers that are
// never called.
import { ApplicationFailure } from '@temporalio/common';
import {
  CRM_LEAD_ID,
  MINUTE,
  Stubs,
  historyLines,
  leadInput,
  operatorAction,
  refusal,
  reportResult,
  skip,
  useTimeSkippingServer,
  waitForRinging,
  waitForStatus,
  withLead,
  zoneAtLocalHour,
} from './harness';

const env = useTimeSkippingServer();

const { dayZone } = env;

test('VoxImplant refuses the call: ManualHandling(call_provider_rejected) at once, no retry of the refusal', async () => {
  const stubs = new Stubs({
    placeRobotCall: async (input) => {
      if (input.attempt === 1)
        throw ApplicationFailure.nonRetryable('rule 42 not found', 'VoximplantRejected');
      return { callSessionHistoryId: 1, deduplicated: false };
    },
  });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    const manual = await waitForStatus(handle, 'ManualHandling');
    expect(manual).toMatchObject({ manualReason: 'call_provider_rejected', attempts: 1 });
    expect(stubs.robotCalls).toHaveLength(1);
    expect(await refusal(reportResult(handle, 1, 'answered'))).toBe('call attempt 1 is not awaited');
    await stubs.waitForCalls('notifySellers', 2);
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({
        reason: 'call_provider_rejected: VoxImplant: rule 42 not found',
        actions: true,
      }),
    ]);

    // The operator has the rule fixed and calls again.
    const calling = await operatorAction(handle, { action: 'call_now', by: 'Ирина' });
    expect(calling).toMatchObject({ attempts: 2 });
    expect(calling.manualReason).toBeUndefined();
    await waitForRinging(handle, 2);
    await reportResult(handle, 2, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', attempts: 2 });
    expect(final.manualReason).toBeUndefined();
    expect(stubs.smsKinds).toEqual(['confirmation']);
  });
});

test('VoxImplant failing on every try: the bounded retries end in ManualHandling(call_provider_rejected)', async () => {
  const stubs = new Stubs({
    placeRobotCall: async () => {
      throw ApplicationFailure.retryable('VoxImplant: HTTP 503', 'VoximplantUnavailable');
    },
  });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await stubs.waitForCalls('placeRobotCall', 1);
    // The activity's retries back off up to 30 s, ten tries in all: well within ten minutes.
    await skip(env(), 10 * MINUTE);
    const manual = await waitForStatus(handle, 'ManualHandling');
    expect(manual).toMatchObject({ manualReason: 'call_provider_rejected', attempts: 1 });
    expect(stubs.robotCalls).toHaveLength(10);
    expect(stubs.robotCalls.every((c) => c.input.attempt === 1)).toBe(true);
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({
      status: 'Cancelled',
      manualReason: 'call_provider_rejected',
    });
  });
});

test('the confirmation SMS may not have gone out (skipped): Answered, flagged sms_uncertain and alerted', async () => {
  const stubs = new Stubs({ sendSms: async () => ({ status: 'skipped', reason: 'possible_duplicate' }) });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', manualReason: 'sms_uncertain' });
    expect(stubs.sms).toHaveLength(1);
    expect(stubs.alerts.map((a) => a.input)).toContainEqual(
      expect.objectContaining({
        kind: 'manual_handling',
        reason: 'sms_uncertain: SMS (confirmation) may not have been sent',
      }),
    );
    expect(stubs.crmNotes.map((n) => n.comment)).toContain(
      'Нужна ручная обработка: SMS (confirmation) may not have been sent',
    );
  });
});

test('the night SMS may not have gone out: flagged sms_uncertain, the lead still sleeps and is called', async () => {
  const now = await env().currentTimeMs();
  const stubs = new Stubs({ sendSms: async () => ({ status: 'skipped', reason: 'possible_duplicate' }) });
  await withLead(env(), stubs, leadInput(zoneAtLocalHour(now, 3)), async ({ handle }) => {
    const asleep = await waitForStatus(handle, 'WaitingForWorkingHours');
    expect(asleep).toMatchObject({ manualReason: 'sms_uncertain', nightSmsSent: true });
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled', manualReason: 'sms_uncertain' });
    expect(stubs.sms).toHaveLength(1);
  });
});

test('SMS.ru refuses the confirmation SMS: Answered, flagged sms_failed, the sellers alerted', async () => {
  const stubs = new Stubs({
    sendSms: async () => {
      throw ApplicationFailure.nonRetryable('SMS.ru: not enough money (code 201)', 'SmsRejected');
    },
  });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', manualReason: 'sms_failed' });
    const what = 'SMS (confirmation) не отправлено: SMS.ru: not enough money (code 201)';
    expect(historyLines(final)).toContain(what);
    // A refused SMS is not retried.
    expect(stubs.sms).toHaveLength(1);
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({ reason: `sms_failed: ${what}` }),
    ]);
    expect(stubs.crmNotes.map((n) => n.comment)).toContain(`Нужна ручная обработка: ${what}`);
  });
});

test.each([
  { phoneIssue: 'not_a_dialable_number' as const, line: 'номер не для звонка' },
  { phoneIssue: 'phone_too_long' as const, line: 'телефон слишком длинный: без звонка' },
])(
  'a number marked $phoneIssue: never called or texted, still in the CRM and alerted',
  async ({ phoneIssue, line }) => {
    const stubs = new Stubs();
    const input = leadInput(await dayZone(), { phone: '12345', phoneCallable: false, phoneIssue });
    await withLead(env(), stubs, input, async ({ handle }) => {
      const final = await handle.result();
      expect(final).toMatchObject({ status: 'PhoneNotDialable', crmLeadId: CRM_LEAD_ID, attempts: 0 });
      expect(historyLines(final)).toContain(line);
      expect(stubs.robotCalls).toHaveLength(0);
      expect(stubs.sms).toHaveLength(0);
      expect(stubs.of('registerLead')).toHaveLength(1);
      expect(stubs.alerts.map((a) => a.input.kind)).toEqual(['new_lead']);
    });
  },
);
