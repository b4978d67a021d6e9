// The configuration as a test reads it: each load in a DATA_DIR of its own, and the problems a
// configuration that does not start is refused with.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../config';

export const tempDataDir = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'stl-config-'));

/** Why `env` would not start (each problem as the start-up error names it); [] when it would. */
export function configProblems(env: Record<string, string>): string[] {
  try {
    loadConfig({ DATA_DIR: tempDataDir(), ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}
