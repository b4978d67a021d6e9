// Who may do what, and what a stranger can make the shop pay for, against the real service on a
// real Temporal dev server: the operator token on every operator route (bearer and the login
// cookie), numbers of other countries and the daily limit per number (recorded and alerted, never
// called or texted), and the intake key that lifts the per-IP limit for the shop's own backend.
import crypto from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';
import { PHONE_SLOT_WORKFLOW } from '../api/phoneLimit';
import { phoneSlotId } from '../api/leadIds';
import { signResultToken } from '../domain/resultToken';

const INTAKE_KEY = `shop-backend-${crypto.randomBytes(12).toString('hex')}`;
const COREZOID_KEY = 'corezoid-key-security';
const withKey = { authorization: `Bearer ${INTAKE_KEY}` };

let env: TestWorkflowEnvironment;
let stack: TestStack;

const { callsTo, smsTo, crmLeadsFor, alertsAbout } = received(() => stack.emulators);

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    INTAKE_API_KEY: INTAKE_KEY,
    COREZOID_PUBLIC_KEY: COREZOID_KEY,
    INTAKE_RATE_LIMIT_PER_MINUTE: '120',
    // A missed call waits for its retry long enough for the operator to act on it.
    CALL_RETRY_DELAY: '1h',
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

/** stl_refusals_total{rule} of the service now. */
async function refusals(rule: string): Promise<number> {
  const text = await (await fetch(stack.metricsUrl)).text();
  return Number(new RegExp(`^stl_refusals_total\\{rule="${rule}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}

const lead = (ref: string) => `${stack.url}/api/leads/${encodeURIComponent(ref)}`;
const statusOf = async (ref: string) => (await getJson(lead(ref), stack.operator)).body;
async function settled(ref: string): Promise<Record<string, unknown>> {
  return eventually(async () => {
    const body = await statusOf(ref);
    expect(body.execution).toBe('COMPLETED');
    return body;
  });
}

/** A lead whose first call is busy: it waits in MissedCall, where every operator action applies. */
async function missedCallLead(): Promise<{ ref: string; phone: string }> {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [
    { result: 'busy', delayMs: 5 },
    { result: 'busy', delayMs: 5 },
  ]);
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Оператор Тест', phone }, withKey);
  expect(res.status).toBe(202);
  const ref = String(res.body.ref);
  await eventually(async () => expect((await statusOf(ref)).status).toBe('MissedCall'));
  return { ref, phone };
}

/**
 * A lead through the Corezoid path, whose key lets the shop's snippet choose the ref (a browser's
 * ref would be replaced by the phone) without lifting the daily limit, as the intake key does.
 */
async function viaSnippet(on: TestStack, phone: string, ref: string): Promise<number> {
  const res = await fetch(`${on.url}/api/1/json/public/31754/${COREZOID_KEY}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: JSON.stringify({
      ops: [{ ref, type: 'create', obj: 'task', data: { post: { name: 'Повтор', phone } } }],
    }),
  });
  const body = (await res.json()) as { ops?: Array<{ proc: string }> };
  return res.status === 200 && body.ops?.[0]?.proc === 'ok' ? 202 : res.status;
}

const WRONG = { authorization: 'Bearer not-the-operator-token' };

async function refusedBoth(method: 'GET' | 'POST', url: string): Promise<void> {
  for (const headers of [{}, WRONG]) {
    const res = await fetch(url, {
      method,
      headers: method === 'POST' ? { ...headers, 'content-type': 'application/json' } : headers,
      body: method === 'POST' ? '{}' : undefined,
      redirect: 'manual',
    });
    expect({ url, headers, status: res.status }).toEqual({ url, headers, status: 401 });
    expect(res.headers.get('www-authenticate') ?? 'login page').toMatch(/Bearer realm="operator"|login page/);
  }
}

