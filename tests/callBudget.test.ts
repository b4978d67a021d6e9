// A call waits for its place under CALLS_PER_SECOND inside its activity: while it waits it
// heartbeats, and an attempt cancelled (or timed out, which its heartbeat tells it) meanwhile leaves
// without reaching VoxImplant.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createCallActivities } from '../activities';
import { loadConfig } from '../config';
import { tempDataDir } from './support/config';

let server: http.Server;
let requests = 0;
let apiUrl: string;

beforeAll(async () => {
  // Stands in for VoxImplant's API: counts what reaches it, answers every call with an API error.
  server = http.createServer((req, res) => {
    requests += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"error":{"code":100,"msg":"test"}}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/platform_api`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const call = (attempt: number) => ({
  workflowId: 'lead-budget',
  runId: 'run-1',
  ref: 'budget',
  attempt,
  name: 'Анна',
  phone: '79161234567',
  resultUrl: 'http://127.0.0.1:1/api/voximplant/result',
  claimUrl: 'http://127.0.0.1:1/api/voximplant/claim',
  tokenTtlSeconds: 600,
});

test('when a call waits for its place and its attempt is cancelled, then it leaves without calling', async () => {
  const config = loadConfig({
    NODE_ENV: 'development',
    DATA_DIR: tempDataDir(),
    EMULATE: 'bitrix24,smsru,telegram',
    VOXIMPLANT_API_URL: apiUrl,
    VOXIMPLANT_ACCOUNT_ID: '1',
    VOXIMPLANT_API_KEY: 'test-key',
    VOXIMPLANT_RULE_ID: '1',
    // One call a minute: the second waits for the budget whatever the machine's speed.
    CALLS_PER_SECOND: String(1 / 60),
  });
  const { placeRobotCall } = createCallActivities(config);
  const first = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
  await expect(first.run(placeRobotCall, call(1))).rejects.toThrow();
  const reached = requests;
  expect(reached).toBeGreaterThan(0);

  const second = new MockActivityEnvironment({ startToCloseTimeoutMs: 30_000 });
  const waiting = second.run(placeRobotCall, call(2));
  second.cancel();
  await expect(waiting).rejects.toBeInstanceOf(CancelledFailure);
  expect(requests).toBe(reached);
});
