// Phishing under the shop's name, against the real service on a real Temporal dev server: a
// stranger posts a lead with a victim's number and a sentence with a link as the "name". Neither
// the night SMS nor the robot's call carries it; a real customer's name (hyphen, typographic
// apostrophe) still does.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';
import { RUSSIAN_ZONES } from './support/zones';
import { isWorkingTime, nextWorkingTime, parseWorkingSchedule } from '../domain/workingHours';

const PHISHING = 'Order cancelled, refund here: https://evil.example/x';
const CUSTOMER = 'Анна-Мария О’Нил';
const TTS = 'Здравствуйте, {name}! Ваш заказ принят. Менеджер перезвонит вам.';

const HOUR = 3_600_000;

/**
 * Working hours under which, whatever the real time of the run, one Russian zone is in its working
 * day for the next hour and another in its night for the next hour: a night lead and a day lead
 * in one stack.
 */
function dayAndNight(now: number): { hours: string; day: string; night: string } {
  for (let start = 0; start < 24; start += 1) {
    for (let end = start + 1; end <= 24; end += 1) {
      const hours = `${String(start).padStart(2, '0')}:00-${String(end).padStart(2, '0')}:00`;
      const schedule = parseWorkingSchedule(hours);
      const day = RUSSIAN_ZONES.find(
        (z) => isWorkingTime(now, z, schedule) && isWorkingTime(now + HOUR, z, schedule),
      );
      const night = RUSSIAN_ZONES.find(
        (z) => !isWorkingTime(now, z, schedule) && nextWorkingTime(now, z, schedule) - now > HOUR,
      );
      if (day && night) return { hours, day, night };
    }
  }
  throw new Error('no working hours give a Russian zone in its day and another in its night');
}

let env: TestWorkflowEnvironment;
let stack: TestStack;
let zones: ReturnType<typeof dayAndNight>;
const { sessionsFor, smsTo } = received(() => stack.emulators);

beforeAll(async () => {
  env = await startDevServer();
  zones = dayAndNight(Date.now());
  stack = await startStack(env, { WORKING_HOURS: zones.hours, VOXIMPLANT_TTS_TEXT: TTS });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

const statusOf = async (ref: string) =>
  (await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator)).body;

/** Posts a lead as a stranger's page would (no intake key); its ref is the one the intake gave. */
async function post(name: string, timezone: string): Promise<{ phone: string; ref: string }> {
  const phone = uniquePhone();
  const res = await postJson(`${stack.url}/api/leads`, { name, phone, timezone });
  expect(res.status).toBe(202);
  return { phone, ref: String(res.body.ref) };
}

async function nightSmsOf(name: string): Promise<string> {
  const lead = await post(name, zones.night);
  await eventually(async () =>
    expect(await statusOf(lead.ref)).toMatchObject({ status: 'WaitingForWorkingHours', nightSmsSent: true }),
  );
  const sms = smsTo(lead.phone);
  expect(sms).toHaveLength(1);
  return sms[0]!.text;
}

/** The custom data of the lead's one scenario, and the confirmation SMS sent once it answered. */
async function dayCallOf(name: string): Promise<{ customData: Record<string, unknown>; sms: string }> {
  const lead = await post(name, zones.day);
  await eventually(async () => expect((await statusOf(lead.ref)).status).toBe('Answered'));
  const sessions = sessionsFor(lead.phone);
  expect(sessions).toHaveLength(1);
  const sms = await eventually(() => {
    const texts = smsTo(lead.phone);
    expect(texts).toHaveLength(1);
    return texts[0]!.text;
  });
  return { customData: sessions[0]!.customData!, sms };
}

test('at night, a stranger’s sentence as the name: the night SMS goes without it', async () => {
  const text = await nightSmsOf(PHISHING);
  expect(text).not.toContain('evil.example');
  expect(text).not.toMatch(/https?:|refund|Order/i);
  expect(text.startsWith('Здравствуйте!')).toBe(true);
  expect(text).toBe(`Здравствуйте! Ваш заказ принят. Мы перезвоним вам в рабочее время (${zones.hours}).`);
});

test('by day, the same name: the scenario gets an empty name and a text to say without it', async () => {
  const { customData, sms } = await dayCallOf(PHISHING);
  expect(customData.name).toBe('');
  expect(customData.ttsText).toBe('Здравствуйте! Ваш заказ принят. Менеджер перезвонит вам.');
  // Nowhere in what the scenario receives (it is also what VoxImplant's call history would keep).
  expect(JSON.stringify(customData)).not.toMatch(/evil\.example|refund/);
  expect(sms).toBe('Здравствуйте! Ваш заказ принят и передан менеджеру. Спасибо!');
});

test('a real name with a hyphen and a typographic apostrophe is texted and said', async () => {
  expect(await nightSmsOf(CUSTOMER)).toBe(
    `Здравствуйте, ${CUSTOMER}! Ваш заказ принят. Мы перезвоним вам в рабочее время (${zones.hours}).`,
  );
  const { customData, sms } = await dayCallOf(CUSTOMER);
  expect(customData).toMatchObject({
    name: CUSTOMER,
    ttsText: `Здравствуйте, ${CUSTOMER}! Ваш заказ принят. Менеджер перезвонит вам.`,
  });
  expect(sms).toBe(`Здравствуйте, ${CUSTOMER}! Ваш заказ принят и передан менеджеру. Спасибо!`);
});
