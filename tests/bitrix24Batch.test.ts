// The CRM batcher against the emulator's real bucket (50 at once, 2/s) and its `batch` method:
// many leads in few requests, the limit answers waited out or failed as they must, and every lead
// and note written exactly once. The portal and the batcher share a virtual clock, so the bucket
// and the holds come out exact however busy the machine is.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios from 'axios';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import {
  createBitrix24Activities,
  createBitrix24Batcher,
  limitNameOf,
  type CrmLeadInput,
} from '../activities/bitrix24';
import { BITRIX24_EMULATOR_DEFAULTS, createBitrix24Emulator } from '../emulators/bitrix24';
import { openSharedLimitUncached } from '../support/sharedLimit';
import { eventually } from './support/http';
import { listenForTests } from './support/listen';
import { VirtualClock } from './support/virtualClock';

type Bitrix24Config = AppConfig['bitrix24'];

let clock = new VirtualClock();
const emulator = createBitrix24Emulator({ now: () => clock.now() });
const { state, control } = emulator;
const portal = listenForTests(emulator.app);
let dataDir: string;
beforeEach(() => {
  // A clock of its own per test: a batcher (and its budget) of its own.
  clock = new VirtualClock();
  control.reset();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bitrix24-batch-'));
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function config(overrides: Partial<Bitrix24Config> = {}): Bitrix24Config {
  return {
    mode: 'emulator',
    auth: { kind: 'webhook', webhookUrl: `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}` },
    partnerEntity: 'company',
    partnerField: 'UF_CRM_PARTNER_CODE',
    requestsPerSecond: BITRIX24_EMULATOR_DEFAULTS.rateLimit.perSecond,
    burst: BITRIX24_EMULATOR_DEFAULTS.rateLimit.burst,
    partnerCacheTtlMs: 60_000,
    ...overrides,
  };
}

const lead = (ref: string, partnerCode?: string): CrmLeadInput => ({
  ref,
  name: 'Иван',
  phone: '79161234567',
  ...(partnerCode ? { partnerCode } : {}),
});
const commands = () => state.requests.flatMap((r) => r.commands ?? [r.method]);
const refused = () => state.requests.filter((r) => r.status !== 200);

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected the call to fail');
}

/**
 * Runs the virtual clock until `promise` settles: whenever something sleeps on it, on to the
 * soonest wake-up, and never while a request is out (HTTP runs in real time), so that what the
 * portal sees arrive is exactly what the batcher sent when.
 */
async function driveUntil<T>(promise: Promise<T>, maxSteps = 20_000): Promise<T> {
  let settled = false;
  const watched = promise.finally(() => (settled = true));
  watched.catch(() => undefined);
  for (let i = 0; i < maxSteps && !settled; i++) {
    const next = clock.pending()[0];
    if (next === undefined) await new Promise((resolve) => setTimeout(resolve, 2));
    else await clock.advance(next);
  }
  return watched;
}

describe('a burst of leads', () => {
  test('200 at once: each lead exactly once, in a handful of batch requests, never a 503', async () => {
    const id = control.addCompany({ TITLE: 'Watch Fan', UF_CRM_PARTNER_CODE: 'watchfan' });
    const waiting: number[] = [];
    const observed: number[] = [];
    const metrics = {
      crmLeadsWaiting: { set: (n: number) => waiting.push(n) },
      intakeToCrmLead: { observe: (s: number) => observed.push(s) },
    };
    const crm = createBitrix24Activities(config(), { dataDir, clock, metrics });
    const refs = Array.from({ length: 200 }, (_, i) => `198.51.100.${i}#run`);
    const results = await Promise.all(
      refs.map((ref, i) =>
        crm.registerLead({ ...lead(ref, i % 2 ? 'watchfan' : undefined), receivedAt: Date.now() }),
      ),
    );

    expect(results.every((r) => r.created)).toBe(true);
    expect(new Set(results.map((r) => r.leadId)).size).toBe(200);
    expect(results[1]!.partner).toEqual({
      status: 'found',
      partner: { id, title: 'Watch Fan', code: 'watchfan' },
    });
    expect(state.leads.map((l) => l.ORIGIN_ID).sort()).toEqual([...refs].sort());
    expect(state.requests.every((r) => r.method === 'batch')).toBe(true);
    expect(state.requests.length).toBeLessThanOrEqual(Math.ceil(200 / 48) + 3);
    expect(refused()).toEqual([]);
    expect(state.requests.every((r) => r.commands!.length <= 50)).toBe(true);
    // One partner look-up served all hundred leads that named the partner.
    expect(commands().filter((m) => m === 'crm.company.list')).toHaveLength(1);
    expect(Math.max(...waiting)).toBe(200);
    expect(waiting.at(-1)).toBe(0);
    expect(observed).toHaveLength(200);
    expect(observed.every((s) => s >= 0)).toBe(true);
  });

  test('past the burst the batcher waits for the bucket instead of meeting a 503', async () => {
    control.setRateLimit({ perSecond: 2, burst: 2 });
    const crm = createBitrix24Activities(config({ burst: 2 }), { dataDir, clock });
    // One lead after another: two requests each, so the third request must wait half a second.
    const all = (async () => {
      for (const ref of ['a', 'b', 'c']) await crm.registerLead(lead(ref));
    })();
    await driveUntil(all);
    expect(state.leads.map((l) => l.ORIGIN_ID)).toEqual(['a', 'b', 'c']);
    expect(state.requests).toHaveLength(6);
    expect(refused()).toEqual([]);
    const t0 = state.requests[0]!.at;
    // 2 at once, then one every 500 ms.
    expect(state.requests.map((r) => r.at - t0)).toEqual([0, 0, 500, 1000, 1500, 2000]);
  });

  test('an IN look-up whose page is full of older duplicates reads the next page', async () => {
    control.setRateLimit(false);
    const webhook = `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`;
    for (let i = 0; i < 60; i++) {
      await axios.post(`${webhook}crm.lead.add.json`, {
        fields: { ORIGINATOR_ID: 'speed-to-lead', ORIGIN_ID: 'dup' },
      });
    }
    state.requests.length = 0;
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const [dup, fresh] = await Promise.all([crm.registerLead(lead('dup')), crm.registerLead(lead('fresh'))]);
    expect(dup).toEqual({ leadId: 1, created: false });
    expect(fresh).toEqual({ leadId: 61, created: true });
    expect(state.leads.filter((l) => l.ORIGIN_ID === 'fresh')).toHaveLength(1);
    const cmds = state.requests.flatMap((r) =>
      Object.values((r.params as { cmd: Record<string, string> }).cmd),
    );
    expect(cmds.filter((c) => c.startsWith('crm.lead.list') && c.includes('start=50'))).toHaveLength(1);
  });
});

describe('idempotency', () => {
  test('an answer lost after the add: the retry finds the lead instead of adding a second', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.setMode('lose_answer', { method: 'crm.lead.add', times: 1 });
    const failure = await failureOf(crm.registerLead(lead('lost')));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(state.leads).toHaveLength(1);

    await expect(crm.registerLead(lead('lost'))).resolves.toEqual({ leadId: 1, created: false });
    expect(state.leads).toHaveLength(1);
    expect(commands().filter((m) => m === 'crm.lead.add')).toHaveLength(1);
  });

  test('the same ref queued twice (a retry while the first attempt waits) is one lead', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const [a, b] = await Promise.all([crm.registerLead(lead('twice')), crm.registerLead(lead('twice'))]);
    expect(a).toEqual(b);
    expect(state.leads).toHaveLength(1);
  });
});

