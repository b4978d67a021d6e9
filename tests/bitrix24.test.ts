// The Bitrix24 activities and REST client against the emulator over real HTTP: outcomes are read from the portal's
// state, failures from the ApplicationFailure the worker would hand to Temporal.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import qs from 'qs';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import { z } from 'zod';
import {
  createBitrix24Activities,
  createBitrix24Client,
  OAUTH_STATE_FILE,
  type CrmLeadInput,
} from '../activities/bitrix24';
import { Rows } from '../activities/bitrix24/client';
import { BITRIX24_EMULATOR_DEFAULTS, createBitrix24Emulator } from '../emulators/bitrix24';
import { eventually } from './support/http';
import { listenForTests } from './support/listen';
import { VirtualClock } from './support/virtualClock';

type Bitrix24Config = AppConfig['bitrix24'];

// The portal's clock moves only when a test moves it: its leaky bucket and the arrival times it
// records then come out exact. Adapters pace on the real clock unless a test gives them this one.
const clock = new VirtualClock();
const emulator = createBitrix24Emulator({ rateLimit: false, now: clock.now });
const { state, control } = emulator;
const portal = listenForTests(emulator.app);
let dataDir: string;
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
    auth: { kind: 'webhook', webhookUrl: `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}` },
    partnerEntity: 'company',
    partnerField: 'UF_CRM_PARTNER_CODE',
    requestsPerSecond: 50,
    burst: 50,
    partnerCacheTtlMs: 0,
    ...overrides,
  };
}

function oauthConfig(refreshToken: string = BITRIX24_EMULATOR_DEFAULTS.refreshToken): Bitrix24Config {
  return {
    ...webhookConfig(),
    auth: {
      kind: 'oauth',
      portalUrl: `${portal()}/`,
      oauthUrl: `${portal()}/`,
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
  site: 'shop.example',
  orderAmount: 15990,
  comment: 'Часы Orient, синий циферблат',
};
const { partnerCode: _partnerCode, ...leadWithoutPartner } = lead;

/** The commands Bitrix24 ran, in order: a batch request's own, one by one. */
const commands = () => state.requests.flatMap((r) => r.commands ?? [r.method]);
/** The params of each command in the `batch` request `i`, as Bitrix24 reads them. */
function batchParams(i: number): Record<string, unknown>[] {
  const cmd = (state.requests[i]!.params as { cmd: Record<string, string> }).cmd;
  return Object.values(cmd).map((c) => qs.parse(c.slice(c.indexOf('?') + 1)) as Record<string, unknown>);
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

describe('registerLead', () => {
  test('looks the partner up and adds the lead with every field in Bitrix24 shape, in one activity', async () => {
    control.addCompany({ TITLE: 'Other', UF_CRM_PARTNER_CODE: 'other' });
    const id = control.addCompany({ TITLE: 'Watch Fan', UF_CRM_PARTNER_CODE: 'watchfan' });
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(crm.registerLead(lead)).resolves.toEqual({
      leadId: 1,
      created: true,
      partner: { status: 'found', partner: { id, title: 'Watch Fan', code: 'watchfan' } },
    });

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
      // As a batch command's query string carries them: Bitrix24 keeps every value as a string.
      COMPANY_ID: String(id),
      OPPORTUNITY: '15990',
      CURRENCY_ID: 'RUB',
      COMMENTS: 'Часы Orient, синий циферблат',
      ORIGINATOR_ID: 'speed-to-lead',
      ORIGIN_ID: '203.0.113.7#run-1',
      STATUS_ID: 'NEW',
    });
    // Two requests: the look-ups together, then the add (only once the look-up found no lead).
    expect(state.requests.map((r) => r.commands)).toEqual([
      ['crm.lead.list', 'crm.company.list'],
      ['crm.lead.add'],
    ]);
    expect(batchParams(0)).toEqual([
      {
        filter: { ORIGINATOR_ID: 'speed-to-lead', '@ORIGIN_ID': ['203.0.113.7#run-1'] },
        select: ['ID', 'ORIGIN_ID'],
        order: { ID: 'ASC' },
      },
      {
        filter: { '@UF_CRM_PARTNER_CODE': ['watchfan'] },
        select: ['ID', 'TITLE', 'UF_CRM_PARTNER_CODE'],
        order: { ID: 'ASC' },
      },
    ]);
    expect(batchParams(1)[0]).toMatchObject({ params: { REGISTER_SONET_EVENT: 'Y' } });
  });

  test('the same ref finds the existing lead instead of adding a second one', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const first = await crm.registerLead(leadWithoutPartner);
    // Retried (say the answer was lost): the same lead, not a second one.
    const again = await crm.registerLead({ ...leadWithoutPartner, name: 'Иван повторно' });

    expect(again).toEqual({ leadId: first.leadId, created: false });
    expect(state.leads).toHaveLength(1);
    expect(commands().filter((m) => m === 'crm.lead.add')).toHaveLength(1);

    // A later lead from the same client gets a new ref (new run) and so a new CRM lead.
    await expect(crm.registerLead({ ...leadWithoutPartner, ref: '203.0.113.7#run-2' })).resolves.toEqual({
      leadId: 2,
      created: true,
    });
  });

  test('an unknown partner code still adds the lead, without a company', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(crm.registerLead({ ...lead, partnerCode: 'nobody' })).resolves.toEqual({
      leadId: 1,
      created: true,
      partner: { status: 'not_found' },
    });
    expect(state.leads[0]!.COMPANY_ID).toBeUndefined();
  });

  test('a blank partner code is not_found without asking Bitrix24 for it', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    await expect(crm.registerLead({ ...lead, partnerCode: '  ' })).resolves.toMatchObject({
      partner: { status: 'not_found' },
    });
    expect(commands()).toEqual(['crm.lead.list', 'crm.lead.add']);
  });

  test('contacts as partners take their title from the name', async () => {
    const id = control.addContact({ NAME: 'Анна', LAST_NAME: 'Петрова', UF_CRM_REF: 'anna' });
    const crm = createBitrix24Activities(
      webhookConfig({ partnerEntity: 'contact', partnerField: 'UF_CRM_REF' }),
      {
        dataDir,
      },
    );
    await expect(crm.registerLead({ ...lead, partnerCode: 'anna' })).resolves.toMatchObject({
      partner: { status: 'found', partner: { id, title: 'Анна Петрова', code: 'anna' } },
    });
    expect(commands()[1]).toBe('crm.contact.list');
  });

  test('a portal that is down fails the whole activity as retryable, adding nothing', async () => {
    control.setMode('down');
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.registerLead(lead));
    expect(failure.nonRetryable).toBe(false);
    control.setMode('ok');
    expect(state.leads).toHaveLength(0);
  });
});

