// The HTTP helper the four adapters share, against a local server: what a hung, refused or
// cancelled request becomes, and that no failure carries the URL (it may hold a credential).
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import express from 'express';
import { z } from 'zod';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createProviderHttp, provedNotSent, readAs } from '../activities/http';
import { eventually } from './support/http';

const SECRET_PATH = '/bot123:SECRET/sendMessage';
let server: Server;
let url: string;
const held: Array<{ closed: boolean }> = [];

beforeAll(async () => {
  const app = express();
  app.get('/ok', (_req, res) => res.json({ ok: true, n: 1 }));
  // Never answers: the request ends only when the client gives up.
  app.post(SECRET_PATH, (_req, res) => {
    const entry = { closed: false };
    held.push(entry);
    res.once('close', () => (entry.closed = true));
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const http = (timeoutMs = 60_000) =>
  createProviderHttp({ provider: 'Demo', unavailableType: 'DemoUnavailable', timeoutMs });

async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: unknown) => err,
  );
}

test('an answer comes back with its status and body, read through a schema', async () => {
  const res = await http()({ method: 'GET', url: `${url}/ok`, what: 'ok' });
  expect(res.status).toBe(200);
  expect(readAs(z.object({ ok: z.literal(true) }), res.data)).toEqual({ ok: true });
  expect(readAs(z.object({ ok: z.literal(false) }), res.data)).toBeUndefined();
  expect(res.header('content-type')).toMatch(/json/);
});

test('no answer in time is a retryable outage that may have reached the provider', async () => {
  const err = await failureOf(http(50)({ method: 'POST', url: `${url}${SECRET_PATH}`, what: 'sendMessage' }));
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'DemoUnavailable', nonRetryable: false });
  expect((err as Error).message).toMatch(/^Demo sendMessage: no answer in time/);
  expect((err as Error).message).not.toContain('SECRET');
  expect(provedNotSent(err)).toBe(false);
});

test('a refused connection is a retryable outage that certainly sent nothing', async () => {
  const closed = express().listen(0, '127.0.0.1');
  await new Promise((resolve) => closed.once('listening', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const err = await failureOf(
    http()({ method: 'POST', url: `http://127.0.0.1:${port}${SECRET_PATH}`, what: 'x' }),
  );
  expect(err).toMatchObject({ type: 'DemoUnavailable', nonRetryable: false });
  expect((err as Error).message).toContain('ECONNREFUSED');
  expect(provedNotSent(err)).toBe(true);
});

test("the activity's cancellation aborts the request: CancelledFailure, and the server sees it go", async () => {
  const env = new MockActivityEnvironment();
  const before = held.length;
  const pending = env.run(() => http()({ method: 'POST', url: `${url}${SECRET_PATH}`, what: 'sendMessage' }));
  await eventually(() => expect(held).toHaveLength(before + 1), 20_000, 5);
  env.cancel();
  await expect(pending).rejects.toBeInstanceOf(CancelledFailure);
  await eventually(() => expect(held[before]!.closed).toBe(true), 20_000, 5);
});

test("an instance of one's own keeps its own timeout", async () => {
  const own = createProviderHttp({
    provider: 'Demo',
    unavailableType: 'DemoUnavailable',
    timeoutMs: 60_000,
    http: axios.create({ timeout: 20 }),
  });
  const err = await failureOf(own({ method: 'POST', url: `${url}${SECRET_PATH}`, what: 'x' }));
  expect(err).toMatchObject({ type: 'DemoUnavailable' });
});
