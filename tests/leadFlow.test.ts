// The whole loop on a real Temporal dev server: intake over HTTP → processLead → CRM lead in the
// Bitrix24 emulator → processLead (call process) → StartScenarios at the VoxImplant emulator → the scenario's
// report posted back to our result endpoint → SMS at the SMS.ru emulator.
import crypto from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';
import { timelineOf } from './support/history';
import { signResultToken, type ResultTokenClaims } from '../domain/resultToken';
import { CALL_CLAIM_WORKFLOW, callClaimId } from '../support/callClaims';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const INTAKE_KEY = `shop-backend-${crypto.randomBytes(16).toString('hex')}`;

const { callsTo, smsTo, crmLeadsFor: leadsFor } = received(() => stack.emulators);

beforeAll(async () => {
  env = await startDevServer();
  // A report is never raced against its timeout: a lead waits for its report as long as a test needs.
  stack = await startStack(env, { CALL_RESULT_TIMEOUT: '10m', INTAKE_API_KEY: INTAKE_KEY });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

async function finalStatus(ref: string, expected: string): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const { body } = await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator);
    expect(body.status).toBe(expected);
    expect(body.execution).toBe('COMPLETED');
    return body;
  });
}

test('a lead is called, answered, confirmed by SMS and recorded in the CRM exactly once', async () => {
  const phone = uniquePhone();
  stack.emulators.bitrix24.control.addCompany({
    TITLE: 'Часовой партнёр',
    UF_CRM_PARTNER_CODE: 'watchpartner',
  });
  const res = await postJson(
    `${stack.url}/api/leads`,
    {
      name: 'Анна',
      phone: `8 ${phone.slice(1, 4)} ${phone.slice(4)}`,
      city: 'Казань',
      site: 'shop.example',
      orderAmount: '12 990',
    },
    { cookie: 'utm_source=watchpartner' },
  );
  expect(res.status).toBe(202);
  expect(res.body).toMatchObject({ ref: phone, status: 'started' });
  expect(String(res.body.workflowId)).toMatch(/^lead-k[0-9a-f]{24}$/); // the phone is not the id

  const state = await finalStatus(phone, 'Answered');
  expect(state).toMatchObject({
    attempts: 1,
    lastResult: 'answered',
    partner: { status: 'found', title: 'Часовой партнёр' },
  });

  expect(callsTo(phone)).toHaveLength(1);
  expect(callsTo(phone)[0]!.customData).toMatchObject({ phone, name: 'Анна', attempt: 1 });
  expect(smsTo(phone).map((s) => s.text)).toEqual([expect.stringContaining('Ваш заказ принят')]);

  const leads = leadsFor(phone);
  expect(leads).toHaveLength(1);
  expect(leads[0]).toMatchObject({
    NAME: 'Анна',
    ADDRESS_CITY: 'Казань',
    UTM_SOURCE: 'watchpartner',
    OPPORTUNITY: expect.anything(),
    ORIGINATOR_ID: 'speed-to-lead',
  });
  expect(Number(leads[0]!.OPPORTUNITY)).toBe(12990);
  await eventually(() => {
    const comments = stack.emulators.bitrix24.state.comments.filter(
      (c) => c.ENTITY_ID === Number(leads[0]!.ID),
    );
    expect(comments.map((c) => c.COMMENT).join('\n')).toMatch(/Попытка 1: answered/);
  });
  const alerts = stack.emulators.telegram.state.messages.filter((m) => m.text.includes(phone.slice(-4)));
  expect(alerts.length).toBeGreaterThanOrEqual(1);
});

test('20 concurrent posts of one ref (the shop backend’s, with its key) start exactly one workflow and place one call', async () => {
  const phone = uniquePhone();
  const ref = `order-${phone}`;
  const answers = await Promise.all(
    Array.from({ length: 20 }, () =>
      postJson(
        `${stack.url}/api/leads`,
        { name: 'Борис', phone, ref },
        { authorization: `Bearer ${INTAKE_KEY}` },
      ),
    ),
  );
  const statuses = answers.map((a) => a.status).sort();
  expect(statuses.filter((s) => s === 202)).toHaveLength(1);
  expect(statuses.filter((s) => s === 200)).toHaveLength(19);
  expect(answers.filter((a) => a.body.status === 'duplicate')).toHaveLength(19);
  await finalStatus(ref, 'Answered');
  expect(callsTo(phone)).toHaveLength(1);
  expect(leadsFor(phone)).toHaveLength(1);

  // Once that lead has finished, the same ref is a new lead.
  const again = await postJson(`${stack.url}/api/leads`, { name: 'Борис', phone, ref });
  expect(again.status).toBe(202);
  await eventually(() => expect(callsTo(phone)).toHaveLength(2));
});