describe('operator routes', () => {
  test('lead status and each action: 401 without the token and with a wrong one, done with it', async () => {
    const refusedBefore = await refusals('operator_auth');
    const a = await missedCallLead();
    const b = await missedCallLead();

    await refusedBoth('GET', lead(a.ref));
    const status = await getJson(lead(a.ref), stack.operator);
    expect(status).toMatchObject({ status: 200, body: { ref: a.ref, status: 'MissedCall', attempts: 1 } });

    await refusedBoth('POST', `${lead(a.ref)}/call-now`);
    expect(callsTo(a.phone)).toHaveLength(1);
    expect((await postJson(`${lead(a.ref)}/call-now`, {}, stack.operator)).status).toBe(200);
    await eventually(() => expect(callsTo(a.phone)).toHaveLength(2));
    await eventually(async () => expect((await statusOf(a.ref)).status).toBe('MissedCall'));

    await refusedBoth('POST', `${lead(a.ref)}/handled`);
    expect((await statusOf(a.ref)).status).toBe('MissedCall');
    const handled = await postJson(`${lead(a.ref)}/handled`, { by: 'Мария' }, stack.operator);
    expect(handled).toMatchObject({ status: 200 });
    await eventually(async () => expect((await statusOf(a.ref)).status).toBe('Handled'));

    await refusedBoth('POST', `${lead(b.ref)}/cancel`);
    expect((await statusOf(b.ref)).status).toBe('MissedCall');
    expect((await postJson(`${lead(b.ref)}/cancel`, {}, stack.operator)).status).toBe(200);
    await eventually(async () => expect((await statusOf(b.ref)).status).toBe('Cancelled'));
    expect(callsTo(b.phone)).toHaveLength(1);

    // An unknown ref is a 404 only for the operator: a stranger cannot tell which numbers left a lead.
    await refusedBoth('GET', lead(uniquePhone()));
    expect((await getJson(lead(uniquePhone()), stack.operator)).status).toBe(404);
    expect(await refusals('operator_auth')).toBe(refusedBefore + 10);
  });

  test.each(['cancel', 'handled'])(
    'an operator’s %s answered 200 is final for the scenario too: a claim of the next attempt after it gets 409',
    async (action) => {
      const { ref } = await missedCallLead();
      const { workflowId } = (await statusOf(ref)) as { workflowId: string };
      const { runId } = await stack.service.client.workflow.getHandle(workflowId).describe();
      expect((await postJson(`${lead(ref)}/${action}`, { by: 'test' }, stack.operator)).status).toBe(200);
      // Whatever the lead's workflow has taken by now: the API sealed attempts 1 and 2 before it
      // told the lead, so a scenario of a StartScenarios in flight dials nobody.
      const now = Date.now();
      const token = signResultToken(
        {
          wf: workflowId,
          run: runId,
          a: 2,
          exp: Math.floor(now / 1000) + 600,
          du: now + 3_600_000,
          cu: now + 600_000,
        },
        stack.config.voximplant.resultSecret,
      );
      expect(await postJson(`${stack.url}/api/voximplant/claim`, { token, sessionId: 5 })).toMatchObject({
        status: 409,
        body: { error: 'call attempt 2 is not awaited' },
      });
    },
  );

  test('the dashboard and its numbers: 401 without the token and with a wrong one, shown with it', async () => {
    await refusedBoth('GET', `${stack.url}/api/dashboard`);
    const numbers = await getJson(`${stack.url}/api/dashboard`, stack.operator);
    expect(numbers.status).toBe(200);
    expect(numbers.body.total).toMatchObject({ leads: expect.any(Number) });

    await refusedBoth('GET', `${stack.url}/dashboard`);
    const login = await fetch(`${stack.url}/dashboard`);
    expect(login.status).toBe(401);
    expect(login.headers.get('content-type')).toMatch(/^text\/html/);
    const loginPage = await login.text();
    expect(loginPage).toContain('name="token"');
    expect(loginPage).not.toContain('total-leads');
    const page = await fetch(`${stack.url}/dashboard`, { headers: stack.operator });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('id="total-leads"');
  });

  test('a person logs in once: an HttpOnly, SameSite=Strict session cookie opens every operator route', async () => {
    const login = (token: string) =>
      fetch(`${stack.url}/operator/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, next: '/dashboard' }).toString(),
        redirect: 'manual',
      });
    const wrong = await login('not-the-operator-token');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect(await wrong.text()).toContain('Неверный токен оператора');

    const ok = await login(stack.operatorToken);
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/dashboard');
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^stl_operator=[^;]+;/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=Strict/);
    expect(setCookie).not.toContain(stack.operatorToken);
    const cookie = { cookie: setCookie.split(';')[0]! };

    expect((await fetch(`${stack.url}/dashboard`, { headers: cookie })).status).toBe(200);
    expect((await getJson(`${stack.url}/api/dashboard`, cookie)).status).toBe(200);
    const { ref } = await missedCallLead();
    expect((await getJson(lead(ref), cookie)).status).toBe(200);
    expect((await postJson(`${lead(ref)}/cancel`, {}, cookie)).status).toBe(200);

    // A cookie made up or altered by hand opens nothing; a wrong bearer is not rescued by a cookie.
    const [expires, mac] = cookie.cookie.slice('stl_operator='.length).split('.');
    const forged = { cookie: `stl_operator=${Number(expires) + 1}.${mac}` };
    expect((await getJson(`${stack.url}/api/dashboard`, forged)).status).toBe(401);
    expect((await getJson(`${stack.url}/api/dashboard`, { ...cookie, ...WRONG })).status).toBe(401);
    // A login never sends the browser to another site.
    const away = await fetch(`${stack.url}/operator/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: stack.operatorToken, next: '//evil.example/x' }).toString(),
      redirect: 'manual',
    });
    expect(away.headers.get('location')).toBe('/dashboard');

    const logout = await fetch(`${stack.url}/operator/logout`, {
      method: 'POST',
      headers: cookie,
      redirect: 'manual',
    });
    expect(logout.headers.get('set-cookie')).toMatch(/^stl_operator=;.*Expires=Thu, 01 Jan 1970/);
  });

  test('the public routes need no operator token', async () => {
    expect((await fetch(`${stack.url}/`)).status).toBe(200);
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
    // /metrics is not on the API port at all (tests/edgeSecurity.test.ts has its rules).
    expect((await fetch(`${stack.url}/metrics`)).status).toBe(404);
    const css = await fetch(`${stack.url}/assets/page.css`);
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    // The result endpoint keeps its own proof, the signed token.
    expect(
      (await postJson(`${stack.url}/api/voximplant/result`, { token: 'x', result: 'answered' })).status,
    ).toBe(401);
  });
});

