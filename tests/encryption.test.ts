// Customers' personal data is encrypted before it reaches Temporal, and only an authorised caller
// of the codec endpoint (the Web UI for an operator) gets it back in clear.
import crypto from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING } from '../support/codec';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const TOKEN = 'codec-operator-secret-token-0123456789';

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    CODEC_AUTH_TOKEN: TOKEN,
    ENCRYPTION_KEYS: `k1:${crypto.randomBytes(32).toString('base64')}`,
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

/** Every string and every byte array in the history, as text: what the server stores. */
function textOf(value: unknown, out: string[] = []): string {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (Array.isArray(value)) value.forEach((v) => textOf(v, out));
  else if (value && typeof value === 'object') Object.values(value).forEach((v) => textOf(v, out));
  return out.join('\n');
}

test('the server’s stored history holds no phone or name in plain text', async () => {
  const phone = uniquePhone();
  const name = 'Конфиденциальная Клиентка';
  const { body } = await postJson(`${stack.url}/api/leads`, { name, phone, city: 'Тверь' });
  await eventually(async () =>
    expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.execution).toBe(
      'COMPLETED',
    ),
  );

  const history = await env.client.workflow.getHandle(String(body.workflowId)).fetchHistory();
  const raw = textOf(history);
  expect(raw).toMatch(/processLead/); // the walk does see the history's text
  expect(raw).toMatch(/placeRobotCall/); // the call's activities are in it too
  expect(raw).not.toContain(phone);
  expect(raw).not.toContain(phone.slice(1)); // nor the national part
  expect(raw).not.toContain(name);
  expect(raw).toContain(ENCRYPTED_ENCODING);
  // The service itself still reads the lead (its client decrypts).
  const state = await getJson(`${stack.url}/api/leads/${phone}`, stack.operator);
  expect(state.body).toMatchObject({ status: 'Answered', ref: phone });
});

test('the codec endpoint decodes for an authorised caller only', async () => {
  const phone = uniquePhone();
  const { body } = await postJson(`${stack.url}/api/leads`, { name: 'Ольга', phone });
  await eventually(async () =>
    expect((await getJson(`${stack.url}/api/leads/${phone}`, stack.operator)).body.execution).toBe(
      'COMPLETED',
    ),
  );
  const history = await env.client.workflow.getHandle(String(body.workflowId)).fetchHistory();
  const input = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
  const jsonPayload = {
    metadata: Object.fromEntries(
      Object.entries(input.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(input.data!).toString('base64'),
  };
  const decode = (headers: Record<string, string>) =>
    fetch(`${stack.url}/codec/decode`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-namespace': 'default', ...headers },
      body: JSON.stringify({ payloads: [jsonPayload] }),
    });

  expect((await decode({})).status).toBe(401);
  expect((await decode({ authorization: 'Bearer wrong-token-of-same-len' })).status).toBe(401);
  const ok = await decode({ authorization: `Bearer ${TOKEN}`, origin: 'http://localhost:8233' });
  expect(ok.status).toBe(200);
  expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
  const decoded = (await ok.json()) as { payloads: Array<{ data: string }> };
  const clear = JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString('utf8')) as {
    phone: string;
    name: string;
  };
  expect(clear).toMatchObject({ phone, name: 'Ольга' });

  const foreign = await fetch(`${stack.url}/codec/decode`, {
    method: 'OPTIONS',
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
});

test('key rotation: payloads sealed with an old key still open; new ones use the new key', async () => {
  const oldKey = crypto.randomBytes(32);
  const newKey = crypto.randomBytes(32);
  const before = new AesGcmPayloadCodec({ currentKeyId: 'old', keys: { old: oldKey } });
  const after = new AesGcmPayloadCodec({ currentKeyId: 'new', keys: { old: oldKey, new: newKey } });
  const payload = {
    metadata: { encoding: Buffer.from('json/plain') },
    data: Buffer.from('{"phone":"79161234567"}'),
  };
  const [sealedOld] = await before.encode([payload]);
  const [opened] = await after.decode([sealedOld!]);
  expect(Buffer.from(opened!.data!).toString()).toBe('{"phone":"79161234567"}');
  const [sealedNew] = await after.encode([payload]);
  expect(Buffer.from(sealedNew!.metadata!['encryption-key-id']!).toString()).toBe('new');
  await expect(before.decode([sealedNew!])).rejects.toThrow(/unknown key id "new"/);
  // Tampering is detected (GCM tag). The byte is flipped, not set: a byte set to a value it may
  // already hold would leave the payload intact one run in 256.
  const flipped = Buffer.from(sealedNew!.data!);
  flipped[20] = flipped[20]! ^ 0xff;
  const tampered = { ...sealedNew!, data: flipped };
  await expect(after.decode([tampered])).rejects.toThrow();
});