test('voicemail → one SMS and no second call', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'voicemail', delayMs: 20 }]);
  await postJson(`${stack.url}/api/leads`, { name: 'Вера', phone });
  await finalStatus(phone, 'Voicemail');
  expect(callsTo(phone)).toHaveLength(1);
  expect(smsTo(phone)).toHaveLength(1);
});

test('busy three times then answered → four calls, one confirmation SMS', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [
    { result: 'busy', delayMs: 10 },
    { result: 'no_answer', delayMs: 10 },
    { result: 'unavailable', delayMs: 10 },
    { result: 'answered', delayMs: 10 },
  ]);
  const { body } = await postJson(`${stack.url}/api/leads`, { name: 'Глеб', phone });
  const state = await finalStatus(phone, 'Answered');
  expect(state.attempts).toBe(4);
  const calls = callsTo(phone);
  expect(calls.map((c) => c.customData?.attempt)).toEqual([1, 2, 3, 4]);
  // CALL_RETRY_DELAY is 1s in the tests: in the workflow's history, each retry waited for a timer
  // of exactly that long to fire.
  const timeline = await timelineOf(stack.service.client, String(body.workflowId));
  const placed = timeline.activities.filter((a) => a.name === 'placeRobotCall');
  const retries = timeline.timers.filter((t) => t.durationMs === stack.config.call.retryDelayMs);
  expect(placed).toHaveLength(4);
  expect(retries).toHaveLength(3);
  for (let i = 0; i < 3; i++) {
    expect(retries[i]!.fired).toBe(true);
    expect(retries[i]!.id).toBeGreaterThan(placed[i]!.id);
    expect(retries[i]!.id).toBeLessThan(placed[i + 1]!.id);
  }
  expect(smsTo(phone)).toHaveLength(1);
});

test('wrong number → one call, nothing more', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'wrong_number', code: 404, delayMs: 10 }]);
  await postJson(`${stack.url}/api/leads`, { name: 'Дина', phone });
  await finalStatus(phone, 'WrongNumber');
  expect(callsTo(phone)).toHaveLength(1);
  expect(smsTo(phone)).toHaveLength(0);
});

test('a report posted twice has one effect', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', delayMs: 10, report: 'twice' }]);
  await postJson(`${stack.url}/api/leads`, { name: 'Ева', phone });
  await finalStatus(phone, 'Answered');
  await stack.emulators.voximplant.control.settled();
  const reports = stack.emulators.voximplant.state.reports.filter((r) =>
    callsTo(phone).some((c) => c.callSessionHistoryId === r.callSessionHistoryId),
  );
  expect(reports.map((r) => r.status).sort()).toEqual([200, 409]);
  expect(smsTo(phone)).toHaveLength(1);
});

test('a 12-digit phone gets a CRM lead but no call', async () => {
  const phone = `380${uniquePhone().slice(2)}`;
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Жанна', phone });
  expect(res.status).toBe(202);
  const state = await finalStatus(phone, 'PhoneNotDialable');
  expect(state.crmLeadId).toEqual(expect.any(Number));
  expect(callsTo(phone)).toHaveLength(0);
});