describe('cancellation', () => {
  test('cancelling an activity whose item is out does not abort the request the others ride in', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.setMode('slow', { delayMs: 300 });
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    const cancelled = env.run(crm.registerLead, lead('cancelled'));
    const other = crm.registerLead(lead('other'));
    await eventually(() => expect(state.requests).toHaveLength(1), 20_000, 5);
    env.cancel();
    await expect(cancelled).rejects.toBeInstanceOf(CancelledFailure);
    control.setMode('ok');
    await expect(other).resolves.toMatchObject({ created: true });
    expect(state.requests[0]).toMatchObject({ status: 200, commands: ['crm.lead.list'] });
    expect(state.requests[0]!.abandoned).toBeUndefined();
    // Its look-up was out; found nothing, it is not added for an activity that is gone.
    expect(state.leads.map((l) => l.ORIGIN_ID)).toEqual(['other']);
  });
});

describe('partner cache', () => {
  test('found and not-found codes are reused within the TTL and asked again after it', async () => {
    control.addCompany({ TITLE: 'Watch Fan', UF_CRM_PARTNER_CODE: 'watchfan' });
    const crm = createBitrix24Activities(config({ partnerCacheTtlMs: 60_000 }), { dataDir, clock });
    const partnerLookups = () => commands().filter((m) => m === 'crm.company.list').length;

    await crm.registerLead(lead('1', 'watchfan'));
    await crm.registerLead(lead('2', 'nobody'));
    expect(partnerLookups()).toBe(2);
    await clock.advance(59_999);
    await expect(crm.registerLead(lead('3', 'watchfan'))).resolves.toMatchObject({
      partner: { status: 'found' },
    });
    await expect(crm.registerLead(lead('4', 'nobody'))).resolves.toMatchObject({
      partner: { status: 'not_found' },
    });
    expect(partnerLookups()).toBe(2);

    await clock.advance(1);
    await crm.registerLead(lead('5', 'watchfan'));
    await crm.registerLead(lead('6', 'nobody'));
    expect(partnerLookups()).toBe(4);
    expect(state.leads.map((l) => l.COMPANY_ID)).toEqual(['1', undefined, '1', undefined, '1', undefined]);
  });

  test('holds only the codes seen within the TTL, however many distinct codes come', async () => {
    const crm = createBitrix24Batcher(config({ partnerCacheTtlMs: 60_000 }), { dataDir, clock });
    /** After `ms`, a lead with partner `code`; then how many codes the cache holds. */
    const cachedAfterLead = async (ms: number, ref: string, code: string) => {
      await clock.advance(ms);
      await driveUntil(crm.registerLead(lead(ref, code)));
      return crm.partnersCached();
    };
    await cachedAfterLead(0, 'a1', 'early-1');
    expect(await cachedAfterLead(0, 'a2', 'early-2')).toBe(2);
    expect(await cachedAfterLead(40_000, 'b1', 'late-1')).toBe(3);
    // Past the early codes' TTL: the next look-up drops them, the late one stays.
    expect(await cachedAfterLead(40_000, 'c1', 'later-1')).toBe(2);
    // A code asked again after it expired is cached once, at its new place in the expiry order.
    expect(await cachedAfterLead(40_000, 'b2', 'late-1')).toBe(2);
    expect(await cachedAfterLead(40_000, 'd1', 'last-1')).toBe(2);
  });

  test('a TTL of 0 asks Bitrix24 every time', async () => {
    const crm = createBitrix24Activities(config({ partnerCacheTtlMs: 0 }), { dataDir, clock });
    await crm.registerLead(lead('1', 'nobody'));
    await crm.registerLead(lead('2', 'nobody'));
    expect(commands().filter((m) => m === 'crm.company.list')).toHaveLength(2);
  });
});

