// The workflow bundle the workers load. Webpack builds it in a short-lived child process: in the
// service's own process it would leave about 200 MB of resident memory behind for good.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BundleOptions } from '@temporalio/worker';
import { logger } from '../support/logger';

/** The bundler's progress lines are noise in the service's log; its warnings still matter. */
export const quietBundler = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn(message: string, meta?: Record<string, unknown>) {
    logger.warn({ ...meta, component: 'workflow-bundler' }, message);
  },
  error(message: string, meta?: Record<string, unknown>) {
    logger.error({ ...meta, component: 'workflow-bundler' }, message);
  },
};

/**
 * How every bundle of the workflows is built: the service's, the tests', the benchmark's.
 * Preloaded modules are evaluated once per worker and shared by every workflow in its V8 context,
 * instead of once per workflow: the time-zone library (date-fns-tz and the date-fns modules under
 * it, over a hundred) and the working-hours rules are pure functions whose only module state is a
 * cache of Intl formatters, which holds nothing of any one lead.
 */
export function workflowBundleOptions(): BundleOptions {
  return {
    workflowsPath: require.resolve('../workflows'),
    preloadModules: ['date-fns-tz', require.resolve('../domain/workingHours')],
    logger: quietBundler,
  };
}

/** Bundles the workflows into `dir` and returns the code; the file is per process, then removed. */
export async function buildWorkflowBundle(dir: string): Promise<{ code: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `workflow-bundle-${process.pid}.js`);
  try {
    // The same runtime flags (the TypeScript loader under `tsx`), so the entry runs as this one does.
    await promisify(execFile)(
      process.execPath,
      [...process.execArgv, require.resolve('./bundleMain'), file],
      {
        maxBuffer: 16 * 2 ** 20,
      },
    );
    return { code: fs.readFileSync(file, 'utf8') };
  } finally {
    fs.rmSync(file, { force: true });
  }
}
