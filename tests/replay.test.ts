// Determinism guard. Every history this file produces is replayed against the current workflow
// code, and so are histories recorded earlier (tests/fixtures/replay): a change that would break
// leads already in flight — asleep for the night, waiting for a call report, waiting for a person —
// fails here. Such a change needs workflow versioning (patched()) instead.
// Record a new generation of fixtures with UPDATE_REPLAY_FIXTURES=v<N> after a change guarded by
// patched(), keeping the older generations: leads started under them may still be running.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';

type History = temporal.api.history.v1.IHistory;
const HistoryType = temporal.api.history.v1.History;
// protobufjs' own object form (bytes as base64, 64-bit numbers as strings) round-trips exactly.
const historyToPlain = (h: History) =>
  HistoryType.toObject(HistoryType.fromObject(h), { longs: String, enums: String, bytes: String });
const historyFromPlain = (o: unknown) => HistoryType.fromObject(o as Record<string, unknown>);
import { startDevServer, startStack, workflowBundle, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { dayZone, nightZone } from './support/zones';
import type { ScriptedOutcome } from '../emulators/voximplant';
import { parseWorkingSchedule } from '../domain/workingHours';
import { AesGcmPayloadCodec, parseEncryptionKeys } from '../support/codec';

const FIXTURES = path.join(__dirname, 'fixtures', 'replay');
// A test-only key, committed with the fixtures it sealed; production keys come from ENCRYPTION_KEYS.
const FIXTURE_KEYS = 'replay-fixtures:cmVwbGF5LWZpeHR1cmVzLW5vdC1hLXNlY3JldC1rZXk=';
const HOURS = '09:00-21:00';
const dataConverter = {
  payloadCodecs: [
    new AesGcmPayloadCodec({ currentKeyId: 'replay-fixtures', keys: parseEncryptionKeys(FIXTURE_KEYS) }),
  ],
};

let env: TestWorkflowEnvironment;
let stack: TestStack;
const produced: Array<{ name: string; workflowId: string; history: History }> = [];

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    ENCRYPTION_KEYS: FIXTURE_KEYS,
    WORKING_HOURS: HOURS,
    CALL_RESULT_TIMEOUT: '1s',
    CALL_MAX_ATTEMPTS: '2',
    CALL_RETRY_DELAY: '200ms',
  });
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

async function lead(
  name: string,
  fields: Record<string, unknown>,
  until: (s: Record<string, unknown>) => boolean,
  script?: ScriptedOutcome[],
): Promise<string> {
  const phone = uniquePhone();
  if (script) stack.emulators.voximplant.control.scriptFor(phone, script);
  const { body } = await postJson(`${stack.url}/api/leads`, { name: 'Реплей', phone, ...fields });
  const ref = String(fields.ref ?? phone);
  await eventually(async () =>
    expect(until((await getJson(`${stack.url}/api/leads/${ref}`)).body)).toBe(true),
  );
  return String(body.workflowId);
}

/** A lead is one workflow (since v4; earlier generations also have a `-call` child workflow). */
async function record(name: string, leadWorkflowId: string): Promise<void> {
  const history = await stack.service.client.workflow.getHandle(leadWorkflowId).fetchHistory();
  produced.push({ name: `${name}-lead`, workflowId: leadWorkflowId, history });
}

const completed = (s: Record<string, unknown>) => s.execution === 'COMPLETED';

test('histories of every kind of lead replay against the current code', async () => {
  const schedule = parseWorkingSchedule(HOURS);
  const now = Date.now();
  const day = dayZone(now, schedule);
  const night = nightZone(now, schedule).zone;

  await record('answered', await lead('answered', { timezone: day, partner: 'replay' }, completed));
  await record(
    'busy-then-answered',
    await lead('busy', { timezone: day }, completed, [
      { result: 'busy', delayMs: 5 },
      { result: 'answered', delayMs: 5 },
    ]),
  );
  await record(
    'asleep-at-night',
    await lead('night', { timezone: night }, (s) => s.status === 'WaitingForWorkingHours'),
  );
  const stuck = await lead(
    'stuck',
    { timezone: day, ref: `replay-${Date.now()}` },
    (s) => s.status === 'ManualHandling',
    [{ result: 'answered', report: 'none' }],
  );
  await postJson(`${stack.url}/api/leads/${stuck.replace(/^lead-/, '')}/handled`, { by: 'replay' });
  await eventually(async () =>
    expect((await stack.service.client.workflow.getHandle(stuck).describe()).status.name).toBe('COMPLETED'),
  );
  await record('manual-then-handled', stuck);

  expect(produced.length).toBe(4);
  const results = Worker.runReplayHistories(
    { ...workflowBundle(), dataConverter },
    produced.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  let replayed = 0;
  for await (const result of results) {
    expect(result.error).toBeUndefined();
    replayed += 1;
  }
  expect(replayed).toBe(4);

  const generation = process.env.UPDATE_REPLAY_FIXTURES;
  if (generation) {
    fs.mkdirSync(FIXTURES, { recursive: true });
    for (const { name, workflowId, history } of produced) {
      fs.writeFileSync(
        path.join(FIXTURES, `${generation}-${name}.json`),
        JSON.stringify({ workflowId, history: historyToPlain(history) }),
      );
    }
  }
}, 90_000);

test('recorded histories of leads from earlier code still replay', async () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  expect(files.length).toBeGreaterThanOrEqual(28); // v1, v2 and v3 with call workflows, then v4
  const histories = files.map((f) => {
    const { workflowId, history } = JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as {
      workflowId: string;
      history: unknown;
    };
    return { workflowId, history: historyFromPlain(history) };
  });
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ ...workflowBundle(), dataConverter }, histories)) {
    expect(result.error).toBeUndefined();
    replayed += 1;
  }
  expect(replayed).toBe(files.length);
});
