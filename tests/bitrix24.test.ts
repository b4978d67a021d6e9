// The Bitrix24 adapter against the emulator over real HTTP: outcomes are read from the portal's
// state, failures from the ApplicationFailure the worker would hand to Temporal.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import { createBitrix24Activities, OAUTH_STATE_FILE, type CrmLeadInput } from '../activities/bitrix24';
import { BITRIX24_EMULATOR_DEFAULTS, createBitrix24Emulator } from '../emulators/bitrix24';

type Bitrix24Config = AppConfig['bitrix24'];

const emulator = createBitrix24Emulator({ rateLimit: false });
const { state, control } = emulator;
let server: Server;
let baseUrl: string;
let dataDir: string;

beforeAll(async () => {
  server = await new Promise<Server>((resolve) => {
    const s = emulator.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  control.reset();
  control.setRateLimit(false);
  // A fresh directory per test is a fresh OAuth session: the adapter keeps one per token file.
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitrix24-test-'));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function webhookConfig(overrides: Partial<Bitrix24Config> = {}): Bitrix24Config {
  return {
    mode: 'emulator',
    auth: { kind: 'webhook', webhookUrl: `${baseUrl}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}` },
    partnerEntity: 'company',
    partnerField: 'UF_CRM_PARTNER_CODE',
    requestsPerSecond: 50,
    ...overrides,
  };
}

function oauthConfig(refreshToken: string = BITRIX24_EMULATOR_DEFAULTS.refreshToken): Bitrix24Config {
  return {
    ...webhookConfig(),
    auth: {
      kind: 'oauth',
      portalUrl: `${baseUrl}/`,
      oauthUrl: `${baseUrl}/`,
      clientId: BITRIX24_EMULATOR_DEFAULTS.clientId,
      clientSecret: BITRIX24_EMULATOR_DEFAULTS.clientSecret,
      refreshToken,
    },
  };
}

const lead: CrmLeadInput = {
  ref: '203.0.113.7#run-1',
  name: 'Иван',
  phone: '79161234567',
  city: 'Казань',
  timezone: 'Europe/Moscow',
  partnerCode: 'watchfan',
  partner: { id: 7, title: 'Watch Fan', code: 'watchfan' },
  site: 'shop.example',
  orderAmount: 15990,
  comment: 'Часы Orient, синий циферблат',
};

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

describe('createCrmLead', () => {
  test('creates the lead with every field in Bitrix24 shape', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(crm.createCrmLead(lead)).resolves.toEqual({ leadId: 1, created: true });

    expect(state.leads).toHaveLength(1);
    expect(state.leads[0]).toMatchObject({
      ID: 1,
      TITLE: 'Заявка с сайта: Иван',
      NAME: 'Иван',
      PHONE: [{ VALUE: '+79161234567', VALUE_TYPE: 'WORK', TYPE_ID: 'PHONE' }],
      ADDRESS_CITY: 'Казань',
      SOURCE_ID: 'WEB',
      SOURCE_DESCRIPTION: 'shop.example',
      UTM_SOURCE: 'watchfan',
      COMPANY_ID: 7,
      OPPORTUNITY: 15990,
      CURRENCY_ID: 'RUB',
      COMMENTS: 'Часы Orient, синий циферблат',
      ORIGINATOR_ID: 'speed-to-lead',
      ORIGIN_ID: '203.0.113.7#run-1',
      STATUS_ID: 'NEW',
    });
    expect(state.requests.map((r) => r.method)).toEqual(['crm.lead.list', 'crm.lead.add']);
    expect(state.requests[1]!.params).toMatchObject({ params: { REGISTER_SONET_EVENT: 'Y' } });
  });

  test('the same ref finds the existing lead instead of adding a second one', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const first = await crm.createCrmLead(lead);
    const again = await crm.createCrmLead({ ...lead, name: 'Иван повторно' });

    expect(again).toEqual({ leadId: first.leadId, created: false });
    expect(state.leads).toHaveLength(1);
    expect(state.requests.filter((r) => r.method === 'crm.lead.add')).toHaveLength(1);

    // A later lead from the same client gets a new ref (new run) and so a new CRM lead.
    await expect(crm.createCrmLead({ ...lead, ref: '203.0.113.7#run-2' })).resolves.toEqual({
      leadId: 2,
      created: true,
    });
  });
});

describe('registerLead', () => {
  test('looks the partner up and adds the lead with its company, in one activity', async () => {
    const id = control.addCompany({ TITLE: 'Watch Fan', UF_CRM_PARTNER_CODE: 'watchfan' });
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { partner: _partner, ...input } = lead;
    const registered = await crm.registerLead(input);
    expect(registered).toEqual({
      leadId: 1,
      created: true,
      partner: { status: 'found', partner: { id, title: 'Watch Fan', code: 'watchfan' } },
    });
    expect(state.leads[0]).toMatchObject({ COMPANY_ID: id, UTM_SOURCE: 'watchfan' });
    expect(state.requests.map((r) => r.method)).toEqual([
      'crm.company.list',
      'crm.lead.list',
      'crm.lead.add',
    ]);
    // Retried (say the answer was lost): the same lead, not a second one.
    await expect(crm.registerLead(input)).resolves.toMatchObject({ leadId: 1, created: false });
    expect(state.leads).toHaveLength(1);
  });

  test('an unknown partner code still adds the lead, without a company', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { partner: _partner, ...input } = lead;
    await expect(crm.registerLead({ ...input, partnerCode: 'nobody' })).resolves.toEqual({
      leadId: 1,
      created: true,
      partner: { status: 'not_found' },
    });
    expect(state.leads[0]!.COMPANY_ID).toBeUndefined();
  });

  test('a portal that is down fails the whole activity as retryable, adding nothing', async () => {
    control.setMode('down');
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { partner: _partner, ...input } = lead;
    const failure = await failureOf(crm.registerLead(input));
    expect(failure.nonRetryable).toBe(false);
    control.setMode('ok');
    expect(state.leads).toHaveLength(0);
  });
});

