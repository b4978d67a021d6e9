// Process-wide Temporal runtime: its logs into our pino logger, its metrics on a loopback port that
// /metrics appends to ours.
import { Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { logger } from '../support/logger';
import { pinoTemporalLogger } from '../support/temporalLogger';

export function installTemporalRuntime(config: AppConfig): { sdkMetrics?: () => Promise<string> } {
  const port = config.sdkMetricsPort;
  Runtime.install({
    logger: pinoTemporalLogger(logger),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN' }), forward: {} },
      metrics: port ? { prometheus: { bindAddress: `127.0.0.1:${port}` } } : undefined,
    },
  });
  return {
    sdkMetrics: port ? async () => (await fetch(`http://127.0.0.1:${port}/metrics`)).text() : undefined,
  };
}
