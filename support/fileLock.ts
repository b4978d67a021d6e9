// An exclusive lock between processes on one file system, for the little state that worker
// processes sharing DATA_DIR must agree on (the Bitrix24 refresh token, the providers' request
// budgets). The lock file is created with O_EXCL and names its holder; a holder on this host that
// no longer runs, or a lock older than `staleMs`, is taken over.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { logger } from './logger';

export interface FileLockOptions {
  /** A lock held longer than this was left by a process that died holding it. */
  staleMs: number;
  /** How long to wait for another holder before giving up with `onTimeout()`'s error. */
  waitMs: number;
  onTimeout: () => Error;
  pollMs?: number;
}

const Holder = z.object({ host: z.string(), pid: z.number() });
const log = logger.child({ component: 'file-lock' });

/** Takes the lock; the returned function releases it (only if it is still ours). */
export async function acquireFileLock(lockFile: string, opts: FileLockOptions): Promise<() => Promise<void>> {
  const pollMs = opts.pollMs ?? 25;
  const me = holderId();
  const giveUpAt = Date.now() + opts.waitMs;
  await fs.promises.mkdir(path.dirname(lockFile), { recursive: true });
  for (;;) {
    try {
      const fh = await fs.promises.open(lockFile, 'wx', 0o600);
      try {
        await fh.writeFile(me);
      } finally {
        await fh.close();
      }
      return async () => {
        // Only our own lock: a holder judged stale meanwhile may have been replaced.
        const now = await fs.promises.readFile(lockFile, 'utf8').catch(() => undefined);
        if (now === me) await fs.promises.rm(lockFile, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await isStale(lockFile, opts.staleMs, pollMs)) {
      log.warn({ lockFile }, 'taking over a stale lock');
      await fs.promises.rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() > giveUpAt) throw opts.onTimeout();
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Runs `fn` under the lock. */
export async function withFileLock<T>(
  lockFile: string,
  opts: FileLockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const release = await acquireFileLock(lockFile, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

async function isStale(lockFile: string, staleMs: number, pollMs: number): Promise<boolean> {
  let text: string, mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([
      fs.promises.readFile(lockFile, 'utf8'),
      fs.promises.stat(lockFile),
    ]);
  } catch {
    return false; // gone meanwhile: the next O_EXCL attempt tells
  }
  return judgedStale(text, mtimeMs, staleMs, pollMs);
}

function isStaleSync(lockFile: string, staleMs: number, pollMs: number): boolean {
  try {
    return judgedStale(fs.readFileSync(lockFile, 'utf8'), fs.statSync(lockFile).mtimeMs, staleMs, pollMs);
  } catch {
    return false;
  }
}

function judgedStale(text: string, mtimeMs: number, staleMs: number, pollMs: number): boolean {
  if (Date.now() - mtimeMs > staleMs) return true;
  const holder = Holder.safeParse(safeJson(text));
  if (!holder.success) return Date.now() - mtimeMs > pollMs * 40; // written but not yet filled in, or torn
  if (holder.data.host !== os.hostname()) return false;
  try {
    process.kill(holder.data.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs `fn` under the lock with the lock taken, `fn` run and the lock released in one synchronous
 * step: for a few bytes of state read and written with sync I/O, this holds the lock for
 * microseconds and costs no turn of the event loop, where the async lock costs eight file-system
 * round trips through libuv's pool (under load, tens of milliseconds each time, one caller after
 * another). Waits `pollMs` between tries while another process holds the lock.
 */
export async function withFileLockSync<T>(lockFile: string, opts: FileLockOptions, fn: () => T): Promise<T> {
  const pollMs = opts.pollMs ?? 25;
  const giveUpAt = Date.now() + opts.waitMs;
  for (;;) {
    const release = tryFileLockSync(lockFile, opts.staleMs, pollMs);
    if (release) {
      try {
        return fn();
      } finally {
        release();
      }
    }
    if (Date.now() > giveUpAt) throw opts.onTimeout();
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The lock if it is free (or left stale), else undefined; the returned function releases it. */
function tryFileLockSync(lockFile: string, staleMs: number, pollMs: number): (() => void) | undefined {
  const me = holderId();
  for (let tries = 0; tries < 3; tries++) {
    try {
      const fd = fs.openSync(lockFile, 'wx', 0o600);
      try {
        fs.writeSync(fd, me);
      } finally {
        fs.closeSync(fd);
      }
      return () => {
        // Only our own lock: a holder judged stale meanwhile may have been replaced.
        const now = readOrUndefined(lockFile);
        if (now === me) fs.rmSync(lockFile, { force: true });
      };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') fs.mkdirSync(path.dirname(lockFile), { recursive: true });
      else if (code !== 'EEXIST') throw err;
      else if (isStaleSync(lockFile, staleMs, pollMs)) {
        log.warn({ lockFile }, 'taking over a stale lock');
        fs.rmSync(lockFile, { force: true });
      } else return undefined;
    }
  }
  return undefined;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** What a lock file says of its holder: this host and process (for the stale check), and this take. */
function holderId(): string {
  return JSON.stringify({ host: os.hostname(), pid: process.pid, at: Date.now(), n: Math.random() });
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