describe('findPartner', () => {
  test('finds a company by the partner code field, or reports not_found', async () => {
    control.addCompany({ TITLE: 'Other', UF_CRM_PARTNER_CODE: 'other' });
    const id = control.addCompany({ TITLE: 'Watch Fan', UF_CRM_PARTNER_CODE: 'watchfan' });
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });

    await expect(crm.findPartner('watchfan')).resolves.toEqual({
      status: 'found',
      partner: { id, title: 'Watch Fan', code: 'watchfan' },
    });
    await expect(crm.findPartner('nobody')).resolves.toEqual({ status: 'not_found' });
    expect(state.requests[0]).toMatchObject({
      method: 'crm.company.list',
      params: { filter: { UF_CRM_PARTNER_CODE: 'watchfan' }, select: ['ID', 'TITLE', 'UF_CRM_PARTNER_CODE'] },
    });
  });

  test('an empty code is not_found without asking Bitrix24', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(crm.findPartner('  ')).resolves.toEqual({ status: 'not_found' });
    expect(state.requests).toHaveLength(0);
  });

  test('contacts as partners take their title from the name', async () => {
    const id = control.addContact({ NAME: 'Анна', LAST_NAME: 'Петрова', UF_CRM_REF: 'anna' });
    const crm = createBitrix24Activities(
      webhookConfig({ partnerEntity: 'contact', partnerField: 'UF_CRM_REF' }),
      {
        dataDir,
      },
    );
    await expect(crm.findPartner('anna')).resolves.toEqual({
      status: 'found',
      partner: { id, title: 'Анна Петрова', code: 'anna' },
    });
    expect(state.requests[0]!.method).toBe('crm.contact.list');
  });
});

describe('recordCallAttempt', () => {
  test('writes a timeline comment and moves the lead status', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { leadId } = await crm.createCrmLead(lead);

    await crm.recordCallAttempt({ leadId, statusId: 'IN_PROCESS', comment: 'Попытка 1: недозвон' });
    await crm.recordCallAttempt({ leadId, comment: 'Попытка 2: ответил' });

    expect(state.comments).toEqual([
      expect.objectContaining({ ENTITY_ID: leadId, ENTITY_TYPE: 'lead', COMMENT: 'Попытка 1: недозвон' }),
      expect.objectContaining({ ENTITY_ID: leadId, ENTITY_TYPE: 'lead', COMMENT: 'Попытка 2: ответил' }),
    ]);
    expect(state.leads[0]!.STATUS_ID).toBe('IN_PROCESS');
  });

  test('a batch of notes is written in order, and a retry resumes after the last one written', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { leadId } = await crm.createCrmLead(lead);
    const notes = [
      { statusId: 'IN_PROCESS', comment: 'Попытка 1: недозвон' },
      { comment: 'Попытка 2: ответил' },
      { comment: 'SMS отправлено' },
    ];
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(crm.recordCallAttempts, { leadId, notes: notes.slice(0, 2) });
    expect(beats).toContainEqual({ notesDone: 2 });
    expect(state.comments.map((c) => c.COMMENT)).toEqual(['Попытка 1: недозвон', 'Попытка 2: ответил']);
    expect(state.leads[0]!.STATUS_ID).toBe('IN_PROCESS');

    // The same three notes retried after the first two went through (the heartbeat said so).
    const retry = new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { notesDone: 2 } });
    await retry.run(crm.recordCallAttempts, { leadId, notes });
    expect(state.comments.map((c) => c.COMMENT)).toEqual([
      'Попытка 1: недозвон',
      'Попытка 2: ответил',
      'SMS отправлено',
    ]);
  });

  test('a missing lead is a non-retryable request error', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.recordCallAttempt({ leadId: 999, comment: 'x' }));
    expect(failure).toMatchObject({ type: 'Bitrix24RequestError', nonRetryable: true });
  });
});

