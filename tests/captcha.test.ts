// The optional captcha on browser leads. First the verify client against the emulator of each
// provider's verify endpoint, in each one's wire format; then the service with CAPTCHA_PROVIDER set:
// a browser lead without a token, with a forged, an expired or a used one is refused with 403, a
// fresh one passes, and the shop's backend (intake key) and the Corezoid path need none.
import type http from 'node:http';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createCaptchaEmulator, type CaptchaEmulator } from '../emulators/captcha';
import { CAPTCHA_EMULATOR_PATHS } from '../emulators';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import { CAPTCHA_FIELDS, verifyCaptcha, type CaptchaConfig } from '../api/captcha';
import type { CaptchaProvider } from '../config';
import { startDevServer, startStack, type TestStack } from './support/env';
import { postJson, uniquePhone } from './support/http';

const PROVIDERS: CaptchaProvider[] = ['smartcaptcha', 'hcaptcha', 'turnstile'];
const LIFETIME_MIN: Record<CaptchaProvider, number> = { smartcaptcha: 5, hcaptcha: 2, turnstile: 5 };

describe('the verify client against each provider’s emulated endpoint', () => {
  let emulator: CaptchaEmulator;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    emulator = createCaptchaEmulator();
    server = await new Promise<http.Server>((resolve) => {
      const s = emulator.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => emulator.control.reset());

  const config = (
    provider: CaptchaProvider,
    secret: string = EMULATOR_CREDENTIALS.captchaSecret,
  ): CaptchaConfig => ({
    provider,
    mode: 'real',
    siteKey: EMULATOR_CREDENTIALS.captchaSiteKey,
    secret,
    verifyUrl: `${url}${CAPTCHA_EMULATOR_PATHS[provider]}`,
    scriptUrl: `${url}/captcha.js`,
  });

  test.each(PROVIDERS)(
    '%s: a fresh token passes once; forged, expired and used ones are refused',
    async (provider) => {
      const token = emulator.control.issueToken(provider);
      expect(await verifyCaptcha(config(provider), token, '203.0.113.7')).toEqual({ outcome: 'passed' });
      expect(await verifyCaptcha(config(provider), token, '203.0.113.7')).toMatchObject({
        outcome: 'refused',
      });

      const fresh = emulator.control.issueToken(provider);
      const forged = `${fresh.slice(0, -3)}${fresh.endsWith('AAA') ? 'BBB' : 'AAA'}`;
      expect(await verifyCaptcha(config(provider), forged, undefined)).toMatchObject({ outcome: 'refused' });
      expect(await verifyCaptcha(config(provider), 'made-up-token', undefined)).toMatchObject({
        outcome: 'refused',
      });
      // Another provider's token is no good here either.
      const foreign = emulator.control.issueToken(provider === 'hcaptcha' ? 'turnstile' : 'hcaptcha');
      expect(await verifyCaptcha(config(provider), foreign, undefined)).toMatchObject({ outcome: 'refused' });

      const old = emulator.control.issueToken(provider, { ageMs: LIFETIME_MIN[provider] * 60_000 + 1000 });
      expect(await verifyCaptcha(config(provider), old, undefined)).toMatchObject({ outcome: 'refused' });
      const almost = emulator.control.issueToken(provider, { ageMs: LIFETIME_MIN[provider] * 60_000 - 5000 });
      expect(await verifyCaptcha(config(provider), almost, undefined)).toEqual({ outcome: 'passed' });

      expect(emulator.state.verifications.map((v) => v.ok)).toEqual([
        true,
        false,
        false,
        false,
        false,
        false,
        true,
      ]);
      expect(emulator.state.verifications[0]!.ip).toBe('203.0.113.7');
    },
  );

  test.each(PROVIDERS)(
    '%s: no verdict (our secret refused, provider down) lets the lead through as unverified',
    async (provider) => {
      const token = emulator.control.issueToken(provider);
      expect(await verifyCaptcha(config(provider, 'wrong-secret'), token, undefined)).toMatchObject({
        outcome: 'unverified',
      });
      emulator.control.setMode('down', { times: 1 });
      expect(await verifyCaptcha(config(provider), token, undefined)).toMatchObject({
        outcome: 'unverified',
      });
      // The token was never judged, so it is still good.
      expect(await verifyCaptcha(config(provider), token, undefined)).toEqual({ outcome: 'passed' });
      const unreachable = { ...config(provider), verifyUrl: 'http://127.0.0.1:1/validate' };
      expect(await verifyCaptcha(unreachable, token, undefined)).toMatchObject({ outcome: 'unverified' });
    },
  );

  test('the wire formats: SmartCaptcha status/message (GET or POST), hCaptcha and Turnstile success/error-codes', async () => {
    const secret = EMULATOR_CREDENTIALS.captchaSecret;
    const form = (fields: Record<string, string>) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    const smart = emulator.control.issueToken('smartcaptcha');
    const ok = await fetch(`${url}/validate?${new URLSearchParams({ secret, token: smart, ip: '1.2.3.4' })}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: 'ok', message: '', host: '127.0.0.1' });
    const again = await fetch(`${url}/validate`, form({ secret, token: smart }));
    expect(await again.json()).toEqual({ status: 'failed', message: 'Invalid or expired Token.' });
    const noSecret = await fetch(`${url}/validate`, form({ token: smart }));
    expect(noSecret.status).toBe(403);
    expect(await noSecret.json()).toMatchObject({ status: 'failed' });

    const h = emulator.control.issueToken('hcaptcha');
    const hOk = await (await fetch(`${url}/siteverify`, form({ secret, response: h }))).json();
    expect(hOk).toMatchObject({ success: true, hostname: '127.0.0.1', challenge_ts: expect.any(String) });
    expect(await (await fetch(`${url}/siteverify`, form({ secret, response: h }))).json()).toEqual({
      success: false,
      'error-codes': ['invalid-or-already-seen-response'],
    });
    expect(await (await fetch(`${url}/siteverify`, form({ response: h }))).json()).toEqual({
      success: false,
      'error-codes': ['missing-input-secret'],
    });
    const h2 = emulator.control.issueToken('hcaptcha');
    expect(
      await (
        await fetch(`${url}/siteverify`, form({ secret, response: h2, sitekey: 'another-site' }))
      ).json(),
    ).toEqual({ success: false, 'error-codes': ['sitekey-secret-mismatch'] });

    const t = emulator.control.issueToken('turnstile');
    const viaJson = await fetch(`${url}/turnstile/v0/siteverify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ secret, response: t, remoteip: '1.2.3.4' }),
    });
    expect(await viaJson.json()).toMatchObject({ success: true, 'error-codes': [] });
    expect(
      await (await fetch(`${url}/turnstile/v0/siteverify`, form({ secret, response: t }))).json(),
    ).toEqual({
      success: false,
      'error-codes': ['timeout-or-duplicate'],
    });
    expect(
      await (await fetch(`${url}/turnstile/v0/siteverify`, form({ secret, response: 'forged' }))).json(),
    ).toEqual({ success: false, 'error-codes': ['invalid-input-response'] });
    expect(
      await (await fetch(`${url}/turnstile/v0/siteverify`, form({ secret: 'x', response: t }))).json(),
    ).toEqual({
      success: false,
      'error-codes': ['invalid-input-secret'],
    });
  });
});

