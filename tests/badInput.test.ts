// Malformed input against the real service on a real Temporal dev server: a table of bad requests
// (tests/support/badRequests.ts), each answered with the exact 4xx the contract names and a JSON
// `error` (validation 400s also name the field), never a 5xx or a stack trace; after all of them no
// lead workflow was started and no call placed, except for the few positive controls (unicode,
// HTML and CR/LF in a name are data, accepted). Then property-based tests over the intake.
import fc from 'fast-check';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, uniquePhone } from './support/http';
import { buildBadRequests, type BadCase, type RequestSpec } from './support/badRequests';

const COREZOID_KEY = 'k123';
const RESULT_SECRET = 'bad-input-test-result-secret-0123456789';
const OPERATOR_TOKEN = 'bad-input-test-operator-token-0123456789';
const battery: BadCase[] = buildBadRequests({
  corezoidKey: COREZOID_KEY,
  resultSecret: RESULT_SECRET,
  operatorToken: OPERATOR_TOKEN,
  phone: uniquePhone,
});

let env: TestWorkflowEnvironment;
let stack: TestStack;
let workflowsBefore = 0;
let callsBefore = 0;

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    COREZOID_PUBLIC_KEY: COREZOID_KEY,
    VOXIMPLANT_RESULT_SECRET: RESULT_SECRET,
    OPERATOR_TOKEN,
  });
  workflowsBefore = await countLeadWorkflows();
  callsBefore = stack.emulators.voximplant.state.calls.length;
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