describe('numbers that are not called', () => {
  test.each([
    // Twelve digits: the original process's own rule already keeps it from being dialled.
    ['a UK personal number', '+44 7012 345678', '447012345678', 'phone_too_long', 'телефон слишком длинный'],
    // Eleven digits after "+8": not to be taken for a Russian number with its trunk prefix 8.
    [
      'an international network',
      '+882 16 123456',
      '88216123456',
      'country_not_allowed',
      'международной сети',
    ],
    ['a Cuban mobile', '+53 5 1234567', '5351234567', 'country_not_allowed', 'страны CU'],
  ])(
    '%s (%s): 202, a CRM lead and an alert, zero calls and zero SMS',
    async (_what, typed, digits, reason, why) => {
      const countedBefore = await refusals(reason);
      const res = await postJson(`${stack.url}/api/leads`, { name: 'Иностранец', phone: typed }, withKey);
      expect(res).toMatchObject({ status: 202, body: { ref: digits, status: 'started' } });
      const state = await settled(digits);
      expect(state).toMatchObject({
        status: 'PhoneNotDialable',
        notCalledReason: reason,
        attempts: 0,
      });
      const history = (state.history as Array<{ what: string }>).map((h) => h.what).join('\n');
      expect(history).toContain(why);

      await eventually(() => expect(crmLeadsFor(digits)).toHaveLength(1));
      await eventually(() => expect(alertsAbout(digits)).not.toHaveLength(0));
      expect(callsTo(digits)).toHaveLength(0);
      expect(smsTo(digits)).toHaveLength(0);
      // The too-long rule is the original process's and has no refusal count of its own.
      expect(await refusals(reason)).toBe(countedBefore + (reason === 'country_not_allowed' ? 1 : 0));
    },
  );

  test('four leads of one number in a day under four refs of the shop’s snippet, through two API processes: three are called, the fourth is not', async () => {
    // A second API process of its own (another app, another rate limiter, no shared memory) on the
    // same Temporal: the limit must hold across both.
    const other = await startStack(
      env,
      {
        INTAKE_API_KEY: INTAKE_KEY,
        COREZOID_PUBLIC_KEY: COREZOID_KEY,
        PHONE_ID_KEY: stack.config.phoneIdKey,
        ENCRYPTION_KEYS: `local-1:${stack.config.encryption.keys['local-1']!.toString('base64')}`,
        VOXIMPLANT_RESULT_SECRET: stack.config.voximplant.resultSecret,
        OPERATOR_TOKEN: stack.operatorToken,
      },
      { role: 'api' },
    );
    try {
      const phone = uniquePhone();
      const refs = [1, 2, 3, 4].map((i) => `order-${phone}-${i}`);
      const answers = await Promise.all(refs.map((ref, i) => viaSnippet(i % 2 ? other : stack, phone, ref)));
      expect(answers).toEqual([202, 202, 202, 202]);
      const states = await Promise.all(refs.map(settled));
      const called = states.filter((s) => s.status === 'Answered');
      const refused = states.filter((s) => s.status === 'PhoneNotDialable');
      expect([called.length, refused.length]).toEqual([3, 1]);
      expect(refused[0]).toMatchObject({ notCalledReason: 'daily_limit_reached', attempts: 0 });
      expect(JSON.stringify(refused[0]!.history)).toContain('(PHONE_DAILY_LIMIT=3) исчерпан');
      expect(callsTo(phone)).toHaveLength(3);
      expect(smsTo(phone)).toHaveLength(3);
      expect(crmLeadsFor(phone)).toHaveLength(4);

      // A fifth, later the same day: still not called.
      expect(await viaSnippet(other, phone, `order-${phone}-5`)).toBe(202);
      expect(await settled(`order-${phone}-5`)).toMatchObject({ notCalledReason: 'daily_limit_reached' });
      expect(callsTo(phone)).toHaveLength(3);

      // The shop's backend, with its key, reports the same customer: it is the shop's own lead.
      const shops = await postJson(
        `${other.url}/api/leads`,
        { name: 'Повтор', phone, ref: `order-${phone}-6` },
        withKey,
      );
      expect(shops.status).toBe(202);
      expect(await settled(`order-${phone}-6`)).toMatchObject({ status: 'Answered' });
      expect(callsTo(phone)).toHaveLength(4);
    } finally {
      await other.close();
    }
  });

  test('a day later the number may be called again: its slots close by themselves', async () => {
    const phone = uniquePhone();
    const windowMs = stack.config.phoneRules.windowMs;
    // The service's own config object: a "day" of eight seconds for this test only.
    stack.config.phoneRules.windowMs = 8_000;
    try {
      const refs = [1, 2, 3, 4].map((i) => `day-${phone}-${i}`);
      const answers = await Promise.all(refs.map((ref) => viaSnippet(stack, phone, ref)));
      expect(answers).toEqual([202, 202, 202, 202]);
      const states = await Promise.all(refs.map(settled));
      expect(states.filter((s) => s.notCalledReason === 'daily_limit_reached')).toHaveLength(1);
      expect(callsTo(phone)).toHaveLength(3);
      const slots = [1, 2, 3].map((k) =>
        stack.service.client.workflow.getHandle(phoneSlotId(phone, k, stack.config.phoneIdKey)),
      );
      const described = await Promise.all(slots.map((h) => h.describe()));
      expect(described.map((d) => d.type)).toEqual([
        PHONE_SLOT_WORKFLOW,
        PHONE_SLOT_WORKFLOW,
        PHONE_SLOT_WORKFLOW,
      ]);
      // Neither the id nor the memo of a slot carries the number.
      expect(described[0]!.workflowId).not.toContain(phone.slice(1));
      expect(JSON.stringify(described[0]!.memo)).not.toContain(phone.slice(1));
      // The server closes each slot when its day is over, without any worker.
      await eventually(async () => {
        const now = await Promise.all(slots.map((h) => h.describe()));
        expect(now.map((d) => d.status.name)).toEqual(['TIMED_OUT', 'TIMED_OUT', 'TIMED_OUT']);
      }, 30_000);
      expect(await viaSnippet(stack, phone, `day-${phone}-5`)).toBe(202);
      expect(await settled(`day-${phone}-5`)).toMatchObject({ status: 'Answered' });
      expect(callsTo(phone)).toHaveLength(4);
    } finally {
      stack.config.phoneRules.windowMs = windowMs;
    }
  });
});

