// The workflow bundle the workers load. Webpack builds it in a short-lived child process: in the
// service's own process it would leave about 200 MB of resident memory behind for good.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
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