describe('failures', () => {
  test('an invalid token is a non-retryable Bitrix24AuthError', async () => {
    control.setMode('invalid_token');
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.findPartner('watchfan'));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('invalid_token');
  });

  test('a wrong webhook code is a non-retryable Bitrix24AuthError that does not leak the URL', async () => {
    const crm = createBitrix24Activities(
      webhookConfig({ auth: { kind: 'webhook', webhookUrl: `${baseUrl}/rest/1/wrongsecretcode/` } }),
      { dataDir },
    );
    const failure = await failureOf(crm.createCrmLead(lead));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('INVALID_CREDENTIALS');
    expect(failure.message).not.toContain('wrongsecretcode');
  });

  test.each([
    ['rate_limit', {}, 'QUERY_LIMIT_EXCEEDED'],
    ['down', {}, 'INTERNAL_SERVER_ERROR'],
    ['down', { disconnect: true }, 'network error'],
  ] as const)('%s %j is a retryable Bitrix24Unavailable', async (mode, opts, text) => {
    control.setMode(mode, opts);
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.createCrmLead(lead));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(failure.message).toContain(text);
    expect(state.leads).toHaveLength(0);
  });

  test('a portal slower than the HTTP timeout is retryable', async () => {
    control.setMode('slow', { delayMs: 500 });
    const crm = createBitrix24Activities(webhookConfig(), { dataDir, http: axios.create({ timeout: 100 }) });
    const failure = await failureOf(crm.findPartner('watchfan'));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
  });
});