describe.each(PROVIDERS)('the service with CAPTCHA_PROVIDER=%s (emulated)', (provider) => {
  const INTAKE_KEY = 'captcha-test-intake-key-0123456789';
  const COREZOID_KEY = 'captcha-test-corezoid';
  const field = CAPTCHA_FIELDS[provider];
  let env: TestWorkflowEnvironment;
  let stack: TestStack;

  beforeAll(async () => {
    env = await startDevServer();
    // The API alone: these tests are about what the intake accepts, not about the calls.
    stack = await startStack(
      env,
      { CAPTCHA_PROVIDER: provider, INTAKE_API_KEY: INTAKE_KEY, COREZOID_PUBLIC_KEY: COREZOID_KEY },
      { role: 'api' },
    );
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await env?.teardown();
  });

  const post = (extra: Record<string, unknown>, headers: Record<string, string> = {}) =>
    postJson(`${stack.url}/api/leads`, { name: 'Покупатель', phone: uniquePhone(), ...extra }, headers);
  const issue = (opts?: { ageMs?: number }) => stack.emulators.captcha.control.issueToken(provider, opts);

  test('the form shows the widget, its script allowed by the page’s CSP', async () => {
    const res = await fetch(`${stack.url}/`);
    const html = await res.text();
    expect(html).toContain(`data-sitekey="${EMULATOR_CREDENTIALS.captchaSiteKey}"`);
    expect(html).toContain(`data-field="${field}"`);
    expect(html).toContain(`src="${stack.emulators.urls.captcha}/captcha.js?provider=${provider}"`);
    expect(res.headers.get('content-security-policy')).toContain(stack.emulators.urls.captcha);
  });

  test('missing, forged, expired and used tokens get 403 with a clear JSON error; a fresh one passes', async () => {
    const missing = await post({});
    expect(missing.status).toBe(403);
    expect(missing.body).toMatchObject({
      error: expect.stringMatching(/captcha/),
      details: [{ field, message: expect.stringMatching(/is required/) }],
    });
    const forged = await post({ [field]: `${issue().slice(0, -2)}xx` });
    expect(forged).toMatchObject({ status: 403, body: { details: [{ field }] } });
    const expired = await post({ [field]: issue({ ageMs: 60 * 60_000 }) });
    expect(expired).toMatchObject({
      status: 403,
      body: { details: [{ field, message: expect.stringMatching(provider) }] },
    });

    const token = issue();
    const ok = await post({ [field]: token });
    expect(ok).toMatchObject({ status: 202, body: { status: 'started' } });
    const reused = await post({ [field]: token });
    expect(reused.status).toBe(403);
    // A form post carries it the same way (the widget's hidden field).
    const viaForm = await fetch(`${stack.url}/api/leads`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ name: 'Форма', phone: uniquePhone(), [field]: issue() }).toString(),
    });
    expect(viaForm.status).toBe(202);
    // Invalid lead data is a 400 first, and does not use up the visitor's token.
    const kept = issue();
    expect((await post({ [field]: kept, phone: '12' })).status).toBe(400);
    expect((await post({ [field]: kept })).status).toBe(202);

    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(/^stl_refusals_total\{rule="captcha"\} 4$/m);
  });

  test('the shop’s backend (intake key) and the Corezoid path need no captcha', async () => {
    expect((await post({}, { authorization: `Bearer ${INTAKE_KEY}` })).status).toBe(202);
    const phone = uniquePhone();
    const corezoid = await fetch(`${stack.url}/api/1/json/public/1/${COREZOID_KEY}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: JSON.stringify({
        ops: [{ ref: `cz-${phone}`, type: 'create', obj: 'task', data: { post: { name: 'Олег', phone } } }],
      }),
    });
    expect(await corezoid.json()).toMatchObject({ request_proc: 'ok', ops: [{ proc: 'ok' }] });
  });

  test('a provider that gives no verdict lets the lead through, counted', async () => {
    stack.emulators.captcha.control.setMode('down', { times: 1 });
    expect((await post({ [field]: issue() })).status).toBe(202);
    const metrics = await (await fetch(stack.metricsUrl)).text();
    expect(metrics).toMatch(/^stl_captcha_unverified_total 1$/m);
  });
});