describe('recordCallAttempts', () => {
  test('writes timeline comments and moves the lead status', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { leadId } = await crm.registerLead(leadWithoutPartner);

    await crm.recordCallAttempts({
      leadId,
      notes: [{ statusId: 'IN_PROCESS', comment: 'Попытка 1: недозвон' }, { comment: 'Попытка 2: ответил' }],
    });

    expect(state.comments).toEqual([
      expect.objectContaining({ ENTITY_ID: leadId, ENTITY_TYPE: 'lead', COMMENT: 'Попытка 1: недозвон' }),
      expect.objectContaining({ ENTITY_ID: leadId, ENTITY_TYPE: 'lead', COMMENT: 'Попытка 2: ответил' }),
    ]);
    expect(state.leads[0]!.STATUS_ID).toBe('IN_PROCESS');
    // The status goes first: a retry after a failed update cannot leave a second comment.
    expect(commands().slice(-3)).toEqual([
      'crm.lead.update',
      'crm.timeline.comment.add',
      'crm.timeline.comment.add',
    ]);
  });

  test('a retry resumes after the last note written', async () => {
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const { leadId } = await crm.registerLead(leadWithoutPartner);
    const notes = [
      { statusId: 'IN_PROCESS', comment: 'Попытка 1: недозвон' },
      { comment: 'Попытка 2: ответил' },
      { comment: 'SMS отправлено' },
    ];
    const env = new MockActivityEnvironment();
    const beats: unknown[] = [];
    env.on('heartbeat', (d: unknown) => beats.push(d));
    await env.run(crm.recordCallAttempts, { leadId, notes: notes.slice(0, 2) });
    // The progress after each note but the last: then the activity completes instead.
    expect(beats).toEqual([{ notesDone: 1 }]);
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
    const failure = await failureOf(crm.recordCallAttempts({ leadId: 999, notes: [{ comment: 'x' }] }));
    expect(failure).toMatchObject({ type: 'Bitrix24RequestError', nonRetryable: true });
  });
});

