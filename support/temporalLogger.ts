// Routes the Temporal SDK's and Core's logs into the one pino logger.
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { Logger } from './logger';

export function pinoTemporalLogger(pino: Logger): TemporalLogger {
  const sdk = pino.child({ component: 'temporal' });
  const at = (level: LogLevel) => (message: string, meta?: LogMetadata) => {
    const fn = { TRACE: sdk.trace, DEBUG: sdk.debug, INFO: sdk.info, WARN: sdk.warn, ERROR: sdk.error }[
      level
    ];
    fn.call(sdk, meta ?? {}, message);
  };
  return {
    log: (level, message, meta) => at(level)(message, meta),
    trace: at('TRACE'),
    debug: at('DEBUG'),
    info: at('INFO'),
    warn: at('WARN'),
    error: at('ERROR'),
  };
}