describe('limit answers', () => {
  test('QUERY_LIMIT_EXCEEDED is waited out and the same work sent again, no failure', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.setMode('rate_limit', { times: 2 });
    const done = crm.registerLead(lead('patient'));
    await expect(driveUntil(done)).resolves.toEqual({ leadId: 1, created: true });
    expect(state.requests.map((r) => r.status)).toEqual([503, 503, 200, 200]);
    // At least one drain step (1/perSecond) between a refusal and the next request.
    const at = state.requests.map((r) => r.at);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(500);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(500);
    expect(state.leads).toHaveLength(1);
  });

  test('OPERATION_TIME_LIMIT holds every request until operating_reset_at', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const resetAt = Math.floor(clock.now() / 1000) + 10;
    control.setMode('operating_time_limit', { resetAt });
    const done = crm.registerLead(lead('later'));
    await eventually(() => expect(state.requests).toHaveLength(1), 20_000, 5);
    expect(state.requests[0]!.status).toBe(429);
    await clock.advance(resetAt * 1000 - clock.now() - 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(state.requests).toHaveLength(1);
    await expect(driveUntil(done)).resolves.toEqual({ leadId: 1, created: true });
    expect(state.requests[1]!.at).toBeGreaterThanOrEqual(resetAt * 1000);
  });

  test('OPERATION_TIME_LIMIT past the activity time fails retryably, to be retried after the reset', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const resetAt = Math.floor(clock.now() / 1000) + 600;
    control.setMode('operating_time_limit', { resetAt });
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    const failure = await failureOf(env.run(crm.registerLead, lead('too-late')));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(failure.message).toContain('OPERATION_TIME_LIMIT');
    expect(failure.nextRetryDelay).toBe(resetAt * 1000 - clock.now());
    // Until the reset, another item that cannot wait for it is not even queued.
    const next = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    await expect(failureOf(next.run(crm.registerLead, lead('also-late')))).resolves.toMatchObject({
      type: 'Bitrix24Unavailable',
      nextRetryDelay: resetAt * 1000 - clock.now(),
    });
    expect(state.requests).toHaveLength(1);
    expect(state.leads).toHaveLength(0);
  });

  test('a command refused for a limit inside the batch goes again after the pause, not failed', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.failCommands('crm.lead.add', 'QUERY_LIMIT_EXCEEDED');
    const done = crm.registerLead(lead('again'));
    await expect(driveUntil(done)).resolves.toEqual({ leadId: 1, created: true });
    expect(commands()).toEqual(['crm.lead.list', 'crm.lead.add', 'crm.lead.add']);
    const at = state.requests.map((r) => r.at);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(500);
    expect(state.leads).toHaveLength(1);
  });

  test('an add is not sent when its answer might come after the activity timed out', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.failCommands('crm.lead.add', 'QUERY_LIMIT_EXCEEDED', 1000);
    const env = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
    const t0 = clock.now();
    const failure = await failureOf(driveUntil(env.run(crm.registerLead, lead('slow-portal'))));
    expect(failure).toMatchObject({ type: 'Bitrix24Unavailable', nonRetryable: false });
    expect(failure.message).toContain('too little of the activity left');
    // The last add went with more than the HTTP timeout (10 s) of the activity's 30 s left.
    const lastAdd = state.requests.filter((r) => r.commands?.includes('crm.lead.add')).at(-1)!;
    expect(lastAdd.at - t0).toBeLessThanOrEqual(20_000);
    expect(clock.now() - t0).toBeGreaterThan(19_000);
    expect(state.leads).toHaveLength(0);
  });

  test('OVERLOAD_LIMIT is final: Bitrix24Overloaded, not retried, not an auth error', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    control.setMode('overload');
    const failure = await failureOf(crm.registerLead(lead('blocked', 'watchfan')));
    expect(failure).toMatchObject({ type: 'Bitrix24Overloaded', nonRetryable: true });
    expect(failure.message).toContain('OVERLOAD_LIMIT');
    expect(state.requests).toHaveLength(1);
  });
});

