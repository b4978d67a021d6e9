// The service's edges as a stranger meets them over HTTP: the codec behind a reverse proxy on the
// same host (every caller's socket is loopback there), whose X-Forwarded-For the per-IP limit
// believes (TRUST_PROXY as a hop count), and /metrics, which is not on the API port.
import crypto from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { defaultPayloadConverter } from '@temporalio/common';
import { startDevServer, startStack, type TestStack } from './support/env';
import { postJson } from './support/http';
import { AesGcmPayloadCodec } from '../support/codec';

const SECRET_NAME = 'Секретная Клиентка';
const CODEC_TOKEN = `codec-${crypto.randomBytes(16).toString('hex')}`;
const METRICS_TOKEN = `metrics-${crypto.randomBytes(16).toString('hex')}`;

let env: TestWorkflowEnvironment;
/** No CODEC_AUTH_TOKEN; TRUST_PROXY=1 (one proxy in front); two posts a minute per address */
let open: TestStack;
/** CODEC_AUTH_TOKEN and METRICS_TOKEN set, no metrics port of its own; an API process only */
let tokens: TestStack;

beforeAll(async () => {
  env = await startDevServer();
  open = await startStack(env, { TRUST_PROXY: '1', INTAKE_RATE_LIMIT_PER_MINUTE: '2' });
  tokens = await startStack(
    env,
    { CODEC_AUTH_TOKEN: CODEC_TOKEN, METRICS_TOKEN, METRICS_PORT: '' },
    { role: 'api' },
  );
}, 90_000);

afterAll(async () => {
  await tokens?.close();
  await open?.close();
  await env?.teardown();
});

/** A payload as the workers seal it: what the Web UI would send the codec to read. */
async function sealedPayload(stack: TestStack) {
  const [sealed] = await new AesGcmPayloadCodec(stack.config.encryption).encode([
    defaultPayloadConverter.toPayload({ name: SECRET_NAME }),
  ]);
  const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
  return {
    metadata: Object.fromEntries(Object.entries(sealed!.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
    data: b64(sealed!.data!),
  };
}

async function decode(stack: TestStack, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.url}/codec/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ payloads: [await sealedPayload(stack)] }),
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

const clearNameOf = (text: string): string | undefined => {
  const { payloads } = JSON.parse(text) as { payloads: Array<{ data: string }> };
  return (JSON.parse(Buffer.from(payloads[0]!.data, 'base64').toString('utf8')) as { name?: string }).name;
};

describe('the codec without CODEC_AUTH_TOKEN', () => {
  test('a caller on this machine, straight to the API, gets the payload decoded', async () => {
    const direct = await decode(open);
    expect(direct.status).toBe(200);
    expect(clearNameOf(direct.text)).toBe(SECRET_NAME);
  });

  test.each<Record<string, string>>([
    { 'x-forwarded-for': '203.0.113.9' },
    { forwarded: 'for=203.0.113.9;proto=https' },
    { 'x-real-ip': '203.0.113.9' },
    { 'x-forwarded-host': 'leads.shop.example' },
  ])('through a proxy on the same host (%j): 401 as JSON, nothing decoded', async (proxyHeaders) => {
    const proxied = await decode(open, proxyHeaders);
    expect(proxied.status).toBe(401);
    expect(proxied.type).toMatch(/^application\/json/);
    expect(JSON.parse(proxied.text)).toEqual({ error: expect.stringContaining('CODEC_AUTH_TOKEN') });
    expect(proxied.text).not.toContain(SECRET_NAME);
  });
});

test('with CODEC_AUTH_TOKEN the token is what counts, behind a proxy too', async () => {
  const proxy = { 'x-forwarded-for': '203.0.113.9' };
  expect((await decode(tokens)).status).toBe(401);
  expect((await decode(tokens, { ...proxy, authorization: 'Bearer wrong' })).status).toBe(401);
  const ok = await decode(tokens, { ...proxy, authorization: `Bearer ${CODEC_TOKEN}` });
  expect(ok.status).toBe(200);
  expect(clearNameOf(ok.text)).toBe(SECRET_NAME);
});

test('TRUST_PROXY=1: the per-IP limit counts the address the proxy forwarded, not the proxy', async () => {
  // An empty lead is refused (400) after the limit has counted it: no workflow is started.
  const post = (forwardedFor: string) =>
    postJson(`${open.url}/api/leads`, {}, { 'x-forwarded-for': forwardedFor });
  expect((await post('203.0.113.7')).status).toBe(400);
  expect((await post('203.0.113.7')).status).toBe(400);
  expect((await post('203.0.113.7')).status).toBe(429);
  // Another customer behind the same proxy is not throttled for the first one.
  expect((await post('198.51.100.23')).status).toBe(400);
});

describe('/metrics', () => {
  test('not on the API port; Prometheus text on its own loopback port', async () => {
    expect((await fetch(`${open.url}/metrics`)).status).toBe(404);
    expect(open.service.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(new URL(open.metricsUrl).port).not.toBe(new URL(open.url).port);
    const res = await fetch(open.metricsUrl);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/^# TYPE stl_refusals_total counter$/m);
    // That port serves nothing else.
    expect((await fetch(new URL('/api/leads', open.metricsUrl))).status).toBe(404);
  });

  test('with METRICS_TOKEN: on the API port for its bearer only', async () => {
    expect(tokens.service.metricsUrl).toBeUndefined();
    const get = (headers: Record<string, string>) => fetch(`${tokens.url}/metrics`, { headers });
    const none = await get({});
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: expect.stringContaining('METRICS_TOKEN') });
    expect((await get({ authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}x` })).status).toBe(401);
    const ok = await get({ authorization: `Bearer ${METRICS_TOKEN}` });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/^# TYPE stl_refusals_total counter$/m);
  });
});