describe('failures', () => {
  test('an invalid token is a non-retryable Bitrix24AuthError', async () => {
    control.setMode('invalid_token');
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.registerLead(lead));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('invalid_token');
  });

  test('a wrong webhook code is a non-retryable Bitrix24AuthError that does not leak the URL', async () => {
    const crm = createBitrix24Activities(
      webhookConfig({ auth: { kind: 'webhook', webhookUrl: `${portal()}/rest/1/wrongsecretcode/` } }),
      { dataDir },
    );
    const failure = await failureOf(crm.registerLead(leadWithoutPartner));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('INVALID_CREDENTIALS');
    expect(failure.message).not.toContain('wrongsecretcode');
  });

  // QUERY_LIMIT_EXCEEDED is waited out, not failed: tests/bitrix24Batch.test.ts.
  test.each([
    ['down', {}, 'INTERNAL_SERVER_ERROR'],
    ['down', { disconnect: true }, 'network error'],
  ] as const)('%s %j is a retryable Bitrix24Unavailable', async (mode, opts, text) => {
    control.setMode(mode, opts);
    const crm = createBitrix24Activities(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.registerLead(leadWithoutPartner));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(failure.message).toContain(text);
    expect(failure.message).not.toContain(EMULATOR_CREDENTIALS.bitrix24WebhookPath);
    expect(state.leads).toHaveLength(0);
  });

  test('a portal slower than the HTTP timeout is retryable', async () => {
    control.setMode('slow');
    const crm = createBitrix24Activities(webhookConfig(), { dataDir, http: axios.create({ timeout: 100 }) });
    const failure = await failureOf(crm.registerLead(lead));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(failure.message).toMatch(/batch: no answer in time/);
  });

  test('an answer of another shape than the method gives is refused, not passed on', async () => {
    const crm = createBitrix24Client(webhookConfig(), { dataDir });
    const failure = await failureOf(crm.call('crm.lead.list', {}, z.boolean()));
    expect(failure).toMatchObject({ type: 'Bitrix24RequestError', nonRetryable: true });
    expect(failure.message).toContain('unexpected answer');
  });
});

describe('inside an activity', () => {
  test('a cancelled item leaves the queue unsent', async () => {
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    let waiting = 0;
    const metrics = { crmLeadsWaiting: { set: (n: number) => (waiting = n) } };
    const crm = createBitrix24Activities(webhookConfig(), {
      dataDir,
      http: axios.create({ timeout: 1000 }),
      metrics,
    });
    await expect(env.run(crm.registerLead, lead)).resolves.toMatchObject({ leadId: 1 });

    // The portal holds its answer: one request is out, and the next lead waits for it in the queue.
    control.setMode('slow');
    state.requests.length = 0;
    const blocker = crm.registerLead({ ...leadWithoutPartner, ref: 'blocker' });
    await eventually(() => expect(state.requests).toHaveLength(1), 20_000, 5);
    const pending = env.run(crm.registerLead, { ...lead, ref: 'another' });
    // Queued behind the blocker, which is still out.
    await eventually(() => expect(waiting).toBe(2), 20_000, 5);
    env.cancel();
    await expect(pending).rejects.toBeInstanceOf(CancelledFailure);
    // The request out times out for the lead it carries; the cancelled lead is never sent.
    expect((await failureOf(blocker)).nonRetryable).toBe(false);
    control.setMode('ok');
    await expect(crm.registerLead({ ...leadWithoutPartner, ref: 'after' })).resolves.toMatchObject({
      created: true,
    });
    expect(JSON.stringify(state.requests)).not.toContain('another');
    expect(state.leads.map((l) => l.ORIGIN_ID)).toEqual([lead.ref, 'after']);
  });
});

