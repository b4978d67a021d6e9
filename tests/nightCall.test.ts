// Night rules on the Java time-skipping test server: hours pass in about a second of wall time.
// A lead that arrives at night in the customer's own zone gets one night SMS and no call, sleeps on
// one timer, and is called when that zone's working window opens.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startStack, startTimeSkippingServer, type TestStack } from './support/env';
import { eventually, getJson, postJson } from './support/http';
import { timelineOf, type Timeline } from './support/history';
import { parseWorkingSchedule } from '../domain/workingHours';
import { ALERT_WAITS_FOR_CRM_MS } from '../workflows/processLead';
import {
  dayZone as dayZoneFor,
  nightZone as nightZoneFor,
  phoneOfZone,
  ZONE_COUNTRIES,
} from './support/zones';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const HOURS = '09:00-21:00';
const schedule = parseWorkingSchedule(HOURS);
const RETRY_DELAY_MS = 30 * 60_000;
const callsTo = (phone: string) =>
  stack.emulators.voximplant.state.calls.filter((c) => c.customData?.phone === phone);

beforeAll(async () => {
  env = await startTimeSkippingServer();
  stack = await startStack(env, {
    WORKING_HOURS: HOURS,
    ALLOWED_PHONE_COUNTRIES: ZONE_COUNTRIES,
    CALL_RESULT_TIMEOUT: '10m',
    CALL_RETRY_DELAY: '30m',
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

test('a night lead: one night SMS, no call, then the call when the customer’s window opens', async () => {
  const now = await env.currentTimeMs();
  const { zone, opensAt } = nightZoneFor(now, schedule);
  const phone = phoneOfZone(zone);
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Ночной', phone, timezone: zone });
  expect(res.status).toBe(202);
  const workflowId = String(res.body.workflowId);

  const asleep = await eventually(async () => {
    const { body } = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
    expect(body).toMatchObject({ status: 'WaitingForWorkingHours', nightSmsSent: true });
    return body;
  });
  // The next call is the opening of the customer's own window (not Moscow's).
  expect(Number(asleep.nextCallAt)).toBe(opensAt);
  const sms = stack.emulators.smsru.state.sms.filter((s) => s.to === phone);
  expect(sms).toHaveLength(1);
  expect(sms[0]!.text).toMatch(/перезвоним вам в рабочее время/);

  // The history proves the night so far: the SMS went, one timer reaches the opening (set between
  // the lead's start and the timer's own event, so it fires at the opening, not before and not as a
  // polling loop), and no call was scheduled.
  // (The new-lead alert's short wait for the CRM lead is a timer too; it is not the night's.)
  const nightTimers = (t: Timeline) => t.timers.filter((x) => x.durationMs !== ALERT_WAITS_FOR_CRM_MS);
  const night = await eventually(async () => {
    const t = await timelineOf(env.client, workflowId);
    expect(nightTimers(t)).toHaveLength(1);
    return { ...t, timers: nightTimers(t) };
  });
  expect(night.activities.filter((a) => a.name === 'sendSms')).toEqual([
    expect.objectContaining({ completed: true }),
  ]);
  const [timer] = night.timers;
  expect(timer!.durationMs).toBeGreaterThanOrEqual(opensAt - timer!.at);
  expect(timer!.durationMs).toBeLessThanOrEqual(opensAt - night.startedAt);
  expect(night.activities.map((a) => a.name)).not.toContain('placeRobotCall');

  // Skip to a minute before the window: the timer has not fired, so no call can have been made.
  await env.sleep(opensAt - (await env.currentTimeMs()) - 60_000);
  const before = await timelineOf(env.client, workflowId);
  expect(nightTimers(before)).toEqual([expect.objectContaining({ id: timer!.id, fired: false })]);
  // The Web UI shows the lead asleep until the opening from its start on: the start request set it
  // (search attributes are plain JSON, not encrypted), so the workflow never had to write it.
  const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const atStart = events?.[0]?.workflowExecutionStartedEventAttributes?.searchAttributes?.indexedFields ?? {};
  const json = (field: string) => JSON.parse(Buffer.from(atStart[field]?.data ?? '""').toString()) as unknown;
  expect(json('LeadStatus')).toBe('WaitingForWorkingHours');
  expect(Date.parse(String(json('NextCallAt')))).toBe(opensAt);
  const written = (events ?? []).flatMap((e) =>
    Object.keys(e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {}),
  );
  expect(written).not.toContain('LeadStatus');
  expect(before.activities.map((a) => a.name)).not.toContain('placeRobotCall');
  expect(callsTo(phone)).toHaveLength(0);

  await env.sleep(2 * 60_000);
  await eventually(() => expect(callsTo(phone)).toHaveLength(1));
  const final = await eventually(async () => {
    const { body } = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
    expect(body.status).toBe('Answered');
    return body;
  });
  expect(final.attempts).toBe(1);
  const after = await timelineOf(env.client, workflowId);
  const call = after.activities.find((a) => a.name === 'placeRobotCall')!;
  expect(after.timers.find((t) => t.id === timer!.id)).toMatchObject({ fired: true });
  expect(call.id).toBeGreaterThan(timer!.id);
  // Still only the night SMS plus the confirmation: the night SMS is sent once per lead.
  expect(stack.emulators.smsru.state.sms.filter((s) => s.to === phone).map((s) => s.text)).toEqual([
    expect.stringMatching(/рабочее время/),
    expect.stringMatching(/Ваш заказ принят/),
  ]);
}, 60_000);

test('busy three times then answered: four calls, each retry on a 30-minute timer', async () => {
  const zone = dayZoneFor(await env.currentTimeMs(), schedule);
  const phone = phoneOfZone(zone);
  stack.emulators.voximplant.control.scriptFor(phone, [
    { result: 'busy', delayMs: 5 },
    { result: 'busy', delayMs: 5 },
    { result: 'no_answer', delayMs: 5 },
    { result: 'answered', delayMs: 5 },
  ]);
  const { body } = await postJson(`${stack.url}/api/leads`, { name: 'Дневной', phone, timezone: zone });
  const workflowId = String(body.workflowId);
  const retryTimers = (t: Timeline) => t.timers.filter((timer) => timer.durationMs === RETRY_DELAY_MS);
  for (let n = 1; n <= 3; n++) {
    await eventually(() => expect(callsTo(phone)).toHaveLength(n));
    await eventually(async () =>
      expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.status).toBe(
        'MissedCall',
      ),
    );
    // Nothing more until the retry delay has passed: its timer is set and has not fired.
    const t = await eventually(async () => {
      const timeline = await timelineOf(env.client, workflowId);
      expect(retryTimers(timeline)).toHaveLength(n);
      return timeline;
    });
    expect(retryTimers(t).at(-1)!.fired).toBe(false);
    expect(t.activities.filter((a) => a.name === 'placeRobotCall')).toHaveLength(n);
    expect(callsTo(phone)).toHaveLength(n);
    await env.sleep(31 * 60_000);
  }
  await eventually(async () =>
    expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.status).toBe('Answered'),
  );
  expect(callsTo(phone)).toHaveLength(4);

  // In the lead workflow's own history: each retry waited for its own 30-minute timer to fire.
  const t = await timelineOf(env.client, workflowId);
  const calls = t.activities.filter((a) => a.name === 'placeRobotCall');
  const timers = retryTimers(t);
  expect(calls).toHaveLength(4);
  expect(timers).toHaveLength(3);
  for (let i = 0; i < 3; i++) {
    expect(timers[i]!.fired).toBe(true);
    expect(timers[i]!.id).toBeGreaterThan(calls[i]!.id);
    expect(timers[i]!.id).toBeLessThan(calls[i + 1]!.id);
  }
}, 60_000);