test('forged and missing tokens are refused with 401 and change nothing', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', report: 'none' }]);
  await postJson(`${stack.url}/api/leads`, { name: 'Зоя', phone });
  await eventually(() => expect(callsTo(phone)).toHaveLength(1));
  await eventually(async () =>
    expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.status).toBe(
      'WaitingForResult',
    ),
  );
  const token = String(callsTo(phone)[0]!.customData!.token);
  const [payload, signature] = token.split('.');
  const forged = `${payload}.${signature!.slice(0, -2)}${signature!.endsWith('AA') ? 'BB' : 'AA'}`;
  const altered = `${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), a: 2 })).toString('base64url')}.${signature}`;
  for (const bad of [forged, altered, '', 'not-a-token']) {
    const res = await postJson(`${stack.url}/api/voximplant/result`, {
      token: bad,
      result: 'answered',
      code: 200,
      duration: 5,
    });
    expect(res.status).toBe(401);
  }
  const state = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
  expect(state.body.status).toBe('WaitingForResult');
  // The genuine token still works, and only once.
  const ok = await postJson(`${stack.url}/api/voximplant/result`, {
    token,
    result: 'answered',
    code: 200,
    duration: 5,
  });
  expect(ok.status).toBe(200);
  const again = await postJson(`${stack.url}/api/voximplant/result`, {
    token,
    result: 'busy',
    code: 486,
    duration: 0,
  });
  expect(again.status).toBe(409);
  await finalStatus(phone, 'Answered');
});

test('the claim is decided by Temporal, not by the lead: repeats of the same session granted, others refused, no update in the lead’s history', async () => {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', hold: true }]);
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Ия', phone });
  await eventually(() => expect(callsTo(phone)[0]?.claim?.outcome).toBe('granted'));
  const call = callsTo(phone)[0]!;
  const claimUrl = `${stack.url}/api/voximplant/claim`;
  const token = String(call.customData!.token);
  // The scenario's own claim was granted; its repeats (an answer lost on the way) are granted too.
  const repeats = await Promise.all(
    [1, 2, 3].map(() => postJson(claimUrl, { token, sessionId: call.callSessionHistoryId })),
  );
  expect(repeats.map((r) => r.status)).toEqual([200, 200, 200]);
  // Another session is refused, and so is a claim that names no session.
  expect((await postJson(claimUrl, { token, sessionId: 1 })).status).toBe(409);
  expect((await postJson(claimUrl, { token })).status).toBe(409);
  const lead = stack.service.client.workflow.getHandle(String(res.body.workflowId));
  const history = await lead.fetchHistory();
  const updates = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
  expect(updates).toHaveLength(0);
  // The attempt's claim is its own id in Temporal, held by the session that dialled.
  const { runId } = await lead.describe();
  const claim = await stack.service.client.workflow.getHandle(callClaimId(runId, 1)).describe();
  expect(claim).toMatchObject({
    type: CALL_CLAIM_WORKFLOW,
    memo: { session: String(call.callSessionHistoryId) },
  });
  stack.emulators.voximplant.control.release();
  const final = await finalStatus(phone, 'Answered');
  // The lead learnt of the claim when the attempt ended, with the claim's own time.
  const claimed = (final.history as Array<{ at: number; what: string }>).filter((h) =>
    h.what.startsWith('звонок'),
  );
  expect(claimed).toEqual([
    { at: claim.startTime.getTime(), what: `звонок, попытка 1 (сессия ${call.callSessionHistoryId})` },
  ]);
});

/** A lead whose workflow tasks nobody runs: the state of one behind a long backlog. */
function startStalledLead() {
  return stack.service.client.workflow.start('processLead', {
    taskQueue: `nobody-polls-${uniquePhone()}`,
    workflowId: `stalled-${uniquePhone()}`,
    args: [],
  });
}

/** The signed token of an attempt of `handle`'s run, valid for ten minutes. */
function tokenOf(
  handle: { workflowId: string; firstExecutionRunId: string },
  claims: Partial<ResultTokenClaims> & { a: number },
): string {
  return signResultToken(
    {
      wf: handle.workflowId,
      run: handle.firstExecutionRunId,
      exp: Math.floor(Date.now() / 1000) + 600,
      ...claims,
    },
    stack.config.voximplant.resultSecret,
  );
}