describe('the intake key', () => {
  test('150 leads in a burst from one backend: all accepted with the key; without it the per-IP limit applies', async () => {
    const burst = async (headers: Record<string, string>, phoneOf: (i: number) => string, tag: string) => {
      const statuses: number[] = [];
      // Ten at a time: what "150 leads in 15 seconds" is, without waiting the 15 seconds.
      for (let i = 0; i < 150; i += 10) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, (_, j) =>
            postJson(
              `${stack.url}/api/leads`,
              { name: 'Промо', phone: phoneOf(i + j), ref: `${tag}-${i + j}` },
              headers,
            ),
          ),
        );
        statuses.push(...batch.map((a) => a.status));
      }
      return statuses;
    };
    const tag = Date.now().toString(36);
    const dailyLimitBefore = await refusals('daily_limit_reached');
    const keyed = await burst(withKey, () => uniquePhone(), `promo-${tag}`);
    expect(keyed.filter((s) => s === 202)).toHaveLength(150);

    // A wrong key is refused, not quietly taken for a browser (and counts toward the per-IP limit).
    const wrong = await postJson(
      `${stack.url}/api/leads`,
      { name: 'Промо', phone: uniquePhone() },
      { authorization: 'Bearer wrong-intake-key' },
    );
    expect(wrong.status).toBe(401);

    // Without the key (one number under 150 refs: a browser's ref is not the lead's, so all but the
    // first are its duplicates, and nobody is rung 150 times).
    const phone = uniquePhone();
    // Its one call is missed and retried an hour later: the lead stays in progress all burst long.
    stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'busy', delayMs: 5 }]);
    const keyless = await burst({}, () => phone, `bot-${tag}`);
    expect(keyless.filter((s) => s === 202)).toHaveLength(1);
    expect(keyless.filter((s) => s === 200)).toHaveLength(118);
    expect(keyless.filter((s) => s === 429)).toHaveLength(31);

    const still = await postJson(`${stack.url}/api/leads`, { name: 'Промо', phone: uniquePhone() }, withKey);
    expect(still.status).toBe(202);
    // This address is over its limit for browser leads; the Corezoid path, with its own key and the
    // shop's server behind it, has no per-IP limit.
    expect((await postJson(`${stack.url}/api/leads`, { name: 'Бот', phone: uniquePhone() })).status).toBe(
      429,
    );
    const viaSnippet = uniquePhone();
    const envelope = {
      ops: [
        {
          ref: `cz-${viaSnippet}`,
          type: 'create',
          obj: 'task',
          data: { server: { REMOTE_ADDR: '95.173.1.2' }, post: { name: 'Олег', phone: viaSnippet } },
        },
      ],
    };
    const corezoid = await fetch(`${stack.url}/api/1/json/public/31754/${COREZOID_KEY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify(envelope),
    });
    expect(corezoid.status).toBe(200);
    expect(await corezoid.json()).toMatchObject({ request_proc: 'ok', ops: [{ proc: 'ok' }] });

    expect(await refusals('ip_rate_limit')).toBe(32);
    expect(await refusals('intake_key')).toBe(1);
    // 119 keyless posts of one number: one lead, called once; the keyed burst was never limited.
    expect(await refusals('daily_limit_reached')).toBe(dailyLimitBefore);
    await eventually(() => expect(callsTo(phone)).toHaveLength(1));
  }, 240_000);
});