describe('per-command errors and notes', () => {
  test('a command refused in the batch fails only its own item', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const { leadId } = await crm.registerLead(lead('has-notes'));
    state.requests.length = 0;
    const [missing, fine, added] = await Promise.allSettled([
      crm.recordCallAttempts({ leadId: 999, notes: [{ comment: 'на несуществующий лид' }] }),
      crm.recordCallAttempts({ leadId, notes: [{ comment: 'Попытка 1: недозвон' }] }),
      crm.registerLead(lead('beside')),
    ]);
    expect(missing).toMatchObject({
      status: 'rejected',
      reason: { type: 'Bitrix24RequestError', nonRetryable: true },
    });
    expect(fine.status).toBe('fulfilled');
    expect(added).toMatchObject({ status: 'fulfilled', value: { created: true } });
    // All three went in the same first request.
    expect(state.requests[0]!.commands).toEqual([
      'crm.timeline.comment.add',
      'crm.timeline.comment.add',
      'crm.lead.list',
    ]);
    expect(state.comments.map((c) => c.COMMENT)).toEqual(['Попытка 1: недозвон']);
  });

  test("two leads' notes share requests, each lead's in order, each status before its comment", async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const [a, b] = await Promise.all([crm.registerLead(lead('a')), crm.registerLead(lead('b'))]);
    state.requests.length = 0;
    const notesOf = (who: string) => [
      { statusId: 'IN_PROCESS', comment: `${who}: попытка 1` },
      { comment: `${who}: попытка 2` },
      { statusId: 'JUNK', comment: `${who}: попытка 3` },
    ];
    await Promise.all([
      crm.recordCallAttempts({ leadId: a.leadId, notes: notesOf('a') }),
      crm.recordCallAttempts({ leadId: b.leadId, notes: notesOf('b') }),
    ]);
    for (const [who, id] of [
      ['a', a.leadId],
      ['b', b.leadId],
    ] as const) {
      expect(state.comments.filter((c) => c.ENTITY_ID === id).map((c) => c.COMMENT)).toEqual([
        `${who}: попытка 1`,
        `${who}: попытка 2`,
        `${who}: попытка 3`,
      ]);
    }
    expect(state.leads.map((l) => l.STATUS_ID)).toEqual(['JUNK', 'JUNK']);
    // Five steps per lead (update, comment, comment, update, comment), both leads in each request.
    expect(state.requests).toHaveLength(5);
    expect(state.requests.every((r) => r.commands!.length === 2)).toBe(true);
  });

  test('a retried note batch resumes after the notes its heartbeat says were written', async () => {
    const crm = createBitrix24Activities(config(), { dataDir, clock });
    const { leadId } = await crm.registerLead(lead('resume'));
    const notes = [{ comment: 'один' }, { comment: 'два' }, { comment: 'три' }];
    const retry = new MockActivityEnvironment({
      attempt: 2,
      heartbeatDetails: { notesDone: 1 },
      startToCloseTimeoutMs: 30_000,
    });
    const beats: unknown[] = [];
    retry.on('heartbeat', (d: unknown) => beats.push(d));
    await retry.run(crm.recordCallAttempts, { leadId, notes });
    expect(state.comments.map((c) => c.COMMENT)).toEqual(['два', 'три']);
    // The progress after each note but the last (then the activity completes); the short waits in
    // the batcher in between keep quiet (activities/keepAlive).
    expect(beats).toEqual([{ notesDone: 2 }]);
  });
});

