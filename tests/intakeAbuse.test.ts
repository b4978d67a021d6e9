// What a stranger on the open intake could do with 1.6, tried over HTTP against the real service,
// a real Temporal dev server and the emulators: post from another site, take a real customer's
// ref, have premium-rate numbers rung, silence a customer the shop reports with junk leads. Each
// test failed on 1.6.
import crypto from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';
import { parseLead, leadPolicy } from '../api/intake';
import { legacyLeadWorkflowId, leadWorkflowId } from '../api/leadIds';
import type { LeadInput } from '../workflows/types';

const INTAKE_KEY = `shop-backend-${crypto.randomBytes(16).toString('hex')}`;
const withKey = { authorization: `Bearer ${INTAKE_KEY}` };
const SHOP = 'https://shop.example';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const { callsTo, sessionsFor, smsTo, crmLeadsFor, alertsAbout } = received(() => stack.emulators);

/** A lead 1.6 started before the upgrade, still waiting for its retry. */
let legacy: { phone: string; workflowId: string };

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    INTAKE_API_KEY: INTAKE_KEY,
    ALLOWED_ORIGINS: SHOP,
    PHONE_DAILY_LIMIT: '1',
    // A missed call waits for its retry: the lead stays in progress while the test looks at it.
    CALL_RETRY_DELAY: '1h',
  });
  // Started before any post, so the intake's first count of legacy leads sees it.
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'busy', delayMs: 5 }]);
  const parsed = await parseLead(
    { fields: { name: 'До обновления', phone }, cookies: {}, source: 'api' },
    stack.config,
    Date.now(),
  );
  const workflowId = legacyLeadWorkflowId(phone)!;
  await stack.service.client.workflow.start('processLead', {
    taskQueue: stack.config.temporal.taskQueue,
    workflowId,
    args: [{ ...parsed, policy: leadPolicy(stack.config) } satisfies LeadInput],
  });
  legacy = { phone, workflowId };
  // Visibility lags the start a little; the intake counts what visibility holds.
  await eventually(async () =>
    expect(
      (
        await stack.service.client.workflow.count(
          `WorkflowId STARTS_WITH 'lead-h' AND ExecutionStatus = 'Running'`,
        )
      ).count,
    ).toBe(1),
  );
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

const leadUrl = (ref: string) => `${stack.url}/api/leads/${encodeURIComponent(ref)}`;
const statusOf = async (ref: string) => (await getJson(leadUrl(ref), stack.operator)).body;

function post(body: unknown, headers: Record<string, string> = {}) {
  return postJson(`${stack.url}/api/leads`, body, headers);
}

async function formPost(fields: Record<string, string>, origin: string | undefined): Promise<Response> {
  return fetch(`${stack.url}/api/leads`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'text/html',
      ...(origin !== undefined ? { origin } : {}),
    },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  });
}

describe('a post from another site', () => {
  test('a plain form on a stranger’s page (Origin set, not the shop’s): 403 with the reason, no lead', async () => {
    const phone = uniquePhone();
    for (const origin of ['https://evil.example', 'null', 'https://shop.example.evil.example']) {
      const res = await formPost({ name: 'Жертва', phone }, origin);
      expect({ origin, status: res.status }).toEqual({ origin, status: 403 });
      const body = (await res.json()) as { error: string; details: Array<{ field: string }> };
      expect(body.error).toMatch(/shop's own pages/);
      expect(body.details[0]!.field).toBe('origin');
    }
    expect((await getJson(leadUrl(phone), stack.operator)).status).toBe(404);
    // The same customer from the shop's page: started, so none of the refused posts had started it.
    const fromShop = await formPost({ name: 'Жертва', phone }, SHOP);
    expect(fromShop.status).toBe(303);
    expect(fromShop.headers.get('location')).toBe('/?sent=started');
    await eventually(() => expect(crmLeadsFor(phone)).toHaveLength(1));
  });

  test('refused before its body is read: an oversized body from another site is 403, not 413', async () => {
    const res = await fetch(`${stack.url}/api/leads`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
      body: JSON.stringify({ name: 'x', phone: uniquePhone(), comment: 'y'.repeat(200_000) }),
    });
    expect(res.status).toBe(403);
  });

  test('the service’s own form, the shop’s origins and posts without Origin are taken', async () => {
    for (const headers of [{ origin: stack.url }, { origin: SHOP }, {}] as Array<Record<string, string>>) {
      const res = await post({ name: 'Свой', phone: uniquePhone() }, headers);
      expect({ headers, status: res.status }).toEqual({ headers, status: 202 });
    }
  });
});

