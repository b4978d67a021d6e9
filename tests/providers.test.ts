// The VoxImplant, SMS.ru and Telegram adapters against their emulators over real HTTP. Outcomes
// are read from what the emulators received; failures from the ApplicationFailure the worker would
// hand to Temporal (type and retryability decide what the workflow does next).
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express from 'express';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import { verifyResultToken } from '../domain/resultToken';
import { signCallbackData, telegramCallbackKey } from '../domain/telegramCallback';
import {
  callKeyOf,
  createVoximplantActivities,
  type PlaceCallInput,
  type PlaceCallResult,
} from '../activities/voximplant';
import {
  createSmsActivities,
  createSmsRuGateway,
  decideSmsSend,
  SMS_ACCOUNT_ERROR,
  smsAccountErrorOf,
  type SmsActivityRuntime,
  type SmsHeartbeat,
} from '../activities/sms';
import {
  createTelegramActivities,
  formatSellerAlert,
  TELEGRAM_MAX_MESSAGE,
  type SellerAlert,
} from '../activities/telegram';
import { createVoximplantEmulator } from '../emulators/voximplant';
import { createSmsRuEmulator } from '../emulators/smsru';
import { createTelegramEmulator, parseTelegramHtml } from '../emulators/telegram';
import { eventually } from './support/http';

const SECRET = 'test-result-secret-0123456789abcdef0123';
const servers: Server[] = [];

async function listen(app: express.Express): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A port nobody listens on: connection refused. */
async function closedPortUrl(): Promise<string> {
  const url = await listen(express());
  const server = servers.pop()!;
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  return url;
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure))
    throw new Error(`expected an ApplicationFailure, got ${String(err)}`);
  return err;
}

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

