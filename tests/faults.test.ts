// Faults on real processes: the service (API + worker) killed with -9 while leads are mid-flight,
// and the Temporal server killed with -9 and started again on the same database. Every accepted
// lead must still get exactly one call, one CRM lead and one SMS, and the intake must answer 503 —
// never 202 — while it cannot durably start a lead.
import crypto from 'node:crypto';
import { startEmulators, type RunningEmulators } from '../emulators';
import {
  startDevServerProcess,
  serviceProcess,
  type DevServerProcess,
  type ServiceProcess,
} from './support/processes';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';

let temporal: DevServerProcess;
let emulators: RunningEmulators;
let service: ServiceProcess;

const { callsTo, smsTo, crmLeadsFor } = received(() => emulators);

beforeAll(async () => {
  temporal = await startDevServerProcess();
  emulators = await startEmulators({ bitrix24: { rateLimit: false } });
  service = await serviceProcess(temporal.address, emulators, {
    VOXIMPLANT_RESULT_SECRET: crypto.randomBytes(16).toString('hex'),
    ENCRYPTION_KEYS: `k1:${crypto.randomBytes(32).toString('base64')}`,
    WORKING_HOURS: '00:00-24:00',
    CALL_RESULT_TIMEOUT: '2m',
  });
  await service.start();
}, 120_000);

afterAll(async () => {
  await service?.stop();
  await temporal?.kill();
  await emulators?.close();
});

async function expectEachLeadDoneOnce(phones: string[]): Promise<void> {
  for (const phone of phones) {
    await eventually(async () => {
      const { body } = await getJson(`${service.url}/api/leads/${phone}`, service.operator);
      expect(body).toMatchObject({ status: 'Answered', execution: 'COMPLETED' });
    }, 120_000);
    expect(callsTo(phone)).toHaveLength(1);
    expect(crmLeadsFor(phone)).toHaveLength(1);
    expect(smsTo(phone)).toHaveLength(1);
  }
}

test('kill -9 of the service while leads are mid-flight: each lead still gets exactly one call, CRM lead and SMS', async () => {
  const phones = Array.from({ length: 12 }, () => uniquePhone());
  // Results arrive only after the restart, so some leads are waiting for their report when killed.
  for (const phone of phones.slice(0, 8))
    emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', hold: true }]);
  const accepted: string[] = [];
  for (const [i, phone] of phones.entries()) {
    const res = await postJson(`${service.url}/api/leads`, { name: `Клиент ${i}`, phone });
    expect(res.status).toBe(202);
    accepted.push(phone);
    if (i === 7) break; // the rest are posted after the restart
  }
  await eventually(
    () => expect(emulators.voximplant.state.calls.length).toBeGreaterThanOrEqual(1),
    10_000,
    20,
  );
  await service.kill();
  // While the service is down nothing is accepted (connection refused), so nothing can be lost.
  await expect(fetch(`${service.url}/healthz`)).rejects.toThrow();
  await service.start();
  for (const phone of phones.slice(8)) {
    expect((await postJson(`${service.url}/api/leads`, { name: 'После', phone })).status).toBe(202);
    accepted.push(phone);
  }
  // The calls end only once each rings after the restart, so no report meets a service that is down.
  const ringing = phones.slice(0, 8);
  await eventually(() => expect(ringing.filter((p) => callsTo(p).length > 0)).toHaveLength(8), 60_000);
  emulators.voximplant.control.release();
  await expectEachLeadDoneOnce(accepted);
}, 240_000);

test('kill -9 of the Temporal server: the intake answers 503, and after a restart on the same database nothing accepted is lost', async () => {
  const before = Array.from({ length: 5 }, () => uniquePhone());
  // The calls ring until the server is back, so no report meets a Temporal that is down.
  for (const phone of before)
    emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', hold: true }]);
  for (const phone of before)
    expect((await postJson(`${service.url}/api/leads`, { name: 'До', phone })).status).toBe(202);

  await temporal.kill();
  const refused = await postJson(`${service.url}/api/leads`, { name: 'Во время', phone: uniquePhone() });
  expect(refused.status).toBe(503);
  expect(String(refused.body.error)).toMatch(/could not be stored/);
  expect((await getJson(`${service.url}/readyz`)).status).toBe(503);
  // Reading a lead while Temporal is down is a clear 503 too, not a 500.
  const reading = await getJson(`${service.url}/api/leads/${before[0]}`, service.operator);
  expect(reading.status).toBe(503);
  expect(String(reading.body.error)).toMatch(/unavailable/);

  await temporal.restart();
  await eventually(async () => expect((await getJson(`${service.url}/readyz`)).status).toBe(200), 60_000);
  const after = uniquePhone();
  await eventually(
    async () =>
      expect((await postJson(`${service.url}/api/leads`, { name: 'После', phone: after })).status).toBe(202),
    30_000,
  );
  await eventually(() => expect(before.filter((p) => callsTo(p).length > 0)).toHaveLength(5), 60_000);
  emulators.voximplant.control.release();
  await expectEachLeadDoneOnce([...before, after]);
}, 240_000);