test('a claim needs no task of its lead: granted at once while the lead’s workflow is stalled; at night or after claimUntil refused', async () => {
  const handle = await startStalledLead();
  const now = Date.now();
  const tokenFor = (a: number, du: number, cu: number) => tokenOf(handle, { a, du, cu });
  const claimUrl = `${stack.url}/api/voximplant/claim`;
  const inTime = tokenFor(1, now + 3_600_000, now + 600_000);
  expect(await postJson(claimUrl, { token: inTime, sessionId: 7 })).toMatchObject({
    status: 200,
    body: { status: 'claimed' },
  });
  expect((await postJson(claimUrl, { token: inTime, sessionId: 7 })).status).toBe(200);
  expect(await postJson(claimUrl, { token: inTime, sessionId: 8 })).toMatchObject({
    status: 409,
    body: { error: 'call attempt 1 is already claimed' },
  });
  expect(
    await postJson(claimUrl, { token: tokenFor(2, now - 1, now + 600_000), sessionId: 7 }),
  ).toMatchObject({
    status: 409,
    body: { error: 'outside working hours in the customer’s time zone: no calls at night' },
  });
  expect(
    await postJson(claimUrl, { token: tokenFor(3, now + 3_600_000, now - 1), sessionId: 7 }),
  ).toMatchObject({
    status: 409,
    body: { error: 'call attempt 3 is no longer awaited (claimUntil passed)' },
  });
  await handle.terminate('test over');
});

test('when a report of a 1.9.0 attempt comes while the lead’s workflow is stalled, then it is taken at once and kept in the history; a repeat gets 409; a closed lead’s gets 409', async () => {
  const handle = await startStalledLead();
  const token = tokenOf(handle, { a: 1, rs: 1 });
  const resultUrl = `${stack.url}/api/voximplant/result`;
  const report = { token, result: 'answered', code: 200, duration: 7 };
  // No worker ever takes this workflow's task: an update would wait for one (503 after a few seconds).
  expect(await postJson(resultUrl, report)).toMatchObject({ status: 200, body: { status: 'accepted' } });
  expect((await postJson(resultUrl, report)).status).toBe(409);
  const { events } = await handle.fetchHistory();
  const signalled = (events ?? []).flatMap((e) => e.workflowExecutionSignaledEventAttributes ?? []);
  expect(signalled.map((a) => a.signalName)).toEqual(['reportCallResultSignal']);
  await handle.terminate('test over');
  const closed = tokenOf(handle, { a: 2, rs: 1 });
  expect((await postJson(resultUrl, { ...report, token: closed })).status).toBe(409);
});

test('a claim or report its workflow cannot take yet is answered 503 (asked again), not held open', async () => {
  const handle = await startStalledLead();
  const token = tokenOf(handle, { a: 1 });
  // A token without `du` (an attempt placed before 1.7.0) is claimed by an update of the lead.
  // Answered within the service's few seconds, however slow the machine: an answer held until the
  // workflow takes the update (never, here) runs into the test's timeout instead.
  const claim = postJson(`${stack.url}/api/voximplant/claim`, { token, sessionId: 7 });
  const report = postJson(`${stack.url}/api/voximplant/result`, { token, result: 'busy' });
  for (const res of await Promise.all([claim, report])) {
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/retry/);
  }
  await handle.terminate('test over');
});

test('the shop’s PHP snippet request gives a lead and a Corezoid-shaped answer', async () => {
  // Without COREZOID_PUBLIC_KEY the path is disabled.
  const disabled = await fetch(`${stack.url}/api/1/json/public/31754/anykey`, { method: 'POST', body: '{}' });
  expect(disabled.status).toBe(404);
});

test('invalid input is a 4xx with a JSON error and starts nothing', async () => {
  const before = stack.emulators.voximplant.state.calls.length;
  const missing = await postJson(`${stack.url}/api/leads`, { name: 'Без телефона' });
  expect(missing.status).toBe(400);
  expect(missing.body).toMatchObject({
    error: 'invalid lead',
    details: [{ field: 'phone', message: 'is required' }],
  });
  const letters = await postJson(`${stack.url}/api/leads`, { name: 'X', phone: '8916abc4567' });
  expect(letters.status).toBe(400);
  const broken = await postJson(`${stack.url}/api/leads`, '{"name": "x", "phone":');
  expect(broken).toMatchObject({ status: 400, body: { error: 'the body is not valid JSON' } });
  const text = await fetch(`${stack.url}/api/leads`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'hi',
  });
  expect(text.status).toBe(415);
  const huge = await postJson(`${stack.url}/api/leads`, { name: 'x'.repeat(100_000), phone: '89161234567' });
  expect(huge.status).toBe(413);
  expect(stack.emulators.voximplant.state.calls.length).toBe(before);
});

test('GET /api/leads/:ref of an unknown ref is 404', async () => {
  const res = await getJson(`${stack.url}/api/leads/no-such-ref`, stack.operator);
  expect(res.status).toBe(404);
});
