// Determinism guard. Every history this file produces is replayed against the current workflow
// code, and so are the histories recorded from release 1.0.0 on (tests/fixtures/replay): a change
// that would break leads already in flight — asleep for the night, waiting for a call report,
// waiting for a person — fails here. Such a change is versioned with patched() (README,
// "Changing a workflow"); the fixtures of a release stay until no lead of it can be running.
// UPDATE_REPLAY_FIXTURES=<version> writes this run's histories as that release's fixtures.
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
import {
  startDevServer,
  startStack,
  startTimeSkippingServer,
  workflowBundle,
  type TestStack,
} from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { dayZone, nightZone, phoneOfZone, ZONE_COUNTRIES } from './support/zones';
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

let devServer: TestWorkflowEnvironment;
let timeSkipping: TestWorkflowEnvironment;
let stack: TestStack;
let skipping: TestStack;
const produced: Array<{ name: string; workflowId: string; history: History }> = [];
const schedule = parseWorkingSchedule(HOURS);
const config = {
  ENCRYPTION_KEYS: FIXTURE_KEYS,
  WORKING_HOURS: HOURS,
  ALLOWED_PHONE_COUNTRIES: ZONE_COUNTRIES,
  CALL_MAX_ATTEMPTS: '2',
  // Long enough that a lead is still waiting when the test acts on it.
  CALL_RESULT_TIMEOUT: '10m',
  CALL_RETRY_DELAY: '30m',
  MANUAL_HANDLING_TIMEOUT: '2h',
};

beforeAll(async () => {
  [devServer, timeSkipping] = await Promise.all([startDevServer(), startTimeSkippingServer()]);
  [stack, skipping] = await Promise.all([
    startStack(devServer, config),
    // Histories with a fired timer (a retry, a night) come from the server that skips the hours.
    startStack(timeSkipping, config),
  ]);
}, 90_000);

afterAll(async () => {
  await Promise.all([stack?.close(), skipping?.close()]);
  await Promise.all([devServer?.teardown(), timeSkipping?.teardown()]);
});

interface Lead {
  ref: string;
  workflowId: string;
  phone: string;
}

async function startLead(on: TestStack, fields: Record<string, unknown>, script?: ScriptedOutcome[]) {
  const phone = typeof fields.timezone === 'string' ? phoneOfZone(fields.timezone) : uniquePhone();
  if (script) on.emulators.voximplant.control.scriptFor(phone, script);
  // A browser's ref is kept as its clientRef; the lead is the phone's.
  const { status, body } = await postJson(`${on.url}/api/leads`, {
    name: 'Реплей',
    phone,
    ref: `replay-${phone}`,
    ...fields,
  });
  expect(status).toBe(202);
  return { ref: String(body.ref), phone, workflowId: String(body.workflowId) } satisfies Lead;
}

async function statusOf(on: TestStack, lead: Lead): Promise<Record<string, unknown>> {
  return (await getJson(`${on.url}/api/leads/${lead.ref}`, on.operator)).body;
}

async function reach(on: TestStack, lead: Lead, until: (s: Record<string, unknown>) => boolean) {
  await eventually(async () => expect(until(await statusOf(on, lead))).toBe(true));
}

async function act(on: TestStack, lead: Lead, path: 'cancel' | 'handled' | 'call-now') {
  const res = await postJson(
    `${on.url}/api/leads/${lead.ref}/${path}`,
    { by: 'replay', note: path },
    on.operator,
  );
  expect(res.status).toBe(200);
}

async function record(on: TestStack, name: string, lead: Lead): Promise<void> {
  const history = await on.service.client.workflow.getHandle(lead.workflowId).fetchHistory();
  produced.push({ name, workflowId: lead.workflowId, history });
}

const completed = (s: Record<string, unknown>) => s.execution === 'COMPLETED';
const is = (status: string) => (s: Record<string, unknown>) => s.status === status;
const KINDS = [
  'answered',
  'voicemail',
  'wrong-number',
  'asleep-at-night',
  'handled-while-asleep',
  'cancelled-while-ringing',
  'missed-then-call-now-answered',
  'missed-then-cancelled',
  'no-result-then-handled',
  'no-result-then-cancelled',
  'attempts-exhausted-then-call-now',
  'busy-then-answered',
  'night-then-called',
  'unclaimed-then-answered',
];
/** Kinds a release before this one could not produce (its code did not tell them apart). */
const KIND_SINCE: Partial<Record<(typeof KINDS)[number], string>> = { 'unclaimed-then-answered': '1.5.0' };
const releaseOrder = (v: string) => v.split('.').map(Number);
const atLeast = (release: string, since: string) => {
  const [a, b] = [releaseOrder(release), releaseOrder(since)];
  const differ = a.findIndex((n, i) => n !== b[i]);
  return differ === -1 || a[differ]! > b[differ]!;
};
const kindsOf = (release: string) => KINDS.filter((k) => atLeast(release, KIND_SINCE[k] ?? '1.0.0'));

