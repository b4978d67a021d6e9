// A promo's burst at the providers' real limits: 120 leads at 20 per second against emulators that
// keep Bitrix24's bucket (50 at once, 2 requests/s, 503 past it) and Telegram's 20 messages a minute
// per group (429 past it). Every lead must get exactly one CRM lead and be named in a delivered
// seller message, with no Telegram 429 and at most a few Bitrix24 503s; and the same when two
// worker processes share the portal and the chat (through DATA_DIR). How soon is the bench's.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmulators, type RunningEmulators } from '../emulators';
import {
  serviceProcess,
  startDevServerProcess,
  type DevServerProcess,
  type ServiceProcess,
} from './support/processes';
import { eventually, postJson, uniquePhone } from './support/http';
import { received } from './support/received';

const LEADS = 120;
const PER_SECOND = 20;
/**
 * How long the test waits, after the last lead, for every CRM lead and alert. Not a speed target
 * (about 12 s on a quiet machine, the 60 s bound: `npm run bench -- --only burst` prints
 * it): only a pipeline that is stuck, not a machine that is busy, should run out of it.
 */
const PATIENCE_MS = 240_000;
const TEST_TIMEOUT_MS = 2 * PATIENCE_MS;

// One deployment throughout: its processes share DATA_DIR, where the providers' budgets are kept
// (the emulators remember the first test's requests too, as the real providers would).
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-burst-'));
const shared = {
  DATA_DIR: dataDir,
  ENCRYPTION_KEYS: `k1:${crypto.randomBytes(32).toString('base64')}`,
  VOXIMPLANT_RESULT_SECRET: crypto.randomBytes(16).toString('hex'),
  OPERATOR_TOKEN: crypto.randomBytes(16).toString('hex'),
};
let temporal: DevServerProcess;
let emulators: RunningEmulators;
const started: ServiceProcess[] = [];
const { crmLeadsFor, alertsAbout, sessionsFor } = received(() => emulators);

beforeAll(async () => {
  temporal = await startDevServerProcess();
  // The emulators' defaults are the providers' real limits.
  emulators = await startEmulators();
}, 120_000);

afterAll(async () => {
  for (const svc of started) await svc.stop();
  await temporal?.kill();
  await emulators?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const svc of started.splice(0)) await svc.stop();
});

async function launch(env: Record<string, string>): Promise<ServiceProcess> {
  const svc = await serviceProcess(temporal.address, emulators, {
    WORKING_HOURS: '00:00-24:00',
    // Production's rate, not the fault tests' faster one.
    BITRIX24_REQUESTS_PER_SECOND: '2',
    ...shared,
    ...env,
  });
  started.push(svc);
  await svc.start();
  return svc;
}

/** Posts LEADS leads, PER_SECOND a second (each POST on its own schedule, not after the last). */
async function burst(api: ServiceProcess): Promise<string[]> {
  const phones = Array.from({ length: LEADS }, () => uniquePhone());
  const posts = phones.map(
    (phone, i) =>
      new Promise<number>((resolve, reject) =>
        setTimeout(
          () =>
            postJson(`${api.url}/api/leads`, { name: `Покупатель ${i}`, phone })
              .then((r) => resolve(r.status))
              .catch(reject),
          (i * 1000) / PER_SECOND,
        ),
      ),
  );
  expect(await Promise.all(posts)).toEqual(phones.map(() => 202));
  return phones;
}

/** Bitrix24's "too many requests" answers so far. */
const rejected503 = () => emulators.bitrix24.state.requests.filter((r) => r.status === 503).length;

async function everyLeadReachesCrmAndSellers(phones: string[]): Promise<void> {
  const rejectedBefore = {
    bitrix24: rejected503(),
    telegram: emulators.telegram.state.tooManyRequests.length,
  };
  // The last lead was posted when burst() returned: both bounds count from then.
  const deadline = Date.now() + PATIENCE_MS;
  await eventually(
    () => expect(phones.filter((p) => crmLeadsFor(p).length === 0)).toEqual([]),
    deadline - Date.now(),
    250,
  );
  await eventually(
    () => expect(phones.filter((p) => alertsAbout(p).length === 0)).toEqual([]),
    Math.max(0, deadline - Date.now()),
    250,
  );
  // Exactly one CRM lead each, and every customer called.
  expect(phones.filter((p) => crmLeadsFor(p).length !== 1)).toEqual([]);
  expect(phones.filter((p) => sessionsFor(p).length === 0)).toEqual([]);
  expect(emulators.telegram.state.tooManyRequests.slice(rejectedBefore.telegram)).toEqual([]);
  expect(rejected503() - rejectedBefore.bitrix24).toBeLessThanOrEqual(3);
}

test(
  `${LEADS} leads at ${PER_SECOND}/s: one CRM lead each and every lead in a seller message, within the limits`,
  async () => {
    const svc = await launch({});
    await everyLeadReachesCrmAndSellers(await burst(svc));
  },
  TEST_TIMEOUT_MS,
);

test(
  'the same with two worker processes: together they stay within the portal and the chat limits',
  async () => {
    await Promise.all([launch({ SERVICE_ROLE: 'worker' }), launch({ SERVICE_ROLE: 'worker' })]);
    const api = await launch({ SERVICE_ROLE: 'api' });
    await everyLeadReachesCrmAndSellers(await burst(api));
  },
  TEST_TIMEOUT_MS,
);
