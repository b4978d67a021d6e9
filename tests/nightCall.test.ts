// Night rules on the Java time-skipping test server: hours pass in about a second of wall time.
// A lead that arrives at night in the customer's own zone gets one night SMS and no call, sleeps on
// one timer, and is called when that zone's working window opens.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startStack, startTimeSkippingServer, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { parseWorkingSchedule } from '../domain/workingHours';
import { dayZone as dayZoneFor, nightZone as nightZoneFor } from './support/zones';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const HOURS = '09:00-21:00';
const schedule = parseWorkingSchedule(HOURS);

beforeAll(async () => {
  env = await startTimeSkippingServer();
  stack = await startStack(env, {
    WORKING_HOURS: HOURS,
    CALL_RESULT_TIMEOUT: '10m',
    CALL_RETRY_DELAY: '30m',
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

test('a night lead: one night SMS, no call, then the call when the customer’s window opens', async () => {
  const phone = uniquePhone();
  const now = await env.currentTimeMs();
  const { zone, opensAt } = nightZoneFor(now, schedule);
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Ночной', phone, timezone: zone });
  expect(res.status).toBe(202);

  const asleep = await eventually(async () => {
    const { body } = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
    expect(body).toMatchObject({ status: 'WaitingForWorkingHours', nightSmsSent: true });
    return body;
  });
  // One timer to the opening of the customer's own window (not Moscow's, not a polling loop).
  expect(Math.abs(Number(asleep.nextCallAt) - opensAt)).toBeLessThan(60_000);
  const sms = stack.emulators.smsru.state.sms.filter((s) => s.to === phone);
  expect(sms).toHaveLength(1);
  expect(sms[0]!.text).toMatch(/перезвоним вам в рабочее время/);
  expect(stack.emulators.voximplant.state.calls.filter((c) => c.customData?.phone === phone)).toHaveLength(0);

  // Skip to a minute before the window: still no call.
  await env.sleep(opensAt - (await env.currentTimeMs()) - 60_000);
  expect(stack.emulators.voximplant.state.calls.filter((c) => c.customData?.phone === phone)).toHaveLength(0);

  await env.sleep(2 * 60_000);
  await eventually(() =>
    expect(stack.emulators.voximplant.state.calls.filter((c) => c.customData?.phone === phone)).toHaveLength(
      1,
    ),
  );
  const final = await eventually(async () => {
    const { body } = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
    expect(body.status).toBe('Answered');
    return body;
  });
  expect(final.attempts).toBe(1);
  // Still only the night SMS plus the confirmation: the night SMS is sent once per lead.
  expect(stack.emulators.smsru.state.sms.filter((s) => s.to === phone).map((s) => s.text)).toEqual([
    expect.stringMatching(/рабочее время/),
    expect.stringMatching(/Ваш заказ принят/),
  ]);
}, 60_000);

test('busy three times then answered: four calls 30 minutes apart in workflow time', async () => {
  const phone = uniquePhone();
  const zone = dayZoneFor(await env.currentTimeMs(), schedule);
  stack.emulators.voximplant.control.scriptFor(phone, [
    { result: 'busy', delayMs: 5 },
    { result: 'busy', delayMs: 5 },
    { result: 'no_answer', delayMs: 5 },
    { result: 'answered', delayMs: 5 },
  ]);
  const { body } = await postJson(`${stack.url}/api/leads`, { name: 'Дневной', phone, timezone: zone });
  const calls = () => stack.emulators.voximplant.state.calls.filter((c) => c.customData?.phone === phone);
  for (let n = 1; n <= 3; n++) {
    await eventually(() => expect(calls()).toHaveLength(n));
    await eventually(async () =>
      expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.status).toBe(
        'MissedCall',
      ),
    );
    expect(calls()).toHaveLength(n); // nothing more until the retry delay has passed
    await env.sleep(31 * 60_000);
  }
  await eventually(async () =>
    expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.status).toBe('Answered'),
  );
  expect(calls()).toHaveLength(4);

  // The spacing, read from the lead workflow’s own history (server time, not wall time).
  const history = await env.client.workflow.getHandle(String(body.workflowId)).fetchHistory();
  const scheduled = (history.events ?? [])
    .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'placeRobotCall')
    .map((e) => Number(e.eventTime!.seconds) * 1000);
  expect(scheduled).toHaveLength(4);
  for (let i = 1; i < scheduled.length; i++) {
    expect(scheduled[i]! - scheduled[i - 1]!).toBeGreaterThanOrEqual(30 * 60_000);
    expect(scheduled[i]! - scheduled[i - 1]!).toBeLessThan(32 * 60_000);
  }
}, 60_000);