test('histories of every kind of lead replay against the current code', async () => {
  const day = dayZone(Date.now(), schedule);
  const night = nightZone(Date.now(), schedule).zone;
  const answered: ScriptedOutcome = { result: 'answered', delayMs: 5 };
  const busy: ScriptedOutcome = { result: 'busy', delayMs: 5 };
  const silent: ScriptedOutcome = { result: 'answered', report: 'none' };

  const simple: Array<[string, ScriptedOutcome]> = [
    ['answered', answered],
    ['voicemail', { result: 'voicemail', delayMs: 5 }],
    ['wrong-number', { result: 'wrong_number', delayMs: 5 }],
  ];
  for (const [name, outcome] of simple) {
    const lead = await startLead(stack, { timezone: day, partner: 'replay' }, [outcome]);
    await reach(stack, lead, completed);
    await record(stack, name, lead);
  }

  const asleep = await startLead(stack, { timezone: night });
  await reach(stack, asleep, is('WaitingForWorkingHours'));
  await record(stack, 'asleep-at-night', asleep);

  const handledAsleep = await startLead(stack, { timezone: night });
  await reach(stack, handledAsleep, is('WaitingForWorkingHours'));
  await act(stack, handledAsleep, 'handled');
  await reach(stack, handledAsleep, completed);
  await record(stack, 'handled-while-asleep', handledAsleep);

  // The report that comes after the operator's cancel is refused: the lead is Cancelled.
  const ringing = await startLead(stack, { timezone: day }, [silent]);
  await reach(stack, ringing, is('WaitingForResult'));
  await act(stack, ringing, 'cancel');
  await reach(stack, ringing, completed);
  await record(stack, 'cancelled-while-ringing', ringing);

  for (const [name, then] of [
    ['missed-then-call-now-answered', 'call-now'],
    ['missed-then-cancelled', 'cancel'],
  ] as const) {
    const lead = await startLead(stack, { timezone: day }, [busy, answered]);
    await reach(stack, lead, is('MissedCall'));
    await act(stack, lead, then);
    await reach(stack, lead, completed);
    await record(stack, name, lead);
  }

  for (const [name, then] of [
    ['no-result-then-handled', 'handled'],
    ['no-result-then-cancelled', 'cancel'],
  ] as const) {
    const lead = await startLead(
      skipping,
      { timezone: dayZone(await timeSkipping.currentTimeMs(), schedule) },
      [silent],
    );
    await reach(skipping, lead, is('WaitingForResult'));
    await timeSkipping.sleep('11m');
    await reach(skipping, lead, is('ManualHandling'));
    await act(skipping, lead, then);
    await reach(skipping, lead, completed);
    await record(skipping, name, lead);
  }

  const exhausted = await startLead(
    skipping,
    { timezone: dayZone(await timeSkipping.currentTimeMs(), schedule) },
    [busy, busy, answered],
  );
  await reach(skipping, exhausted, is('MissedCall'));
  await timeSkipping.sleep('31m');
  await reach(skipping, exhausted, is('ManualHandling'));
  await act(skipping, exhausted, 'call-now');
  await reach(skipping, exhausted, completed);
  await record(skipping, 'attempts-exhausted-then-call-now', exhausted);

  const retried = await startLead(
    skipping,
    { timezone: dayZone(await timeSkipping.currentTimeMs(), schedule) },
    [busy, answered],
  );
  await reach(skipping, retried, is('MissedCall'));
  await timeSkipping.sleep('31m');
  await reach(skipping, retried, completed);
  await record(skipping, 'busy-then-answered', retried);

  // The session ends before its claim: nobody was rung, so at the result timeout it calls again.
  const unclaimed = await startLead(
    skipping,
    { timezone: dayZone(await timeSkipping.currentTimeMs(), schedule) },
    [{ result: 'answered', endsBeforeClaim: true }, answered],
  );
  await reach(skipping, unclaimed, is('WaitingForResult'));
  await timeSkipping.sleep('11m');
  await reach(skipping, unclaimed, completed);
  await record(skipping, 'unclaimed-then-answered', unclaimed);

  const { zone, opensAt } = nightZone(await timeSkipping.currentTimeMs(), schedule);
  const sleeper = await startLead(skipping, { timezone: zone }, [answered]);
  await reach(skipping, sleeper, is('WaitingForWorkingHours'));
  await timeSkipping.sleep(opensAt - (await timeSkipping.currentTimeMs()) + 60_000);
  await reach(skipping, sleeper, completed);
  await record(skipping, 'night-then-called', sleeper);

  expect(produced.map((p) => p.name).sort()).toEqual([...KINDS].sort());
  const results = Worker.runReplayHistories(
    { ...workflowBundle(), dataConverter },
    produced.map(({ workflowId, history }) => ({ workflowId, history })),
  );
  let replayed = 0;
  for await (const result of results) {
    expect(result.error).toBeUndefined();
    replayed += 1;
  }
  expect(replayed).toBe(KINDS.length);

  const release = process.env.UPDATE_REPLAY_FIXTURES;
  if (release) {
    fs.mkdirSync(FIXTURES, { recursive: true });
    for (const { name, workflowId, history } of produced) {
      fs.writeFileSync(
        path.join(FIXTURES, `${release}-${name}.json`),
        JSON.stringify({ workflowId, history: historyToPlain(history) }),
      );
    }
  }
}, 240_000);

test('the recorded histories of every release replay, and cover every kind of lead', async () => {
  const files = fs.readdirSync(FIXTURES).filter((f) => f.endsWith('.json'));
  // Every release since 1.0.0 recorded every kind of lead its code could produce.
  const releases = [...new Set(files.map((f) => f.split('-')[0]!))];
  expect(releases).toEqual(
    expect.arrayContaining(['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.5.0', '1.7.0', '1.8.0', '1.8.1', '1.9.0']),
  );
  for (const release of releases) {
    const kinds = files
      .filter((f) => f.startsWith(`${release}-`))
      .map((f) => f.slice(release.length + 1, -5));
    expect(kinds.sort()).toEqual(kindsOf(release).sort());
  }
  const histories = files.map((f) => {
    const { history } = JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8')) as { history: unknown };
    return { workflowId: f, history: historyFromPlain(history) };
  });
  // Each history replays under its file's name, so a failure names the fixture.
  const failures: Array<{ fixture: string; error: string }> = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ ...workflowBundle(), dataConverter }, histories)) {
    if (result.error) failures.push({ fixture: result.workflowId, error: String(result.error) });
    replayed += 1;
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(files.length);
});