describe('a ref chosen by a stranger', () => {
  test('a stranger’s lead posted under a customer’s phone as its ref leaves the customer’s own lead started', async () => {
    const customer = uniquePhone();
    const stranger = uniquePhone();
    stack.emulators.voximplant.control.scriptFor(stranger, [{ result: 'busy', delayMs: 5 }]);
    const junk = await post({ name: 'Чужой', phone: stranger, ref: customer });
    // Deduplicated by the stranger's own number; the ref they sent is kept aside.
    expect(junk).toMatchObject({ status: 202, body: { ref: stranger, status: 'started' } });
    await eventually(async () => expect(await statusOf(stranger)).toMatchObject({ status: 'MissedCall' }));
    expect(await statusOf(stranger)).toMatchObject({ clientRef: customer });

    const real = await post({ name: 'Настоящий', phone: customer });
    expect(real).toMatchObject({ status: 202, body: { ref: customer, status: 'started' } });
    await eventually(() => expect(callsTo(customer)).toHaveLength(1));
    // The CRM lead of the stranger's post names the ref it sent.
    await eventually(() =>
      expect(String(crmLeadsFor(stranger)[0]?.COMMENTS)).toContain(`номер заявки на сайте: ${customer}`),
    );
  });

  test('a shop’s order id taken by a stranger first: the shop’s own post of that order is started', async () => {
    const order = `order-${crypto.randomBytes(4).toString('hex')}`;
    const stranger = uniquePhone();
    const customer = uniquePhone();
    expect(await post({ name: 'Чужой', phone: stranger, ref: order })).toMatchObject({
      status: 202,
      body: { ref: stranger },
    });
    expect((await getJson(leadUrl(order), stack.operator)).status).toBe(404);
    const shops = await post({ name: 'Покупатель', phone: customer, ref: order }, withKey);
    expect(shops).toMatchObject({ status: 202, body: { ref: order, status: 'started' } });
    await eventually(() => expect(callsTo(customer)).toHaveLength(1));
    // The shop's ref still deduplicates the shop's own posts.
    const again = await post({ name: 'Покупатель', phone: customer, ref: order }, withKey);
    expect(again).toMatchObject({ status: 200, body: { ref: order, status: 'duplicate' } });
  });
});

describe('numbers that cost money', () => {
  test.each([
    ['premium-rate', '7809'],
    ['premium-rate', '7803'],
    ['toll-free', '7800'],
  ])(
    'a Russian %s number (+%s…): recorded and alerted as not_a_personal_number, neither called nor texted',
    async (_kind, prefix) => {
      const digits = `${prefix}${uniquePhone().slice(-7)}`;
      const res = await post({ name: 'Платный', phone: digits }, { origin: stack.url });
      expect(res).toMatchObject({ status: 202, body: { ref: digits, status: 'started' } });
      const state = await eventually(async () => {
        const body = await statusOf(digits);
        expect(body).toMatchObject({ execution: 'COMPLETED', status: 'PhoneNotDialable' });
        return body;
      });
      expect(state).toMatchObject({ notCalledReason: 'not_a_personal_number', attempts: 0 });
      const history = (state.history as Array<{ what: string }>).map((h) => h.what).join('\n');
      expect(history).toContain('номер не личный');
      await eventually(() => expect(crmLeadsFor(digits)).toHaveLength(1));
      await eventually(() => expect(alertsAbout(digits)).not.toHaveLength(0));
      expect(sessionsFor(digits)).toHaveLength(0);
      expect(smsTo(digits)).toHaveLength(0);
    },
  );
});

describe("the shop's own leads and the daily limit", () => {
  test('a stranger’s junk leads use up a number’s day; the lead the shop reports with its key is still called', async () => {
    const phone = uniquePhone();
    // PHONE_DAILY_LIMIT=1 here: the stranger's first lead takes the day, their second is refused.
    expect(await post({ name: 'Мусор', phone })).toMatchObject({ status: 202 });
    await eventually(async () => expect(await statusOf(phone)).toMatchObject({ execution: 'COMPLETED' }));
    expect(await post({ name: 'Мусор', phone })).toMatchObject({ status: 202 });
    await eventually(async () =>
      expect(await statusOf(phone)).toMatchObject({
        execution: 'COMPLETED',
        notCalledReason: 'daily_limit_reached',
      }),
    );
    expect(callsTo(phone)).toHaveLength(1);

    const ref = `shop-${phone}`;
    expect(await post({ name: 'Клиент', phone, ref }, withKey)).toMatchObject({ status: 202, body: { ref } });
    await eventually(() => expect(callsTo(phone)).toHaveLength(2));
    expect(await statusOf(ref)).not.toHaveProperty('notCalledReason');
  });
});

describe('ids derived from phone numbers', () => {
  test('are keyed: the workflow id is neither the number nor its bare hash', async () => {
    const phone = uniquePhone();
    const res = await post({ name: 'Ключ', phone });
    const workflowId = String(res.body.workflowId);
    expect(workflowId).toBe(leadWorkflowId(phone, stack.config.phoneIdKey));
    expect(workflowId).not.toContain(phone);
    expect(workflowId).not.toBe(legacyLeadWorkflowId(phone));
    expect(workflowId.slice('lead-k'.length)).not.toBe(
      crypto.createHash('sha256').update(phone).digest('hex').slice(0, 24),
    );
  });

  test('a lead 1.6 started under the bare hash is still found, acted on, and a repeated post is its duplicate', async () => {
    await eventually(async () =>
      expect(await statusOf(legacy.phone)).toMatchObject({ status: 'MissedCall' }),
    );
    expect((await getJson(leadUrl(legacy.phone), stack.operator)).body).toMatchObject({
      workflowId: legacy.workflowId,
    });
    expect(await post({ name: 'Повтор', phone: legacy.phone })).toMatchObject({
      status: 200,
      body: { status: 'duplicate', workflowId: legacy.workflowId },
    });
    const handled = await postJson(`${leadUrl(legacy.phone)}/handled`, { by: 'test' }, stack.operator);
    expect(handled).toMatchObject({
      status: 200,
      body: { status: 'Handled', workflowId: legacy.workflowId },
    });
    expect(callsTo(legacy.phone)).toHaveLength(1);
  });
});