// ---------------------------------------------------------------------------------------------
describe('VoxImplant', () => {
  const vox = createVoximplantEmulator({ reportBackoffMs: 5 });
  const reports: Array<Record<string, unknown>> = [];
  const claims = new Map<string, number>();
  let voxUrl: string;
  let resultUrl: string;

  beforeAll(async () => {
    voxUrl = await listen(vox.app);
    const receiver = express();
    receiver.use(express.json());
    receiver.post('/api/voximplant/result', (req, res) => {
      reports.push(req.body as Record<string, unknown>);
      res.json({ ok: true });
    });
    // As the service does: the first claim of an attempt (named by its token) is granted, any other
    // session's refused.
    receiver.post('/api/voximplant/claim', (req, res) => {
      const { token, sessionId } = req.body as { token: string; sessionId: number };
      const check = verifyResultToken(token, SECRET);
      if (!check.ok) return void res.status(401).json({ error: check.reason });
      const attempt = `${check.claims.wf}#${check.claims.run ?? ''}#${check.claims.a}`;
      const holder = claims.get(attempt);
      if (holder !== undefined && holder !== sessionId)
        return void res.status(409).json({ error: 'claimed' });
      claims.set(attempt, sessionId);
      res.json({ status: 'claimed' });
    });
    resultUrl = `${await listen(receiver)}/api/voximplant/result`;
  });
  beforeEach(() => {
    vox.control.reset();
    reports.length = 0;
    claims.clear();
  });
  // Every scenario reports to the shared receiver: let each test's reports land within that test.
  afterEach(async () => {
    vox.control.release();
    await vox.control.settled();
  });

  const cfg = (over: Partial<AppConfig['voximplant']> = {}): AppConfig['voximplant'] => ({
    mode: 'emulator',
    apiUrl: voxUrl,
    accountId: EMULATOR_CREDENTIALS.voximplantAccountId,
    apiKey: EMULATOR_CREDENTIALS.voximplantApiKey,
    ruleId: EMULATOR_CREDENTIALS.voximplantRuleId,
    resultSecret: SECRET,
    claimPatienceMs: 60_000,
    ...over,
  });
  const input = (over: Partial<PlaceCallInput> = {}): PlaceCallInput => ({
    workflowId: 'call-203.0.113.7',
    ref: '203.0.113.7',
    attempt: 1,
    name: 'Иван Петров',
    phone: '79161234567',
    resultUrl,
    claimUrl: resultUrl.replace(/result$/, 'claim'),
    tokenTtlSeconds: 600,
    ...over,
  });
  const retry = { activityInfo: () => ({ attempt: 2, scheduledTimestampMs: Date.now() - 5_000 }) };

  test('StartScenarios carries the contract custom data and a token the service accepts', async () => {
    const now = Date.now();
    const result = await createVoximplantActivities(cfg({ claimPatienceMs: 210_000 }), {
      now: () => now,
    }).placeRobotCall(input({ attempt: 3 }));

    expect(vox.state.calls).toHaveLength(1);
    const call = vox.state.calls[0]!;
    expect(result).toEqual({ callSessionHistoryId: call.callSessionHistoryId, deduplicated: false });
    expect(call.ruleId).toBe(EMULATOR_CREDENTIALS.voximplantRuleId);
    expect(call.customData).toMatchObject({
      phone: '79161234567',
      ref: '203.0.113.7',
      name: 'Иван Петров',
      resultUrl,
      claimUrl: resultUrl.replace(/result$/, 'claim'),
      // The scenario asks for its claim until then: the result timeout less the call's own session.
      claimUntil: now + 210_000,
      attempt: 3,
      callKey: callKeyOf('call-203.0.113.7', 3),
    });
    // The session's custom data holds at most 200 bytes, whatever the ref.
    const longRef = callKeyOf(`lead-${'Очень длинная ссылка партнёра '.repeat(5)}`, 12, crypto.randomUUID());
    expect(Buffer.byteLength(longRef)).toBeLessThanOrEqual(200);
    expect(callKeyOf('lead-a', 1, 'run-1')).not.toBe(callKeyOf('lead-a', 2, 'run-1'));
    const check = verifyResultToken(call.customData!.token, SECRET);
    expect(check).toEqual({ ok: true, claims: expect.objectContaining({ wf: 'call-203.0.113.7', a: 3 }) });
    expect(verifyResultToken(call.customData!.token, 'another-secret')).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  test('only a plausible name reaches the scenario: a sentence in the name field is neither in the custom data nor in the text said', async () => {
    const tts = 'Здравствуйте, {name}! Ваш заказ принят.';
    const acts = createVoximplantActivities(cfg({ ttsText: tts }));
    await acts.placeRobotCall(input({ name: 'Заказ отменён, возврат тут: https://evil.example/x' }));
    await acts.placeRobotCall(input({ attempt: 2, name: '  Анна-Мария   О’Нил ' }));

    const [stranger, customer] = vox.state.calls;
    expect(stranger!.customData).toMatchObject({ name: '', ttsText: 'Здравствуйте! Ваш заказ принят.' });
    expect(JSON.stringify(stranger!.customData)).not.toMatch(/evil|возврат/);
    expect(customer!.customData).toMatchObject({
      name: 'Анна-Мария О’Нил',
      ttsText: 'Здравствуйте, Анна-Мария О’Нил! Ваш заказ принят.',
    });
  });

  test('a retried placeRobotCall whose first session is still ringing but not in the history: the claim keeps it from ringing twice', async () => {
    vox.control.setDefaultOutcome({ result: 'answered', hold: true });
    await createVoximplantActivities(cfg()).placeRobotCall(input());
    await eventually(() => expect(vox.state.calls[0]?.dialledAt).toBeDefined());
    const again = await createVoximplantActivities(cfg(), retry).placeRobotCall(input());

    // VoxImplant lists the ringing session only once it ends: the retry starts a second scenario,
    // whose claim is refused, so it ends without dialling.
    expect(again.deduplicated).toBe(false);
    await eventually(() => expect(vox.state.calls[1]?.claim).toEqual({ outcome: 'refused', status: 409 }));
    expect(vox.state.calls.map((c) => c.dialledAt !== undefined)).toEqual([true, false]);
    vox.control.release();
    await vox.control.settled();
    expect(reports).toHaveLength(1);
  });

  test('a retried placeRobotCall finds a session in progress in the history and starts none', async () => {
    const listing = createVoximplantEmulator({ historyShowsRunning: true });
    const url = await listen(listing.app);
    listing.control.setDefaultOutcome({ result: 'answered', hold: true });
    const first = await createVoximplantActivities(cfg({ apiUrl: url })).placeRobotCall(input());
    const again = await createVoximplantActivities(cfg({ apiUrl: url }), retry).placeRobotCall(input());
    expect(again).toEqual({ callSessionHistoryId: first.callSessionHistoryId, deduplicated: true });
    expect(listing.state.calls).toHaveLength(1);
    expect(listing.state.requests.map((r) => r.cmd)).toEqual([
      'StartScenarios',
      'GetCallHistory',
      'GetCallHistory',
    ]);

    // A retry of another attempt, or of the same attempt in another run, has nothing to find.
    await createVoximplantActivities(cfg({ apiUrl: url }), retry).placeRobotCall(input({ attempt: 2 }));
    await createVoximplantActivities(cfg({ apiUrl: url }), retry).placeRobotCall(
      input({ runId: crypto.randomUUID() }),
    );
    expect(listing.state.calls).toHaveLength(3);

    // A session of this attempt that ended does not count: it may never have dialled.
    listing.control.release();
    await listing.control.settled();
    const afterEnd = await createVoximplantActivities(cfg({ apiUrl: url }), retry).placeRobotCall(input());
    expect(afterEnd.deduplicated).toBe(false);
    listing.control.release();
    await listing.control.settled();
  });

  test('the retry check runs inside a real activity context, and uses the exact filter when it can', async () => {
    const emulator = createVoximplantEmulator({ scenarioSetsCallKey: true, historyShowsRunning: true });
    emulator.control.setDefaultOutcome({ result: 'answered', hold: true });
    const url = await listen(emulator.app);
    const activities = createVoximplantActivities(cfg({ apiUrl: url }));
    const runId = crypto.randomUUID();
    const info = (attempt: number) => ({
      attempt,
      scheduledTimestampMs: Date.now(),
      workflowExecution: { workflowId: 'call-203.0.113.7', runId },
    });
    const place = (attempt: number): Promise<PlaceCallResult> =>
      new MockActivityEnvironment(info(attempt)).run(activities.placeRobotCall, input());
    const first = await place(1);
    const retried = await place(2);

    expect(retried).toEqual({ callSessionHistoryId: first.callSessionHistoryId, deduplicated: true });
    expect(emulator.state.calls).toHaveLength(1);
    expect(emulator.state.calls[0]!.sessionCustomData).toBe(callKeyOf('call-203.0.113.7', 1, runId));
    expect(emulator.state.requests.map((r) => r.cmd)).toEqual(['StartScenarios', 'GetCallHistory']);
    emulator.control.release();
    await emulator.control.settled();
  });

  test('a retry that cannot read the call history fails retryably instead of calling blind', async () => {
    await createVoximplantActivities(cfg()).placeRobotCall(input());
    vox.control.setMode('down', { times: 1 });
    const failure = await failureOf(createVoximplantActivities(cfg(), retry).placeRobotCall(input()));
    expect(failure).toMatchObject({ type: 'VoximplantUnavailable', nonRetryable: false });
    expect(vox.state.calls).toHaveLength(1);
  });

  test('auth and request errors are non-retryable; rate limits and outages are retryable', async () => {
    const wrongKey = await failureOf(
      createVoximplantActivities(cfg({ apiKey: 'wrong' })).placeRobotCall(input()),
    );
    expect(wrongKey).toMatchObject({ type: 'VoximplantAuthError', nonRetryable: true });
    expect(wrongKey.message).toMatch(/Authorization failed/);

    const wrongRule = await failureOf(
      createVoximplantActivities(cfg({ ruleId: '999' })).placeRobotCall(input()),
    );
    expect(wrongRule).toMatchObject({ type: 'VoximplantRequestError', nonRetryable: true });

    for (const mode of ['rate_limit', 'down'] as const) {
      vox.control.setMode(mode, { times: 1 });
      const failure = await failureOf(createVoximplantActivities(cfg()).placeRobotCall(input()));
      expect(failure).toMatchObject({ type: 'VoximplantUnavailable', nonRetryable: false });
    }
    const refused = await failureOf(
      createVoximplantActivities(cfg({ apiUrl: await closedPortUrl() })).placeRobotCall(input()),
    );
    expect(refused).toMatchObject({ type: 'VoximplantUnavailable', nonRetryable: false });
    expect(vox.state.calls).toHaveLength(0);
  });

  test('a phone the length rule refuses is never dialled: non-retryable, no StartScenarios', async () => {
    const failure = await failureOf(
      createVoximplantActivities(cfg()).placeRobotCall(input({ phone: '791612345678' })),
    );
    expect(failure).toMatchObject({ type: 'VoximplantRequestError', nonRetryable: true });
    expect(failure.message).toContain('phone_too_long');
    expect(vox.state.requests).toHaveLength(0);
  });

  test('a service-account JSON authenticates with an RS256 JWT the platform verifies', async () => {
    const { publicKey, privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vox-creds-'));
    const file = path.join(dir, 'credentials.json');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    fs.writeFileSync(file, JSON.stringify({ account_id: 4242, key_id: 'key-1', private_key: pem }));
    const emulator = createVoximplantEmulator({
      serviceAccounts: [{ accountId: 4242, keyId: 'key-1', publicKey }],
    });
    const url = await listen(emulator.app);
    const jwtCfg = cfg({ apiUrl: url, accountId: undefined, apiKey: undefined, credentialsFile: file });
    try {
      await createVoximplantActivities(jwtCfg).placeRobotCall(input());
      expect(emulator.state.calls).toHaveLength(1);

      const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
      const forged = other.export({ type: 'pkcs8', format: 'pem' }).toString();
      fs.writeFileSync(file, JSON.stringify({ account_id: 4242, key_id: 'key-1', private_key: forged }));
      const failure = await failureOf(createVoximplantActivities(jwtCfg).placeRobotCall(input()));
      expect(failure).toMatchObject({ type: 'VoximplantAuthError', nonRetryable: true });
      expect(emulator.state.calls).toHaveLength(1);
    } finally {
      await emulator.control.settled();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the emulated scenario posts the scripted results to resultUrl', async () => {
    vox.control.scriptFor('79161234567', [
      { result: 'busy', delayMs: 10 },
      { result: 'answered', duration: 42, delayMs: 10, report: 'twice' },
      { result: 'no_answer', delayMs: 10, report: 'none' },
    ]);
    const activities = createVoximplantActivities(cfg());
    for (const attempt of [1, 2, 3]) await activities.placeRobotCall(input({ attempt }));
    await vox.control.settled();

    const tokens = vox.state.calls.map((c) => c.customData!.token);
    expect(reports).toEqual([
      { token: tokens[0], result: 'busy', code: 486, duration: 0 },
      { token: tokens[1], result: 'answered', code: 200, duration: 42 },
      { token: tokens[1], result: 'answered', code: 200, duration: 42 },
    ]);
    expect(vox.state.reports.every((r) => r.ok && r.status === 200)).toBe(true);
  });

  test('the default outcome applies to unscripted phones, and failed report POSTs are recorded', async () => {
    vox.control.setDefaultOutcome({ result: 'voicemail', delayMs: 5 });
    const deadUrl = `${await closedPortUrl()}/api/voximplant/result`;
    await createVoximplantActivities(cfg()).placeRobotCall(
      input({ phone: '79990000000', resultUrl: deadUrl }),
    );
    await vox.control.settled();

    // Retried like scenario.js: five posts, all refused, all recorded.
    expect(vox.state.reports).toHaveLength(5);
    for (const report of vox.state.reports) {
      expect(report).toMatchObject({ ok: false, url: deadUrl, body: { result: 'voicemail' } });
      expect(report.error).toMatch(/ECONNREFUSED/);
    }
  });

  test('an unanswered claim is asked again until claimUntil, like scenario.js; without it, seven times', async () => {
    const deadClaimUrl = `${await closedPortUrl()}/api/voximplant/claim`;
    await createVoximplantActivities(cfg({ claimPatienceMs: 3_000 })).placeRobotCall(
      input({ phone: '79990000001', claimUrl: deadClaimUrl }),
    );
    await vox.control.settled();
    const patient = vox.state.calls[0]!;
    const claimUntil = Number(patient.customData!.claimUntil);
    const tries = vox.state.claims.map((c) => c.at.getTime());
    expect(patient.claim).toEqual({ outcome: 'unreachable' });
    expect(patient.dialledAt).toBeUndefined();
    // The waits (5 ms × 1, 2, 4 … 30 here) would end seven tries within a second: it went on
    // until claimUntil (a refused connection takes far less than the second allowed here).
    expect(tries.length).toBeGreaterThan(7);
    expect(tries.at(-1)!).toBeGreaterThanOrEqual(claimUntil - 1_000);
    // And stopped there (the last try goes at claimUntil; a busy machine may start it late).
    expect(tries.at(-1)!).toBeLessThanOrEqual(claimUntil + 3_000);

    vox.control.reset();
    const rawData = JSON.stringify({ ...patient.customData, claimUntil: undefined });
    await axios.post(
      `${voxUrl}/StartScenarios`,
      new URLSearchParams({
        account_id: EMULATOR_CREDENTIALS.voximplantAccountId,
        api_key: EMULATOR_CREDENTIALS.voximplantApiKey,
        rule_id: EMULATOR_CREDENTIALS.voximplantRuleId,
        script_custom_data: rawData,
      }).toString(),
    );
    await vox.control.settled();
    expect(vox.state.claims).toHaveLength(7);
  });

  test('a session scripted to end before its claim asks nothing, dials nothing and reports nothing', async () => {
    vox.control.scriptFor('79990000002', [{ result: 'answered', endsBeforeClaim: true }]);
    await createVoximplantActivities(cfg()).placeRobotCall(input({ phone: '79990000002' }));
    await vox.control.settled();
    const [call] = vox.state.calls;
    expect(call!.finishedAt).toBeDefined();
    expect(call!.claim).toBeUndefined();
    expect(call!.dialledAt).toBeUndefined();
    expect(vox.state.claims).toEqual([]);
    expect(vox.state.reports).toEqual([]);
  });

  test('GetCallHistory filters by custom data and dates, in the real answer shape', async () => {
    await createVoximplantActivities(cfg()).placeRobotCall(input());
    const raw = vox.state.calls[0]!.rawCustomData;
    // A session is listed once it has ended.
    await vox.control.settled();
    const ask = (params: Record<string, string>) =>
      axios.post(
        `${voxUrl}/GetCallHistory`,
        new URLSearchParams({
          account_id: EMULATOR_CREDENTIALS.voximplantAccountId,
          api_key: EMULATOR_CREDENTIALS.voximplantApiKey,
          ...params,
        }).toString(),
      );
    const day = (offsetDays: number) =>
      new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 19).replace('T', ' ');

    const hit = await ask({ from_date: day(-1), to_date: day(1), call_session_history_custom_data: raw });
    expect(hit.data).toMatchObject({ total_count: 1, count: 1, result: [{ custom_data: raw }] });
    const miss = await ask({
      from_date: day(-1),
      to_date: day(1),
      call_session_history_custom_data: 'other',
    });
    expect(miss.data).toMatchObject({ total_count: 0, count: 0, result: [] });
    const past = await ask({ from_date: day(-3), to_date: day(-2) });
    expect(past.data.count).toBe(0);
    const undated = await ask({});
    expect(undated.data).toEqual({ error: { code: 101, msg: expect.stringMatching(/from_date/) } });
  });
});

// ---------------------------------------------------------------------------------------------
describe('SMS.ru', () => {
  const smsru = createSmsRuEmulator();
  let smsUrl: string;
  beforeAll(async () => {
    smsUrl = await listen(smsru.app);
  });
  beforeEach(() => smsru.control.reset());

  const cfg = (over: Partial<AppConfig['sms']> = {}): AppConfig['sms'] => ({
    mode: 'emulator',
    apiUrl: smsUrl,
    apiId: EMULATOR_CREDENTIALS.smsruApiId,
    sender: 'WatchShop',
    ...over,
  });
  const TEXT = 'Здравствуйте, Иван! Ваш заказ №42 принят ✅ & передан менеджеру <скоро позвоним>.';
  const sms = (over: Partial<AppConfig['sms']> = {}) => createSmsActivities(createSmsRuGateway(cfg(over)));

  /** An activity context as the worker would give it, recording heartbeats. */
  function runtime(attempt: number, heartbeatDetails?: unknown) {
    const beats: SmsHeartbeat[] = [];
    const rt: SmsActivityRuntime = { attempt, heartbeatDetails, heartbeat: (d) => beats.push(d) };
    return { beats, opts: { runtime: () => rt } };
  }

  test('sends the exact text to the number from the configured sender', async () => {
    const result = await sms().sendSms({
      idempotencyKey: 'wf/run/confirmation',
      phone: '79161234567',
      text: TEXT,
    });

    expect(smsru.state.sms).toHaveLength(1);
    expect(smsru.state.sms[0]).toMatchObject({
      to: '79161234567',
      text: TEXT,
      from: 'WatchShop',
      test: false,
    });
    expect(result).toEqual({ status: 'sent', smsId: smsru.state.sms[0]!.smsId });
  });

  test('inside an activity, the "sending" marker is heartbeated before the request', async () => {
    const env = new MockActivityEnvironment({ attempt: 1 });
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push({ details: d, smsSoFar: smsru.state.sms.length }));
    const result = await env.run(sms().sendSms, { idempotencyKey: 'k0', phone: '79161234567', text: TEXT });
    expect(result).toMatchObject({ status: 'sent' });
    expect(beats).toEqual([{ details: { phase: 'sending', key: 'k0' }, smsSoFar: 0 }]);
  });

  test('a per-number error in an OK answer is non-retryable SmsRejected', async () => {
    smsru.control.rejectNumber('79161234567', 207);
    const failure = await failureOf(sms().sendSms({ idempotencyKey: 'k', phone: '79161234567', text: TEXT }));
    expect(failure).toMatchObject({ type: 'SmsRejected', nonRetryable: true });
    expect(failure.message).toMatch(/207/);
    expect(smsru.state.sms).toHaveLength(0);
  });

  test('a wrong api_id is a non-retryable account error; outages and rate limits are retryable', async () => {
    const auth = await failureOf(
      sms({ apiId: 'WRONG' }).sendSms({ idempotencyKey: 'k', phone: '79161234567', text: TEXT }),
    );
    expect(auth).toMatchObject({ type: SMS_ACCOUNT_ERROR, nonRetryable: true });
    expect(smsAccountErrorOf(auth)).toEqual({ kind: 'auth', code: 200 });
    for (const mode of ['down', 'rate_limit'] as const) {
      smsru.control.setMode(mode, { times: 1 });
      const failure = await failureOf(
        sms().sendSms({ idempotencyKey: 'k', phone: '79161234567', text: TEXT }),
      );
      expect(failure).toMatchObject({ type: 'SmsUnavailable', nonRetryable: false });
    }
    expect(smsru.state.sms).toHaveLength(0);
  });

  test('no money (201), the day’s limit (206), a sender not approved (204): account errors by kind', async () => {
    const send = (gateway = sms()) =>
      failureOf(gateway.sendSms({ idempotencyKey: 'k', phone: '79161234567', text: TEXT }));
    smsru.control.setBalance(0);
    const noMoney = await send();
    expect(noMoney).toMatchObject({ type: SMS_ACCOUNT_ERROR, nonRetryable: true });
    expect(smsAccountErrorOf(noMoney)).toEqual({ kind: 'no_money', code: 201 });

    smsru.control.reset();
    smsru.control.setDailyLimit(0);
    const limit = await send();
    expect(smsAccountErrorOf(limit)).toEqual({ kind: 'daily_limit', code: 206 });
    expect(limit.nonRetryable).toBe(true);

    const strict = createSmsRuEmulator({ senders: ['OtherShop'] });
    const strictUrl = await listen(strict.app);
    const sender = await send(createSmsActivities(createSmsRuGateway(cfg({ apiUrl: strictUrl }))));
    expect(smsAccountErrorOf(sender)).toEqual({ kind: 'sender_not_approved', code: 204 });
    expect([...smsru.state.sms, ...strict.state.sms]).toHaveLength(0);
    // A refused number is not an account error.
    smsru.control.reset();
    smsru.control.rejectNumber('79161234567', 207);
    expect(smsAccountErrorOf(await send())).toBeUndefined();
  });

  test('the at-most-once decision', () => {
    const sending = { phase: 'sending', key: 'a' };
    expect(decideSmsSend('a', 1, sending)).toBe('send'); // a first try has no predecessor
    expect(decideSmsSend('a', 2, undefined)).toBe('send');
    expect(decideSmsSend('a', 2, sending)).toBe('skip');
    expect(decideSmsSend('b', 2, sending)).toBe('send');
    expect(decideSmsSend('a', 3, { phase: 'failed_before_send', key: 'a' })).toBe('send');
  });

  test('a retry after a try that reached "sending" does not send again', async () => {
    const { beats, opts } = runtime(2, { phase: 'sending', key: 'k1' });
    const gateway = createSmsRuGateway(cfg());
    const result = await createSmsActivities(gateway, opts).sendSms({
      idempotencyKey: 'k1',
      phone: '79161234567',
      text: TEXT,
    });
    expect(result).toEqual({ status: 'skipped', reason: 'possible_duplicate' });
    expect(smsru.state.sms).toHaveLength(0);
    expect(beats).toEqual([]);

    // The same decision through Temporal's own activity context.
    const env = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { phase: 'sending', key: 'k1' },
    });
    const viaContext = await env.run(createSmsActivities(gateway).sendSms, {
      idempotencyKey: 'k1',
      phone: '79161234567',
      text: TEXT,
    });
    expect(viaContext).toEqual({ status: 'skipped', reason: 'possible_duplicate' });
    expect(smsru.state.sms).toHaveLength(0);
  });

  test('an answer proving nothing was sent clears the marker, so the retry sends', async () => {
    smsru.control.setMode('down', { times: 1 });
    const first = runtime(1);
    await failureOf(
      createSmsActivities(createSmsRuGateway(cfg()), first.opts).sendSms({
        idempotencyKey: 'k2',
        phone: '79161234567',
        text: TEXT,
      }),
    );
    expect(first.beats).toEqual([
      { phase: 'sending', key: 'k2' },
      { phase: 'failed_before_send', key: 'k2' },
    ]);

    const second = runtime(2, first.beats.at(-1));
    const result = await createSmsActivities(createSmsRuGateway(cfg()), second.opts).sendSms({
      idempotencyKey: 'k2',
      phone: '79161234567',
      text: TEXT,
    });
    expect(result.status).toBe('sent');
    expect(smsru.state.sms).toHaveLength(1);
  });

  test('connection refused clears the marker; a timeout keeps it, since the SMS may have gone', async () => {
    const refused = runtime(1);
    const deadGateway = createSmsRuGateway(cfg({ apiUrl: await closedPortUrl() }));
    const f1 = await failureOf(
      createSmsActivities(deadGateway, refused.opts).sendSms({
        idempotencyKey: 'k3',
        phone: '79161234567',
        text: TEXT,
      }),
    );
    expect(f1).toMatchObject({ type: 'SmsUnavailable', nonRetryable: false });
    expect(refused.beats.at(-1)).toEqual({ phase: 'failed_before_send', key: 'k3' });

    // The gateway takes the message and never answers: only the client's own timeout ends the call.
    smsru.control.setLatency(Number.POSITIVE_INFINITY);
    const slow = runtime(1);
    const impatient = createSmsRuGateway(cfg(), { http: axios.create({ timeout: 50 }) });
    const f2 = await failureOf(
      createSmsActivities(impatient, slow.opts).sendSms({
        idempotencyKey: 'k4',
        phone: '79161234567',
        text: TEXT,
      }),
    );
    expect(f2).toMatchObject({ type: 'SmsUnavailable', nonRetryable: false });
    expect(slow.beats).toEqual([{ phase: 'sending', key: 'k4' }]);
    // The gateway did accept it: the retry must (and does) hold back.
    await eventually(() => expect(smsru.state.sms).toHaveLength(1));
    const retry = runtime(2, slow.beats.at(-1));
    const result = await createSmsActivities(impatient, retry.opts).sendSms({
      idempotencyKey: 'k4',
      phone: '79161234567',
      text: TEXT,
    });
    expect(result).toEqual({ status: 'skipped', reason: 'possible_duplicate' });
    expect(smsru.state.sms).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
describe('Telegram', () => {
  const tg = createTelegramEmulator();
  let tgUrl: string;
  beforeAll(async () => {
    tgUrl = await listen(tg.app);
  });
  beforeEach(() => tg.control.reset());
  const KEY = telegramCallbackKey('providers-test-result-secret-0123456789');

  const cfg = (over: Partial<AppConfig['telegram']> = {}): AppConfig['telegram'] => ({
    mode: 'emulator',
    apiUrl: tgUrl,
    botToken: EMULATOR_CREDENTIALS.telegramBotToken,
    chatId: EMULATOR_CREDENTIALS.telegramChatId,
    messagesPerMinute: 20,
    operatorIds: [],
    callbackKey: KEY,
    ...over,
  });
  const alert = (over: Partial<SellerAlert> = {}): SellerAlert => ({
    kind: 'new_lead',
    ref: '203.0.113.7',
    workflowId: 'lead-203.0.113.7',
    name: '<b>Иван</b> _*[',
    phone: '79161234567',
    city: 'Москва & область',
    partner: 'partner "42"',
    site: 'watches.example',
    orderAmount: 125000,
    crmLeadId: 981,
    webUiUrl: 'http://127.0.0.1:8233/namespaces/default/workflows/lead-203.0.113.7',
    ...over,
  });

  test('the alert HTML-escapes user input and reaches the chat as the reader should see it', async () => {
    const { messageId } = await createTelegramActivities(cfg()).notifySellers(alert());

    expect(tg.state.messages).toHaveLength(1);
    const message = tg.state.messages[0]!;
    expect(message).toMatchObject({
      messageId,
      chatId: EMULATOR_CREDENTIALS.telegramChatId,
      parseMode: 'HTML',
    });
    expect(message.disableWebPagePreview).toBe(true);
    expect(message.text).toContain('&lt;b&gt;Иван&lt;/b&gt; _*[');
    expect(message.text).not.toContain('<b>Иван');
    expect(message.text).toContain('partner &quot;42&quot;');
    expect(message.plainText).toContain('🆕 Новая заявка');
    expect(message.plainText).toContain('<b>Иван</b> _*[');
    expect(message.plainText).toContain('Москва & область');
    expect(message.plainText).toContain('+79161234567');
    expect(message.plainText).toContain('#981');
    expect(message.replyMarkup).toBeUndefined();
  });

  test('the emulator refuses HTML Telegram would refuse', () => {
    expect(parseTelegramHtml('<b>Иван</b> &amp; <i>co</i>')).toEqual({ ok: true, text: 'Иван & co' });
    expect(parseTelegramHtml('<script>x</script>').ok).toBe(false);
    expect(parseTelegramHtml('<b>open').ok).toBe(false);
    expect(parseTelegramHtml('<b><i>x</b></i>').ok).toBe(false);
  });

  test('manual handling with actions carries the buttons and the reason', async () => {
    await createTelegramActivities(cfg()).notifySellers(
      alert({ kind: 'manual_handling', reason: 'partner_lookup: invalid token <401>', actions: true }),
    );
    const message = tg.state.messages[0]!;
    expect(message.plainText).toContain('⚠️ Нужна ручная обработка');
    expect(message.plainText).toContain('partner_lookup: invalid token <401>');
    expect(message.replyMarkup).toEqual({
      inline_keyboard: [
        [
          { text: expect.any(String), callback_data: signCallbackData(KEY, 'call_now', '203.0.113.7') },
          { text: expect.any(String), callback_data: signCallbackData(KEY, 'handled', '203.0.113.7') },
        ],
        [{ text: expect.any(String), callback_data: signCallbackData(KEY, 'cancel', '203.0.113.7') }],
      ],
    });
  });

  test('very long fields are cut so the message stays under 4096 characters', async () => {
    const huge = alert({ name: '<'.repeat(5000), reason: '&'.repeat(9000), city: 'x'.repeat(3000) });
    expect(formatSellerAlert(huge).length).toBeLessThanOrEqual(TELEGRAM_MAX_MESSAGE);
    await createTelegramActivities(cfg()).notifySellers(huge);
    expect(tg.state.messages).toHaveLength(1);
  });

  // The outbox's pacing, digests and long retry_after: tests/telegramOutbox.test.ts.
  test('a 429 is waited out for its retry_after and sent once', async () => {
    tg.control.setMode('rate_limit', { times: 1, retryAfter: 1 });
    await createTelegramActivities(cfg()).notifySellers(alert());
    const sends = tg.state.requests.filter((r) => r.method === 'sendMessage');
    expect(sends).toHaveLength(2);
    expect(tg.state.tooManyRequests).toHaveLength(1);
    expect(sends[1]!.at.getTime() - tg.state.tooManyRequests[0]!.at.getTime()).toBeGreaterThanOrEqual(1000);
    expect(tg.state.messages).toHaveLength(1);
  });

  test('a wrong chat or token is non-retryable; an outage is retryable', async () => {
    const chat = await failureOf(createTelegramActivities(cfg({ chatId: '-100999' })).notifySellers(alert()));
    expect(chat).toMatchObject({ type: 'TelegramRequestError', nonRetryable: true });
    expect(chat.message).toMatch(/chat not found/);
    const token = await failureOf(
      createTelegramActivities(cfg({ botToken: '1:WRONG' })).notifySellers(alert()),
    );
    expect(token).toMatchObject({ type: 'TelegramRequestError', nonRetryable: true });
    expect(token.message).not.toContain('WRONG');
    tg.control.setMode('down', { times: 1 });
    const down = await failureOf(createTelegramActivities(cfg()).notifySellers(alert()));
    expect(down).toMatchObject({ type: 'TelegramUnavailable', nonRetryable: false });
    expect(tg.state.messages).toHaveLength(0);
  });

  test('a migrated group is followed to its new supergroup id', async () => {
    tg.control.migrateChat(EMULATOR_CREDENTIALS.telegramChatId, '-1009999999999');
    await createTelegramActivities(cfg()).notifySellers(alert());
    expect(tg.state.messages.map((m) => m.chatId)).toEqual(['-1009999999999']);
  });
});
