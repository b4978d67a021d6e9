// One service process against an existing Temporal (TEMPORAL_ADDRESS, or the local dev server's
// port): `npm run worker` (SERVICE_ROLE=worker), `npm run api` (SERVICE_ROLE=api), or both. This is
// how production runs several workers and API instances side by side.
import 'dotenv/config';
import { loadConfig } from '../config';
import { startService } from '.';
import { installTemporalRuntime } from './runtime';
import { logger } from '../support/logger';
import { mallocOf } from '../support/malloc';

async function main(): Promise<void> {
  const config = loadConfig();
  const role = config.serviceRole;
  const { sdkMetrics } = installTemporalRuntime(config);
  const service = await startService(config, { role, extraMetrics: sdkMetrics });
  logger.info(
    {
      role,
      url: service.url,
      metrics: service.metricsUrl ?? (config.metrics.token ? `${service.url}/metrics (bearer)` : undefined),
      temporal: config.temporal.address ?? `127.0.0.1:${config.temporal.port}`,
      malloc: mallocOf(),
    },
    'service started',
  );
  // Not through the logger, which never prints secrets: this one exists so that a person can log in.
  if (config.operator.generatedFile && role !== 'worker') {
    console.log(`Operator token: ${config.operator.token} (generated into ${config.operator.generatedFile})`);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    setTimeout(() => process.exit(1), 20_000).unref();
    void service.close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