describe('rate limits', () => {
  test("the emulator enforces Bitrix24's leaky bucket", async () => {
    control.setRateLimit({ perSecond: 2, burst: 3 });
    const url = `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}crm.lead.list.json`;
    const post = () => axios.post(url, {}, { validateStatus: () => true });
    const answers = await Promise.all(Array.from({ length: 5 }, post));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 503, 503]);
    expect(answers.find((a) => a.status === 503)!.data).toEqual({
      error: 'QUERY_LIMIT_EXCEEDED',
      error_description: 'Too many requests',
    });
    // Drained at 2/s: 499 ms later the bucket is still full, 500 ms later one more fits.
    await clock.advance(499);
    expect((await post()).status).toBe(503);
    await clock.advance(1);
    expect((await post()).status).toBe(200);
    expect((await post()).status).toBe(503);
  });

  test('the client paces itself under requestsPerSecond (two at once, then one every 500 ms)', async () => {
    // Observed where it matters, at the portal: when each request arrived, on the portal's clock,
    // and that a bucket of exactly that size refuses none of them.
    control.setRateLimit({ perSecond: 2, burst: 2 });
    const crm = createBitrix24Client(webhookConfig({ requestsPerSecond: 2 }), { dataDir, clock });
    const t0 = clock.now();
    const arrivals = () => state.requests.map((r) => r.at - t0);
    const all = Promise.all(Array.from({ length: 5 }, () => crm.call('crm.lead.list', {}, Rows)));

    await eventually(() => expect(arrivals()).toEqual([0, 0]), 20_000, 5);
    expect(clock.pending()).toEqual([500, 1000, 1500]);
    for (const expected of [500, 1000, 1500]) {
      await clock.advance(499);
      expect(clock.pending()[0]).toBe(1); // the next one is still held back
      expect(arrivals()).toHaveLength(expected / 500 + 1);
      await clock.advance(1);
      await eventually(() => expect(arrivals().at(-1)).toBe(expected), 20_000, 5);
    }
    await expect(all).resolves.toEqual(Array(5).fill([]));
    expect(arrivals()).toEqual([0, 0, 500, 1000, 1500]);
  });
});

