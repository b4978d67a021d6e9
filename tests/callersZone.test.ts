// Whose night decides: a Russian number is called in Russia's hours whatever zone its post names.
// On the Java time-skipping server, so the test can stand at Moscow's morning and at its night.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { formatInTimeZone } from 'date-fns-tz';
import { startStack, startTimeSkippingServer, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';
import { nextWorkingTime, parseWorkingSchedule } from '../domain/workingHours';

const HOURS = '09:00-21:00';
let env: TestWorkflowEnvironment;
let stack: TestStack;
const { sessionsFor, smsTo } = received(() => stack.emulators);

beforeAll(async () => {
  env = await startTimeSkippingServer();
  stack = await startStack(env, { WORKING_HOURS: HOURS, DEFAULT_TIMEZONE: 'Europe/Moscow' });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

/** Skips the server's clock to the next quarter past `hour` o'clock in Moscow. */
async function skipToMoscow(hour: number): Promise<number> {
  const now = await env.currentTimeMs();
  let at = Math.ceil(now / 900_000) * 900_000;
  while (formatInTimeZone(at, 'Europe/Moscow', 'HH:mm') !== `${String(hour).padStart(2, '0')}:15`) {
    at += 900_000;
  }
  await env.sleep(at - now);
  return at;
}

const statusOf = async (ref: string) => (await getJson(`${stack.url}/api/leads/${ref}`, stack.operator)).body;

test('a Russian number posted with a zone where it is night is called in Moscow’s day', async () => {
  await skipToMoscow(10); // 21:15 in Honolulu: its night
  const phone = uniquePhone();
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Утро', phone, timezone: 'Pacific/Honolulu' });
  expect(res.status).toBe(202);
  await eventually(() => expect(sessionsFor(phone)).toHaveLength(1));
  const state = await statusOf(phone);
  expect(state.nightSmsSent).toBe(false);
  const history = (state.history as Array<{ what: string }>).map((h) => h.what).join('\n');
  expect(history).toContain('часовой пояс "Pacific/Honolulu" не страны номера (RU): взят Europe/Moscow');
});

test('a Russian number posted with a zone where it is day is not called in Moscow’s night', async () => {
  const at = await skipToMoscow(23); // 10:15 in Honolulu: its working day
  const phone = uniquePhone();
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Ночь', phone, timezone: 'Pacific/Honolulu' });
  expect(res.status).toBe(202);
  const asleep = await eventually(async () => {
    const body = await statusOf(phone);
    expect(body).toMatchObject({ status: 'WaitingForWorkingHours', nightSmsSent: true });
    return body;
  });
  expect(Number(asleep.nextCallAt)).toBe(nextWorkingTime(at, 'Europe/Moscow', parseWorkingSchedule(HOURS)));
  expect(smsTo(phone)).toHaveLength(1);
  expect(sessionsFor(phone)).toHaveLength(0);
});
