// One process that serves the API and runs the worker, sharing one native connection: that is what
// lets a lead's workflow start eagerly (its first task never waits for a poll). Providers without
// credentials are pointed at the project's emulators, started here, and the log says so.
import type http from 'node:http';
import type { Express } from 'express';
import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { buildApp } from '../api/app';
import { metricsApp } from '../api/metrics';
import { createMetrics, type Metrics } from '../support/metrics';
import { startEmulators, withEmulatorUrls, type EmulatorOptions, type RunningEmulators } from '../emulators';
import { connectToTemporal } from '../worker/connection';
import { createLeadWorkers, type LeadWorkers, type WorkflowSource } from '../worker/worker';
import { logger as rootLogger, type Logger } from '../support/logger';
import { AesGcmPayloadCodec } from '../support/codec';
import type { Clock } from '../support/clock';

export interface ServiceOptions {
  /** 'all' (default): API and worker in one process; or one of them, to scale them apart. */
  role?: 'all' | 'api' | 'worker';
  connection?: NativeConnection;
  workflows?: WorkflowSource;
  logger?: Logger;
  metrics?: Metrics;
  extraMetrics?: () => Promise<string>;
  /** Start the emulators for providers without credentials (default true). */
  emulators?: boolean;
  emulatorOptions?: EmulatorOptions;
  /** The API's clock for its shared dashboard data (default: the system clock). */
  clock?: Clock;
}

export interface RunningService {
  config: AppConfig;
  url?: string;
  server?: http.Server;
  /** where GET /metrics answers on loopback (METRICS_PORT), when this process serves it there */
  metricsUrl?: string;
  client: Client;
  workers?: LeadWorkers;
  emulators?: RunningEmulators;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startService(
  baseConfig: AppConfig,
  options: ServiceOptions = {},
): Promise<RunningService> {
  const logger = options.logger ?? rootLogger;
  const role = options.role ?? 'all';
  const metrics = options.metrics ?? createMetrics();
  let config = baseConfig;
  let emulators: RunningEmulators | undefined;
  const emulated = [
    ...(['bitrix24', 'voximplant', 'sms', 'telegram'] as const).filter((p) => config[p].mode === 'emulator'),
    ...(config.captcha?.mode === 'emulator' ? ['captcha' as const] : []),
  ];
  if (emulated.length > 0 && options.emulators !== false) {
    emulators = await startEmulators(options.emulatorOptions);
    config = withEmulatorUrls(config, emulators.urls);
    const real = (['bitrix24', 'voximplant', 'sms', 'telegram'] as const).filter(
      (p) => config[p].mode === 'real',
    );
    logger.warn(
      { emulated, real, urls: emulators.urls },
      `no credentials for ${emulated.join(', ')}: using the local emulators (no real calls, SMS, messages or captcha checks)${real.length > 0 ? `; real: ${real.join(', ')}` : ''}`,
    );
  }

  const ownConnection = !options.connection;
  const connection = options.connection ?? (await connectToTemporal(config));
  // Every client and worker seals payloads with the same codec: PII never reaches the server in clear.
  const dataConverter = { payloadCodecs: [new AesGcmPayloadCodec(config.encryption)] };
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter });
  let workers: LeadWorkers | undefined;
  let workersDone: Promise<void> | undefined;
  if (role !== 'api') {
    workers = await createLeadWorkers(connection, config, options.workflows, metrics, dataConverter);
    workersDone = workers.run().catch((err) => {
      logger.fatal({ err: String(err) }, 'worker stopped with an error');
      throw err;
    });
  }

  let server: http.Server | undefined;
  let url: string | undefined;
  if (role !== 'worker') {
    const app = buildApp({
      client,
      config,
      logger,
      metrics,
      isWorkerReady: () => !workers || workers.leadWorker.getState() === 'RUNNING',
      extraMetrics: options.extraMetrics,
      clock: options.clock,
    });
    server = await listen(app, config.port, config.host);
    const port = portOf(server, config.port);
    url = `http://${config.host}:${port}`;
    if (!config.publicUrlFromEnv) config.publicUrl = `http://127.0.0.1:${port}`;
  }

  // A worker alone serves its metrics only on a port it was given: with the default, an API and a
  // worker on one host would both want it.
  let metricsServer: http.Server | undefined;
  let closed = false;
  const running: RunningService = {
    config,
    url,
    server,
    client,
    workers,
    emulators,
    metrics,
    async close() {
      if (closed) return;
      closed = true;
      for (const s of [server, metricsServer]) {
        await new Promise<void>((resolve) => (s ? s.close(() => resolve()) : resolve()));
        s?.closeAllConnections();
      }
      workers?.shutdown();
      await workersDone?.catch(() => undefined);
      if (ownConnection) await connection.close();
      await emulators?.close();
    },
  };
  const metricsPort = config.metrics.port;
  if (metricsPort !== undefined && (role !== 'worker' || config.metrics.portFromEnv)) {
    const app = metricsApp({ metrics, extraMetrics: options.extraMetrics });
    try {
      metricsServer = await listen(app, metricsPort, '127.0.0.1');
    } catch (err) {
      await running.close();
      throw new Error(`METRICS_PORT ${metricsPort}: ${(err as Error).message}`, { cause: err });
    }
    running.metricsUrl = `http://127.0.0.1:${portOf(metricsServer, metricsPort)}/metrics`;
  }
  return running;
}

function listen(app: Express, port: number, host: string): Promise<http.Server> {
  // Express 5 calls back with the error when the port cannot be had (in use, not permitted).
  return new Promise<http.Server>((resolve, reject) => {
    const s = app.listen(port, host, (err) => (err ? reject(err) : resolve(s)));
  });
}

/** The port a server listens on: `asked` unless that was 0. */
function portOf(server: http.Server, asked: number): number {
  const address = server.address();
  return typeof address === 'object' && address ? address.port : asked;
}
