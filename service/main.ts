// One service process against an existing Temporal (TEMPORAL_ADDRESS, or the local dev server's
// port): `npm run worker` (SERVICE_ROLE=worker), `npm run api` (SERVICE_ROLE=api), or both. This is
// how production runs several workers and API instances side by side.
import 'dotenv/config';
import { loadConfig } from '../config';
import { startService } from '.';
import { installTemporalRuntime } from './runtime';
import { logger } from '../support/logger';

async function main(): Promise<void> {
  const config = loadConfig();
  const role = config.serviceRole;
  const { sdkMetrics } = installTemporalRuntime(config);
  const service = await startService(config, { role, extraMetrics: sdkMetrics });
  logger.info(
    { role, url: service.url, temporal: config.temporal.address ?? `127.0.0.1:${config.temporal.port}` },
    'service started',
  );
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
