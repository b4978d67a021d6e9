// The CRM branch beside the call: Bitrix24 refusing or down never stops or delays the call, makes the
// lead a person's job, and the call's notes reach the CRM lead once it exists.
import { ApplicationFailure } from '@temporalio/common';
import type { RegisteredLead } from '../../activities/bitrix24';
import type { CrmLeadLink } from '../../activities/telegram';
import { ALERT_WAITS_FOR_CRM_MS } from '../../workflows/processLead';
import {
  CRM_LEAD_ID,
  HOUR,
  Stubs,
  historyLines,
  leadInput,
  operatorAction,
  queuesOf,
  reportResult,
  useTimeSkippingServer,
  waitForRinging,
  waitForState,
  withLead,
} from './harness';

const env = useTimeSkippingServer();

const { dayZone } = env;

test('the activities run on their own queues; the CRM lead carries the ref, the run and the warnings', async () => {
  const stubs = new Stubs();
  const input = leadInput(await dayZone(), {
    city: 'Казань',
    site: 'shop.example',
    orderAmount: 1990,
    comment: 'позвоните после обеда',
    warnings: ['timezone: неизвестная зона, взята Europe/Moscow'],
  });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    expect(stubs.of('registerLead').map((c) => c.input)).toEqual([
      {
        ref: `${input.ref}#${handle.firstExecutionRunId}`,
        name: 'Анна',
        phone: '79161234567',
        city: 'Казань',
        timezone: input.timezone,
        partnerCode: undefined,
        site: 'shop.example',
        orderAmount: 1990,
        comment: 'позвоните после обеда\ntimezone: неизвестная зона, взята Europe/Moscow',
        receivedAt: input.receivedAt,
      },
    ]);
    expect(historyLines(final)).toContain('timezone: неизвестная зона, взята Europe/Moscow');
    const queues = queuesOf(input.ref);
    const queueOf = (name: string) => [...new Set(stubs.of(name).map((c) => c.taskQueue))];
    expect(queueOf('registerLead')).toEqual([queues.crm]);
    expect(queueOf('recordCallAttempts')).toEqual([queues.crm]);
    // The first call goes with the task that schedules it, on the lead's own queue.
    expect(queueOf('placeRobotCall')).toEqual([queues.main]);
    expect(queueOf('sendSms')).toEqual([queues.main]);
    expect(queueOf('notifySellers')).toEqual([queues.main]);
  });
});

test.each([
  { type: 'Bitrix24AuthError', reason: 'crm_auth_failed' },
  { type: 'Bitrix24Error', reason: 'crm_unavailable' },
  { type: 'Bitrix24OverloadError', reason: 'crm_unavailable' },
])('Bitrix24 refuses the lead ($type): $reason, the call still happens', async ({ type, reason }) => {
  const stubs = new Stubs({
    registerLead: async () => {
      throw ApplicationFailure.nonRetryable('Bitrix24: refused', type);
    },
  });
  const input = leadInput(await dayZone(), { partnerCode: 'P7' });
  await withLead(env(), stubs, input, async ({ handle }) => {
    const ringing = await waitForState(
      handle,
      (s) => s.status === 'WaitingForResult' && s.manualReason === reason,
      `ringing with ${reason}`,
    );
    expect(ringing.partner).toEqual({ status: 'lookup_failed' });
    await reportResult(handle, 1, 'answered');
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', manualReason: reason });
    expect(final.crmLeadId).toBeUndefined();
    expect(historyLines(final)).toContain('лид в CRM не создан: Bitrix24: refused');
    expect(stubs.of('registerLead')).toHaveLength(1);
    // No CRM lead, so nothing to write the call to.
    expect(stubs.of('recordCallAttempts')).toHaveLength(0);
    expect(stubs.smsKinds).toEqual(['confirmation']);
    // Bitrix24 answered within the alert's wait: one message tells the sellers of the lead and that
    // a person must take it; there is no CRM link to follow.
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({ reason: 'лид в CRM не создан: Bitrix24: refused', partner: 'P7' }),
    ]);
    expect(stubs.alertsOf('manual_handling')[0]!.crmLeadId).toBeUndefined();
    expect(stubs.alertsOf('new_lead')).toHaveLength(0);
    expect(stubs.of('notifySellersCrmLead')).toHaveLength(0);
  });
});