describe('OAuth', () => {
  const tokenFile = () => path.join(dataDir, OAUTH_STATE_FILE);

  test('concurrent calls share one refresh, on start and when the token expires', async () => {
    const crm = createBitrix24Client(oauthConfig(), { dataDir });
    const ten = () => Promise.all(Array.from({ length: 10 }, () => crm.call('crm.lead.list', {}, Rows)));

    await expect(ten()).resolves.toHaveLength(10);
    expect(state.oauth.refreshes).toBe(1);

    control.expireAccessTokens();
    state.requests.length = 0;
    await expect(ten()).resolves.toEqual(Array(10).fill([]));
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
    await createBitrix24Activities(oauthConfig(), { dataDir }).registerLead(leadWithoutPartner);
    expect(state.oauth.refreshes).toBe(1);

    // A fresh module registry is a fresh process as far as the adapter's in-memory state goes.
    let restarted: typeof import('../activities/bitrix24') | undefined;
    await jest.isolateModulesAsync(async () => {
      restarted = await import('../activities/bitrix24');
    });
    const crm = restarted!.createBitrix24Activities(oauthConfig(), { dataDir });
    // The stored access token is still valid: no refresh is spent on it.
    await expect(crm.registerLead(leadWithoutPartner)).resolves.toEqual({ leadId: 1, created: false });
    expect(state.oauth.refreshes).toBe(1);
    control.expireAccessTokens();
    await expect(crm.registerLead(leadWithoutPartner)).resolves.toEqual({ leadId: 1, created: false });
    expect(state.oauth.refreshes).toBe(2);
    expect(JSON.parse(fs.readFileSync(tokenFile(), 'utf8'))).toMatchObject({
      refreshToken: state.oauth.refreshToken,
    });
  });

  /** A worker process of tests/support/oauthRace.ts on this emulator and DATA_DIR. */
  function racer() {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'tests/support/oauthRace.ts', portal(), dataDir],
      { cwd: path.join(__dirname, '..'), stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    const lines = new Promise<string[]>((resolve) => child.once('exit', () => resolve(out.split('\n'))));
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.startsWith('ready\n')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`racer exited (${code}) before it was ready`)));
    });
    return {
      ready,
      go: () => child.stdin.write('go\n'),
      result: async () => JSON.parse((await lines)[1]!) as unknown,
    };
  }

  test('two worker processes finding the access token expired at once: both carry on, one refresh', async () => {
    // Both workers start with the token of an earlier run, which expires for both at the same moment.
    await createBitrix24Client(oauthConfig(), { dataDir }).call('crm.lead.list', {}, Rows);
    expect(state.oauth.refreshes).toBe(1);
    control.expireAccessTokens();

    const racers = [racer(), racer()];
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.go();
    expect(await Promise.all(racers.map((r) => r.result()))).toEqual([
      { ok: true, rows: 0 },
      { ok: true, rows: 0 },
    ]);
    expect(state.oauth).toMatchObject({ refreshes: 2, invalidGrants: 0 });
    const stored = JSON.parse(fs.readFileSync(tokenFile(), 'utf8')) as { refreshToken: string };
    expect(stored.refreshToken).toBe(state.oauth.refreshToken);
    // The lock is gone with its holder's refresh.
    expect(fs.readdirSync(dataDir)).toEqual([OAUTH_STATE_FILE]);
  }, 30_000);

  test('invalid_grant after another process rotated the token meanwhile: the stored one is retried once', async () => {
    // Another host's worker, sharing the volume but not the lock, rotates the token while our
    // refresh request is on its way (armed below), and stores its rotation in the shared file.
    let rotateFirst = false;
    const http = axios.create();
    http.interceptors.request.use(async (req) => {
      if (rotateFirst && String(req.url).includes('/oauth/token')) {
        rotateFirst = false;
        const { data } = await axios.get(`${portal()}/oauth/token/`, {
          params: {
            grant_type: 'refresh_token',
            client_id: BITRIX24_EMULATOR_DEFAULTS.clientId,
            client_secret: BITRIX24_EMULATOR_DEFAULTS.clientSecret,
            refresh_token: state.oauth.refreshToken,
          },
        });
        const stored = JSON.parse(fs.readFileSync(tokenFile(), 'utf8')) as Record<string, unknown>;
        fs.writeFileSync(
          tokenFile(),
          JSON.stringify({ ...stored, refreshToken: (data as { refresh_token: string }).refresh_token }),
        );
      }
      return req;
    });
    const crm = createBitrix24Client(oauthConfig(), { dataDir, http });
    await crm.call('crm.lead.list', {}, Rows);
    control.expireAccessTokens();
    rotateFirst = true;
    await expect(crm.call('crm.lead.list', {}, Rows)).resolves.toEqual([]);
    // Ours, the other's, ours again with the token it stored; the spent one was refused once.
    expect(state.oauth).toMatchObject({ refreshes: 3, invalidGrants: 1 });
    expect(JSON.parse(fs.readFileSync(tokenFile(), 'utf8'))).toMatchObject({
      refreshToken: state.oauth.refreshToken,
    });
  });

  test('a lock left by a process that died holding it is taken over', async () => {
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((resolve) => dead.once('exit', resolve));
    fs.writeFileSync(
      `${tokenFile()}.lock`,
      JSON.stringify({ host: os.hostname(), pid: dead.pid, at: Date.now() }),
    );
    await expect(
      createBitrix24Client(oauthConfig(), { dataDir }).call('crm.lead.list', {}, Rows),
    ).resolves.toEqual([]);
    expect(state.oauth.refreshes).toBe(1);
    expect(fs.readdirSync(dataDir)).toEqual([OAUTH_STATE_FILE]);
  });

  test('invalid_grant with no other token stored is final', async () => {
    const crm = createBitrix24Client(oauthConfig(), { dataDir });
    await crm.call('crm.lead.list', {}, Rows);
    // Spent elsewhere, and nothing stored where we can read it.
    await axios.get(`${portal()}/oauth/token/`, {
      params: {
        grant_type: 'refresh_token',
        client_id: BITRIX24_EMULATOR_DEFAULTS.clientId,
        client_secret: BITRIX24_EMULATOR_DEFAULTS.clientSecret,
        refresh_token: state.oauth.refreshToken,
      },
    });
    control.expireAccessTokens();
    const failure = await failureOf(crm.call('crm.lead.list', {}, Rows));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(state.oauth.invalidGrants).toBe(1);
  });

  test('a refused refresh token is a non-retryable Bitrix24AuthError without the token in it', async () => {
    const crm = createBitrix24Activities(oauthConfig('revoked-refresh-token'), { dataDir });
    const failure = await failureOf(crm.registerLead(lead));
    expect(failure).toMatchObject({ type: 'Bitrix24AuthError', nonRetryable: true });
    expect(failure.message).toContain('invalid_grant');
    expect(failure.message).not.toContain('revoked-refresh-token');
    expect(state.requests).toHaveLength(0);
  });
});

describe('emulator wire format', () => {
  const webhook = () => `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`;

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

    const token = await axios.get(`${portal()}/oauth/token/`, {
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
      `${portal()}/rest/crm.lead.list.json?auth=${token.data.access_token}`,
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
