// Exactly one ring per attempt, whatever crashes: real processes (a Temporal dev server, the
// service or its parts) against a VoxImplant emulator whose StartScenarios answers late and whose
// call history lists a session only once it has ended, as VoxImplant may. A process killed while
// StartScenarios is in flight leaves a retry that cannot see the ringing call; the scenario's claim
// is what keeps that retry from ringing the customer again.
import crypto from 'node:crypto';
import { startEmulators, type RunningEmulators } from '../emulators';
import {
  serviceProcess,
  startDevServerProcess,
  type DevServerProcess,
  type ServiceProcess,
} from './support/processes';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';

let temporal: DevServerProcess;
let emulators: RunningEmulators;
const started: ServiceProcess[] = [];
const { callsTo, sessionsFor, smsTo, crmLeadsFor } = received(() => emulators);

// Every process of a deployment shares these.
const shared = {
  VOXIMPLANT_RESULT_SECRET: crypto.randomBytes(16).toString('hex'),
  ENCRYPTION_KEYS: `k1:${crypto.randomBytes(32).toString('base64')}`,
  OPERATOR_TOKEN: crypto.randomBytes(16).toString('hex'),
  WORKING_HOURS: '00:00-24:00',
  CALL_RESULT_TIMEOUT: '10m',
};

async function launch(env: Record<string, string> = {}): Promise<ServiceProcess> {
  const svc = await serviceProcess(temporal.address, emulators, { ...shared, ...env });
  started.push(svc);
  await svc.start();
  return svc;
}

beforeAll(async () => {
  temporal = await startDevServerProcess();
  emulators = await startEmulators({ bitrix24: { rateLimit: false } });
}, 120_000);

beforeEach(() => {
  // StartScenarios answers 4 s after the scenario started ringing; the call goes on until released.
  emulators.voximplant.control.setStartAnswerDelay(4_000);
});

afterAll(async () => {
  for (const svc of started) await svc.stop();
  await temporal?.kill();
  await emulators?.close();
});

/** Posts eight leads whose calls ring until released, and waits until VoxImplant has all eight. */
async function eightLeadsRinging(api: ServiceProcess): Promise<string[]> {
  const phones = Array.from({ length: 8 }, () => uniquePhone());
  for (const phone of phones)
    emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', hold: true }]);
  for (const [i, phone] of phones.entries()) {
    expect((await postJson(`${api.url}/api/leads`, { name: `Клиент ${i}`, phone })).status).toBe(202);
  }
  await eventually(() => expect(phones.filter((p) => sessionsFor(p).length > 0)).toHaveLength(8), 30_000, 20);
  return phones;
}

/** Until every customer's phone rings: a session whose claim was granted. */
async function everyOneRinging(phones: string[]): Promise<void> {
  await eventually(
    () => expect(phones.filter((p) => callsTo(p).length > 0)).toHaveLength(phones.length),
    90_000,
  );
}

async function expectEachRangOnce(api: ServiceProcess, phones: string[]): Promise<void> {
  for (const phone of phones) {
    await eventually(async () => {
      const { body } = await getJson(`${api.url}/api/leads/${phone}`, api.operator);
      expect(body).toMatchObject({ status: 'Answered', execution: 'COMPLETED' });
    }, 120_000);
    expect(callsTo(phone)).toHaveLength(1);
    expect(crmLeadsFor(phone)).toHaveLength(1);
    expect(smsTo(phone)).toHaveLength(1);
    // Any second scenario of the attempt was refused its claim and never dialled.
    for (const session of sessionsFor(phone).filter((s) => !s.dialledAt)) {
      expect(session.claim?.outcome).not.toBe('granted');
    }
  }
}

test('kill -9 of the whole service while StartScenarios is in flight for 8 leads: each customer rang once', async () => {
  const service = await launch();
  const phones = await eightLeadsRinging(service);
  await service.kill();
  await service.start();
  // The calls end only now, after the restart, so no report can be missed while the service is down.
  await everyOneRinging(phones);
  emulators.voximplant.control.release();
  await expectEachRangOnce(service, phones);
  await service.stop();
}, 240_000);

test('kill -9 of the worker alone (API and worker apart) while StartScenarios is in flight: each customer rang once', async () => {
  const api = await launch({ SERVICE_ROLE: 'api' });
  const worker = await launch({ SERVICE_ROLE: 'worker' });
  const phones = await eightLeadsRinging(api);
  await worker.kill();
  await worker.start();
  await everyOneRinging(phones);
  emulators.voximplant.control.release();
  await expectEachRangOnce(api, phones);
  await api.stop();
  await worker.stop();
}, 240_000);