test('Bitrix24 down for longer than the CRM branch waits (6 h): crm_unavailable; the call went on meanwhile', async () => {
  const stubs = new Stubs({
    registerLead: async () => {
      throw ApplicationFailure.retryable('Bitrix24: HTTP 502', 'Bitrix24Unavailable');
    },
  });
  const input = leadInput(await dayZone());
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'answered');
    await waitForState(handle, (s) => s.status === 'Answered');
    expect(stubs.smsKinds).toEqual(['confirmation']);
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', manualReason: 'crm_unavailable' });
    const tries = stubs.of('registerLead');
    expect(tries.length).toBeGreaterThan(10);
    expect(tries.at(-1)!.at - tries[0]!.at).toBeLessThanOrEqual(6 * HOUR);
    expect(tries.at(-1)!.at - tries[0]!.at).toBeGreaterThan(5 * HOUR);
    expect(stubs.of('recordCallAttempts')).toHaveLength(0);
    expect(stubs.alertsOf('manual_handling')).toHaveLength(1);
  });
});

test('a slow CRM holds up neither the call nor the sellers: the alert goes after its wait, the CRM link when the lead exists', async () => {
  const stubs: Stubs = new Stubs({
    registerLead: async () => {
      await stubs.gate('crm').wait;
      return { leadId: CRM_LEAD_ID, created: true };
    },
  });
  const input = leadInput(await dayZone(), { receivedAt: 1_700_000_000_000 });
  await withLead(env(), stubs, input, async ({ handle }) => {
    await waitForRinging(handle, 1);
    await stubs.waitForCalls('notifySellers', 1);
    expect(stubs.alertsOf('new_lead')).toEqual([
      expect.objectContaining({ ref: input.ref, receivedAt: input.receivedAt }),
    ]);
    expect(stubs.alertsOf('new_lead')[0]!.crmLeadId).toBeUndefined();
    // It waited for the CRM lead as long as it may (workflow time), then went without it.
    const waited = stubs.of('notifySellers')[0]!.at - stubs.of('registerLead')[0]!.at;
    expect(waited).toBeGreaterThanOrEqual(ALERT_WAITS_FOR_CRM_MS);
    expect(waited).toBeLessThan(ALERT_WAITS_FOR_CRM_MS + 2_000);
    expect(stubs.of('notifySellersCrmLead')).toHaveLength(0);
    stubs.gate('crm').open();
    await stubs.waitForCalls('notifySellersCrmLead', 1);
    expect(stubs.of<CrmLeadLink>('notifySellersCrmLead')[0]!.input).toMatchObject({
      ref: input.ref,
      crmLeadId: CRM_LEAD_ID,
      receivedAt: input.receivedAt,
    });
    expect(stubs.of<{ receivedAt?: number }>('registerLead')[0]!.input.receivedAt).toBe(input.receivedAt);
    await reportResult(handle, 1, 'answered');
    expect(await handle.result()).toMatchObject({ status: 'Answered', crmLeadId: CRM_LEAD_ID });
    expect(stubs.alerts).toHaveLength(1);
  });
});

