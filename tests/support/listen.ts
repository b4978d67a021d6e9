// An emulator's app on a loopback port for the whole test file: started before the first test,
// closed (with its keep-alive connections) after the last.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';

/** Registers the file's beforeAll/afterAll; the function answers the app's base URL. */
export function listenForTests(app: Express): () => string {
  let server: Server | undefined;
  let url = '';
  beforeAll(async () => {
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });
  return () => url;
}