async function send(request: RequestSpec): Promise<Answer> {
  const res = await fetch(`${stack.url}${request.path}`, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: 'manual',
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

async function countLeadWorkflows(): Promise<number> {
  const { count } = await stack.service.client.workflow.count('WorkflowType="processLead"');
  return count;
}

async function leadWorkflowIds(): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of stack.service.client.workflow.list({ query: 'WorkflowType="processLead"' })) {
    ids.push(wf.workflowId);
  }
  return ids.sort();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// "at someFunction (/path/to/file.ts:12:34)", "at /path/file.js:1:2", "node:internal/…"
const STACK_TRACE =
  /\bat\s+(?:[^\s()]+\s+)?\(?(?:[A-Za-z]:\\|\/|file:\/\/|node:)[^\s)]*:\d+|node:internal|node_modules/;

/** What every answer must satisfy, whatever its status. */
function expectSane(answer: Answer): void {
  expect(answer.status).toBeLessThan(500);
  expect(answer.text).not.toMatch(STACK_TRACE);
  expect(answer.headers.get('set-cookie')).toBeNull();
  // Nothing a client sent may surface as a header of its own.
  for (const [name, value] of answer.headers) {
    expect(`${name}: ${value}`).not.toMatch(/x=1|set-cookie/i);
  }
}

/** Every 4xx: a JSON object body with a non-empty string `error`. */
function expectJsonError(answer: Answer): Record<string, unknown> {
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(isRecord(answer.json)).toBe(true);
  const body = answer.json as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  expect(String(body.error).length).toBeGreaterThan(0);
  return body;
}

function detailsOf(body: Record<string, unknown>): Array<{ field: unknown; message: unknown }> {
  expect(Array.isArray(body.details)).toBe(true);
  const details = body.details as unknown[];
  expect(details.length).toBeGreaterThan(0);
  return details.map((d) => {
    expect(isRecord(d)).toBe(true);
    const { field, message } = d as Record<string, unknown>;
    expect(typeof message).toBe('string');
    expect(String(message).length).toBeGreaterThan(0);
    return { field, message };
  });
}

describe('a battery of malformed requests', () => {
  test('the table holds at least 60 distinct cases', () => {
    expect(battery.length).toBeGreaterThanOrEqual(60);
    expect(new Set(battery.map((c) => c.name)).size).toBe(battery.length);
  });

  // One test per case, so a failure names the request.
  test.each(battery.map((c): [string, BadCase] => [c.name, c]))('%s', async (_name, c) => {
    const answer = await send(c.request);
    // Status first, shown with the body, so a failure says what the service answered.
    expect({ status: answer.status, body: answer.json ?? answer.text }).toMatchObject({
      status: c.expect.status,
    });
    expectSane(answer);
    if (c.expect.status >= 400) {
      const body = expectJsonError(answer);
      if (c.expect.error) expect(body.error).toMatch(c.expect.error);
      if (c.expect.field) {
        expect(detailsOf(body).map((d) => d.field)).toContain(c.expect.field);
      }
    }
    if (c.expect.procs) {
      // The Corezoid shape: a 200 with the verdict per operation, never a 4xx for a bad op.
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      const body = answer.json as { request_proc?: unknown; ops?: Array<Record<string, unknown>> };
      expect(body.request_proc).toBe('ok');
      expect((body.ops ?? []).map((o) => o.proc)).toEqual(c.expect.procs);
      for (const o of body.ops ?? []) {
        expect(o.obj).toBe('task');
        expect(typeof o.description).toBe('string');
        expect(o.obj_id).toBeUndefined();
      }
    }
  });
});

describe('text that looks dangerous is still a name (positive controls)', () => {
  const controls: Array<{ label: string; name: string; phone: string; cookie?: string }> = [
    { label: 'unicode', name: 'Zoë Ñandú 李小龙 Анна-Мария 😀', phone: uniquePhone() },
    { label: 'HTML', name: '<script>alert("x")</script><img src=x onerror=alert(1)>', phone: uniquePhone() },
    {
      label: 'CR/LF header injection',
      name: 'a\r\nSet-Cookie: x=1',
      phone: uniquePhone(),
      cookie: 'utm_source=a%0D%0ASet-Cookie%3A%20x%3D1',
    },
  ];
  const started: string[] = [];

  test.each(controls)('a name with $label is accepted as data', async ({ name, phone, cookie }) => {
    const answer = await send({
      method: 'POST',
      path: '/api/leads',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify({ name, phone }),
    });
    expectSane(answer);
    expect(answer.status).toBe(202);
    expect(answer.json).toMatchObject({ ref: phone, status: 'started' });
    started.push(String((answer.json as Record<string, unknown>).workflowId));
    // The CRM lead carries the name exactly as typed: it is data, not markup or a header. The
    // robot does not say it (it is no plausible name), and the call still goes.
    await eventually(() => {
      const lead = stack.emulators.bitrix24.state.leads.find((l) => JSON.stringify(l.PHONE).includes(phone));
      expect(lead?.NAME).toBe(name);
      const call = stack.emulators.voximplant.state.calls.find((c) => c.customData?.phone === phone);
      expect(call?.customData?.name).toBe('');
    });
  });

  test('after the battery: only the controls started workflows or placed calls; the service is healthy', async () => {
    expect(started).toHaveLength(controls.length);
    await eventually(async () => {
      expect(await countLeadWorkflows()).toBe(workflowsBefore + controls.length);
      expect(await leadWorkflowIds()).toEqual([...started].sort());
    });
    const controlPhones = new Set(controls.map((c) => c.phone));
    const otherCalls = stack.emulators.voximplant.state.calls.filter(
      (c) => !controlPhones.has(String(c.customData?.phone)),
    );
    expect(otherCalls).toHaveLength(callsBefore);

    const health = await send({ method: 'GET', path: '/healthz' });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
  });
});

describe('property-based intake', () => {
  const json = fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null),
      fc.boolean(),
      fc.integer(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string({ maxLength: 10 }), tie('value'), { maxKeys: 4 }),
    ),
  })).value;
  const leadKeys = ['name', 'phone', 'ref', 'city', 'timezone', 'partner', 'site', 'orderAmount', 'comment'];
  // Arbitrary objects, and objects with the lead's own keys holding arbitrary values.
  const bodies = fc.oneof(
    fc.object({ maxDepth: 3, maxKeys: 8 }),
    fc.dictionary(fc.constantFrom(...leadKeys), json, { maxKeys: leadKeys.length }),
    fc.record({
      name: fc.anything({ maxDepth: 2, maxKeys: 4 }),
      phone: fc.anything({ maxDepth: 2, maxKeys: 4 }),
    }),
  );

  test('arbitrary JSON objects never get a 5xx; every 4xx is a JSON error', async () => {
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const answer = await send({
          method: 'POST',
          path: '/api/leads',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        expectSane(answer);
        if (answer.status >= 400) {
          const err = expectJsonError(answer);
          if (answer.status === 400) detailsOf(err);
        } else {
          expect([200, 202]).toContain(answer.status);
        }
      }),
      { numRuns: 200 },
    );
  }, 120_000);

  test('valid leads are accepted with the phone normalised into the ref', async () => {
    const seen = new Set<string>();
    const name = fc
      .oneof(
        fc.string({ minLength: 1, maxLength: 50 }),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 50 }),
      )
      .filter((s) => s.trim().length > 0);
    const separator = fc.constantFrom('', '', ' ', '-', '.', '(', ')', '  ');
    const phone = fc
      .record({
        prefix: fc.constantFrom('', '8', '7', '+7', '+7 ', '8 (', '7-'),
        digits: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 9, maxLength: 9 }),
        separators: fc.array(separator, { minLength: 10, maxLength: 10 }),
      })
      .map(({ prefix, digits, separators }) => {
        const all = [9, ...digits];
        return {
          raw: prefix + all.map((d, i) => `${d}${separators[i]}`).join(''),
          normalised: `7${all.join('')}`,
        };
      });
    await fc.assert(
      fc.asyncProperty(name, phone, async (n, p) => {
        fc.pre(!seen.has(p.normalised));
        seen.add(p.normalised);
        const answer = await send({
          method: 'POST',
          path: '/api/leads',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ name: n, phone: p.raw }),
        });
        expectSane(answer);
        expect({ status: answer.status, body: answer.json, phone: p.raw }).toMatchObject({
          status: expect.any(Number),
        });
        expect([200, 202]).toContain(answer.status);
        expect(answer.json).toMatchObject({ ref: p.normalised });
        expect(p.normalised).toMatch(/^7\d{10}$/);
      }),
      { numRuns: 25 },
    );
    expect(seen.size).toBeLessThanOrEqual(25);
  }, 120_000);
});