test('a slow CRM: the call is not held up, and its notes are written once the CRM lead exists', async () => {
  let leadReturned = false;
  let notesBeforeLead = 0;
  const stubs: Stubs = new Stubs({
    registerLead: async () => {
      await stubs.gate('crm').wait;
      leadReturned = true;
      return { leadId: CRM_LEAD_ID, created: true };
    },
    recordCallAttempts: async () => {
      if (!leadReturned) notesBeforeLead += 1;
    },
  });
  await withLead(env(), stubs, leadInput(await dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'answered', { duration: 40 });
    const answered = await waitForState(handle, (s) => s.status === 'Answered');
    expect(answered.crmLeadId).toBeUndefined();
    stubs.gate('crm').open();
    const final = await handle.result();
    expect(final).toMatchObject({ status: 'Answered', crmLeadId: CRM_LEAD_ID });
    expect(final.manualReason).toBeUndefined();
    expect(notesBeforeLead).toBe(0);
    // What piled up goes in one batch, each note once, in order.
    expect(stubs.of('recordCallAttempts')).toHaveLength(1);
    expect(stubs.crmNotes).toEqual([
      { leadId: CRM_LEAD_ID, comment: 'Попытка 1: answered, 40 с', statusId: undefined },
      {
        leadId: CRM_LEAD_ID,
        comment: 'Клиент ответил: SMS с подтверждением',
        statusId: undefined,
      },
    ]);
  });
});

const partnerCases: Array<{ partner: RegisteredLead['partner']; line: string }> = [
  {
    partner: { status: 'found', partner: { id: 7, title: 'Партнёр Семь', code: 'P7' } },
    line: 'партнёр: Партнёр Семь',
  },
  { partner: { status: 'not_found' }, line: 'партнёр не найден' },
];

test.each(partnerCases)(
  'partner $partner.status: recorded, the sellers told of a new lead',
  async ({ partner, line }) => {
    const stubs = new Stubs({ registerLead: async () => ({ leadId: CRM_LEAD_ID, created: true, partner }) });
    await withLead(env(), stubs, leadInput(await dayZone(), { partnerCode: 'P7' }), async ({ handle }) => {
      await waitForRinging(handle, 1);
      await reportResult(handle, 1, 'answered');
      const final = await handle.result();
      expect(historyLines(final)).toContain(line);
      expect(final.manualReason).toBeUndefined();
      // Bitrix24 answered within the alert's wait: one alert carries the CRM lead and the partner
      // Bitrix24 knows (else the code the lead came with); no separate link follows.
      expect(stubs.alertsOf('new_lead')).toEqual([
        expect.objectContaining({
          ref: final.ref,
          crmLeadId: CRM_LEAD_ID,
          partner: partner?.status === 'found' ? 'Партнёр Семь' : 'P7',
        }),
      ]);
      expect(stubs.of('notifySellersCrmLead')).toHaveLength(0);
    });
  },
);

test('the partner search refused: the lead is a person’s job (crm_auth_failed), the CRM lead and the call go on', async () => {
  const stubs = new Stubs({
    registerLead: async () => ({
      leadId: CRM_LEAD_ID,
      created: true,
      partner: { status: 'lookup_failed', reason: 'ACCESS_DENIED' },
    }),
  });
  await withLead(env(), stubs, leadInput(await dayZone(), { partnerCode: 'P7' }), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await reportResult(handle, 1, 'busy');
    const missed = await waitForState(handle, (s) => s.status === 'MissedCall');
    expect(missed).toMatchObject({
      partner: { status: 'lookup_failed' },
      manualReason: 'crm_auth_failed',
      crmLeadId: CRM_LEAD_ID,
    });
    expect(stubs.alertsOf('manual_handling')).toEqual([
      expect.objectContaining({ reason: 'поиск партнёра в Bitrix24 не удался: ACCESS_DENIED' }),
    ]);
    await stubs.waitForCalls('recordCallAttempts', 1);
    expect(stubs.crmNotes[0]).toMatchObject({ leadId: CRM_LEAD_ID, comment: 'Попытка 1: busy, 12 с' });
    await operatorAction(handle, { action: 'cancel' });
    expect(await handle.result()).toMatchObject({ status: 'Cancelled', manualReason: 'crm_auth_failed' });
  });
});