describe('inside an activity', () => {
  test('heartbeats each call and aborts the HTTP request when the activity is cancelled', async () => {
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(env.run(crm.findPartner, 'watchfan')).resolves.toEqual({ status: 'not_found' });
    expect(beats).toEqual([{ bitrix24: 'crm.company.list' }]);

    control.setMode('slow', { delayMs: 1500 });
    const started = Date.now();
    const pending = env.run(crm.findPartner, 'watchfan');
    setTimeout(() => env.cancel(), 100);
    await expect(pending).rejects.toBeInstanceOf(CancelledFailure);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('rate limits', () => {
  test("the emulator enforces Bitrix24's leaky bucket", async () => {
    control.setRateLimit({ perSecond: 2, burst: 3 });
    const url = `${baseUrl}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}crm.lead.list.json`;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => axios.post(url, {}, { validateStatus: () => true })),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 503, 503]);
    expect(answers.find((a) => a.status === 503)!.data).toEqual({
      error: 'QUERY_LIMIT_EXCEEDED',
      error_description: 'Too many requests',
    });
  });

  test('the adapter paces itself under requestsPerSecond (two at once, then one every 500 ms)', async () => {
    // Measured where it matters, at the portal: when the requests arrived.
    control.setRateLimit(false);
    const crm = createBitrix24Activities(webhookConfig({ requestsPerSecond: 2 }), { dataDir });
    state.requests.length = 0;
    const results = await Promise.all(Array.from({ length: 5 }, () => crm.findPartner('watchfan')));
    expect(results.every((r) => r.status === 'not_found')).toBe(true);
    const arrivals = state.requests.map((r) => r.at).sort((a, b) => a - b);
    expect(arrivals).toHaveLength(5);
    // Five requests within a second would be a burst the portal refuses; paced, they span 1.5 s.
    expect(arrivals[4]! - arrivals[0]!).toBeGreaterThanOrEqual(1400);
    for (let i = 2; i < 5; i++) expect(arrivals[i]! - arrivals[i - 2]!).toBeGreaterThanOrEqual(450);
  });
});

describe('OAuth', () => {
  const tokenFile = () => path.join(dataDir, OAUTH_STATE_FILE);

  test('concurrent calls share one refresh, on start and when the token expires', async () => {
    const crm = createBitrix24Activities(oauthConfig(), { dataDir });
    const ten = () => Promise.all(Array.from({ length: 10 }, (_, i) => crm.findPartner(`code-${i}`)));

    await expect(ten()).resolves.toHaveLength(10);
    expect(state.oauth.refreshes).toBe(1);

    control.expireAccessTokens();
    state.requests.length = 0;
    const results = await ten();
    expect(results.every((r) => r.status === 'not_found')).toBe(true);
    expect(state.oauth.refreshes).toBe(2);
    // Each call: one refused with expired_token, one retried with the new token.
    expect(state.requests).toHaveLength(20);
    expect(state.requests.every((r) => !('auth' in (r.params as object)))).toBe(true);

    const stored = JSON.parse(fs.readFileSync(tokenFile(), 'utf8')) as { refreshToken: string };
    expect(stored.refreshToken).toBe(state.oauth.refreshToken);
    expect(stored.refreshToken).not.toBe(BITRIX24_EMULATOR_DEFAULTS.refreshToken);
    expect(fs.statSync(tokenFile()).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dataDir)).toEqual([OAUTH_STATE_FILE]);
  });

  test('after a restart the persisted refresh token is used, not the spent configured one', async () => {
    await createBitrix24Activities(oauthConfig(), { dataDir }).createCrmLead(lead);
    expect(state.oauth.refreshes).toBe(1);

    // A fresh module registry is a fresh process as far as the adapter's in-memory state goes.
    let restarted: typeof import('../activities/bitrix24') | undefined;
    await jest.isolateModulesAsync(async () => {
      restarted = await import('../activities/bitrix24');
    });
    const crm = restarted!.createBitrix24Activities(oauthConfig(), { dataDir });
    await expect(crm.createCrmLead(lead)).resolves.toEqual({ leadId: 1, created: false });
    expect(state.oauth.refreshes).toBe(2);
    expect(JSON.parse(fs.readFileSync(tokenFile(), 'utf8'))).toMatchObject({
      refreshToken: state.oauth.refreshToken,
    });
  });

  test('a refused refresh token is a non-retryable Bitrix24AuthError without the token in it', async () => {
    const crm = createBitrix24Activities(oauthConfig('revoked-refresh-token'), { dataDir });
    const failure = await failureOf(crm.findPartner('watchfan'));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('invalid_grant');
    expect(failure.message).not.toContain('revoked-refresh-token');
    expect(state.requests).toHaveLength(0);
  });
});

describe('emulator wire format', () => {
  const webhook = () => `${baseUrl}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`;

  test('accepts form-encoded nested fields and answers lists with total and time', async () => {
    const form = new URLSearchParams({ 'fields[NAME]': 'Олег', 'fields[ORIGIN_ID]': 'r1' }).toString();
    const added = await axios.post(`${webhook()}crm.lead.add`, form);
    expect(added.data).toMatchObject({ result: 1, time: { start: expect.any(Number) } });

    const listed = await axios.post(`${webhook()}crm.lead.list.json`, {
      filter: { ORIGIN_ID: 'r1' },
      select: ['ID', 'NAME'],
    });
    expect(listed.data).toMatchObject({ result: [{ ID: '1', NAME: 'Олег' }], total: 1 });
  });

  test('answers unknown methods and expired tokens as Bitrix24 does', async () => {
    const unknown = await axios.post(`${webhook()}crm.nothing.json`, {}, { validateStatus: () => true });
    expect(unknown.status).toBe(404);
    expect(unknown.data).toMatchObject({ error: 'ERROR_METHOD_NOT_FOUND' });

    const token = await axios.get(`${baseUrl}/oauth/token/`, {
      params: {
        grant_type: 'refresh_token',
        client_id: BITRIX24_EMULATOR_DEFAULTS.clientId,
        client_secret: BITRIX24_EMULATOR_DEFAULTS.clientSecret,
        refresh_token: BITRIX24_EMULATOR_DEFAULTS.refreshToken,
      },
    });
    expect(token.data).toMatchObject({ expires_in: 3600, access_token: expect.any(String) });
    control.expireAccessTokens();
    const expired = await axios.post(
      `${baseUrl}/rest/crm.lead.list.json?auth=${token.data.access_token}`,
      {},
      { validateStatus: () => true },
    );
    expect(expired.status).toBe(401);
    expect(expired.data).toEqual({
      error: 'expired_token',
      error_description: 'The access token provided has expired.',
    });
  });
});
