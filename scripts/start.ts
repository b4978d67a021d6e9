// The run command: a local Temporal dev server (SQLite under DATA_DIR, Web UI, search attributes),
// then the API and the worker in one process. Ctrl-C stops everything it started.
import 'dotenv/config';
import { ConfigError, loadConfig, type AppConfig } from '../config';
import { startService } from '../service';
import { startDevServer, type DevServer } from '../support/temporalServer';
import { logger } from '../support/logger';
import { installTemporalRuntime } from '../service/runtime';

function startLocalTemporal(config: AppConfig): Promise<DevServer> {
  return startDevServer({
    dir: config.dataDir,
    port: config.temporal.port,
    uiPort: config.temporal.uiPort,
    namespace: config.temporal.namespace,
    // The Web UI asks our API to decrypt payloads for the operator (see api/codec.ts).
    uiCodecEndpoint: `${config.publicUrl}/codec`,
    log: true,
    onUnexpectedExit: (code, signal) => {
      logger.fatal({ code, signal }, 'the Temporal dev server exited; see DATA_DIR/temporal-server.log');
      process.exit(1);
    },
  });
}

let stopping = false;

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const { sdkMetrics } = installTemporalRuntime(config);

  let temporal: DevServer | undefined;
  if (!config.temporal.address) {
    logger.info('starting the local Temporal dev server');
    temporal = await startLocalTemporal(config);
  }
  const service = await startService(config, { extraMetrics: sdkMetrics });

  const lines = [
    `API and lead form:  ${service.url}/`,
    `Dashboard:          ${service.url}/dashboard`,
    ...(service.metricsUrl ? [`Metrics:            ${service.metricsUrl}`] : []),
    ...(config.metrics.token
      ? [`Metrics (bearer):   ${service.url}/metrics (Authorization: Bearer <METRICS_TOKEN>)`]
      : []),
    ...(config.operator.generatedFile
      ? [
          `Operator token:     ${config.operator.token}`,
          `                    (for the dashboard and GET /api/leads/:ref; kept in ${config.operator.generatedFile}; OPERATOR_TOKEN sets your own)`,
        ]
      : []),
    config.temporal.address
      ? `Temporal:           ${config.temporal.address} (namespace ${config.temporal.namespace})`
      : `Temporal Web UI:    http://127.0.0.1:${config.temporal.uiPort}/namespaces/${config.temporal.namespace}/workflows`,
    ...(service.emulators
      ? [
          `Emulators:          ${Object.entries(service.emulators.urls)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
          `                    (used by: ${[
            ...(['bitrix24', 'voximplant', 'sms', 'telegram'] as const).filter(
              (p) => config[p].mode === 'emulator',
            ),
            ...(config.captcha?.mode === 'emulator' ? ['captcha'] : []),
          ].join(', ')})`,
        ]
      : []),
    'Press Ctrl-C to stop.',
  ];
  console.log(`\nspeed-to-lead is running\n  ${lines.join('\n  ')}\n`);

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const force = setTimeout(() => process.exit(1), 20_000);
    force.unref();
    await service
      .close()
      .catch((err) => logger.error({ err: String(err) }, 'error while stopping the service'));
    await temporal?.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  logger.fatal({ err: String(err) }, 'start failed');
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