describe('two worker processes on one DATA_DIR', () => {
  test('their batchers together never exceed the portal bucket', async () => {
    control.setRateLimit({ perSecond: 2, burst: 3 });
    const cfg = config({ burst: 3 });
    const policy = { kind: 'bucket' as const, perSecond: 2, burst: 3 };
    // Each "process" with a budget instance of its own, sharing only the state under DATA_DIR.
    const workers = [0, 1].map(() =>
      createBitrix24Batcher(cfg, {
        dataDir,
        clock,
        limit: openSharedLimitUncached({ name: limitNameOf(cfg), dir: dataDir, policy, clock }),
      }),
    );
    const all = Promise.all(
      workers.map(async (w, n) => {
        for (let i = 0; i < 4; i++) await w.registerLead(lead(`w${n}-${i}`));
      }),
    );
    await driveUntil(all);
    expect(state.leads).toHaveLength(8);
    expect(new Set(state.leads.map((l) => l.ORIGIN_ID)).size).toBe(8);
    expect(state.requests).toHaveLength(16);
    expect(refused()).toEqual([]);
  });
});

describe('emulator: batch as Bitrix24 answers it', () => {
  const webhook = () => `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`;
  const post = (method: string, body: unknown) =>
    axios.post(`${webhook()}${method}.json`, body, { validateStatus: () => true });

  test('runs the commands in order, one request against the bucket, $result substitution, halt=0', async () => {
    control.setRateLimit({ perSecond: 2, burst: 1 });
    const answer = await post('batch', {
      halt: 0,
      cmd: {
        company: 'crm.company.add?fields[TITLE]=Acme',
        lead: 'crm.lead.add?fields[NAME]=%D0%9E%D0%BB%D0%B5%D0%B3&fields[COMPANY_ID]=$result[company]',
        broken: 'crm.lead.update?id=999&fields[STATUS_ID]=JUNK',
        listed: 'crm.lead.list?filter[COMPANY_ID]=$result[company]&select[]=NAME',
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.data).toMatchObject({
      result: {
        result: { company: 1, lead: 1, listed: [{ ID: '1', NAME: 'Олег' }] },
        result_error: { broken: { error: '', error_description: 'Not found' } },
        result_total: { listed: 1 },
        result_next: [],
        result_time: { company: { start: expect.any(Number) } },
      },
      time: { start: expect.any(Number) },
    });
    expect(state.leads[0]).toMatchObject({ NAME: 'Олег', COMPANY_ID: '1' });
    // The whole batch was one request: the bucket of one is now full.
    expect((await post('crm.lead.list', {})).data).toMatchObject({ error: 'QUERY_LIMIT_EXCEEDED' });
  });

  test('halt=1 stops at the first failed command; more than 50 commands are refused', async () => {
    control.setRateLimit(false);
    const halted = await post('batch', {
      halt: 1,
      cmd: { a: 'crm.lead.update?id=5&fields[NAME]=x', b: 'crm.lead.add?fields[NAME]=y' },
    });
    expect(halted.data.result).toMatchObject({
      result: [],
      result_error: { a: { error_description: 'Not found' } },
    });
    expect(state.leads).toHaveLength(0);
    const cmd = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, 'crm.lead.list']));
    expect((await post('batch', { cmd })).data).toMatchObject({ error: 'ERROR_BATCH_LENGTH_EXCEEDED' });
  });

  test('@FIELD is IN, form-encoded or JSON, and lists page at 50 with next and total', async () => {
    control.setRateLimit(false);
    for (let i = 0; i < 120; i++) await post('crm.lead.add', { fields: { ORIGIN_ID: `r${i % 3}` } });
    const json = await post('crm.lead.list', {
      filter: { '@ORIGIN_ID': ['r0', 'r1'] },
      select: ['ORIGIN_ID'],
    });
    expect(json.data).toMatchObject({ total: 80, next: 50 });
    expect(json.data.result).toHaveLength(50);
    const form = await axios.post(
      `${webhook()}crm.lead.list.json`,
      'filter[@ORIGIN_ID][]=r2&filter[@ORIGIN_ID][]=nothing&select[]=ORIGIN_ID',
    );
    expect(form.data).toMatchObject({ total: 40 });
    expect(form.data.next).toBeUndefined();
    expect(form.data.result).toHaveLength(40);
    const batched = await post('batch', {
      cmd: { page2: 'crm.lead.list?filter[@ORIGIN_ID][]=r0&filter[@ORIGIN_ID][]=r1&start=50' },
    });
    expect(batched.data.result).toMatchObject({ result_total: { page2: 80 }, result_next: [] });
    expect(batched.data.result.result.page2).toHaveLength(30);
    const first = await post('batch', { cmd: { page1: 'crm.lead.list?filter[@ORIGIN_ID][]=r0' } });
    expect(first.data.result).toMatchObject({ result_total: { page1: 40 }, result_next: [] });
    const big = await post('batch', { cmd: { p: 'crm.lead.list' } });
    expect(big.data.result).toMatchObject({ result_total: { p: 120 }, result_next: { p: 50 } });
  });
});

describe('emulator: limit modes', () => {
  const webhook = () => `${portal()}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`;
  const post = () =>
    axios.post(`${webhook()}batch.json`, { cmd: { a: 'crm.lead.list' } }, { validateStatus: () => true });

  test('OPERATION_TIME_LIMIT answers 429 with operating_reset_at until then; OVERLOAD_LIMIT stays', async () => {
    const resetAt = Math.floor(clock.now() / 1000) + 5;
    control.setMode('operating_time_limit', { resetAt });
    const blocked = await post();
    expect(blocked.status).toBe(429);
    expect(blocked.data).toMatchObject({
      error: 'OPERATION_TIME_LIMIT',
      time: { operating_reset_at: resetAt },
    });
    await clock.advance(resetAt * 1000 - clock.now());
    expect((await post()).status).toBe(200);

    control.setMode('overload');
    for (let i = 0; i < 2; i++) {
      const overloaded = await post();
      expect(overloaded.status).toBe(503);
      expect(overloaded.data).toMatchObject({ error: 'OVERLOAD_LIMIT' });
    }
  });
});
