// Secrets generated into DATA_DIR when none is configured (the result-token key, the local payload
// key). Several processes share a DATA_DIR (API and workers, or a restart racing a shutdown), so
// the file appears with its whole content or not at all, and when two processes generate at once
// both keep the one that was published first.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';

/** The secret in `dataDir/name`, generating 32 random bytes (in `encoding`) when there is none. */
export function readOrCreateSecret(
  dataDir: string,
  name: string,
  encoding: 'base64url' | 'base64' = 'base64url',
): string {
  const file = path.join(dataDir, name);
  const existing = readSecret(file);
  if (existing !== undefined) return existing;

  fs.mkdirSync(dataDir, { recursive: true });
  const tmp = path.join(dataDir, `.${name}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, crypto.randomBytes(32).toString(encoding));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // link() publishes the complete file under its name, and fails if that name exists: unlike
    // rename(), it never replaces a secret another process has already published and started using.
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    syncDir(dataDir);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  const published = readSecret(file);
  if (published === undefined) throw new Error(`${file} vanished while it was being created`);
  return published;
}

function readSecret(file: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  // Only a hand-edited or truncated file can be empty now; using it would sign with an empty key.
  if (text === '') throw new Error(`${file} is empty: delete it to generate a new secret`);
  return text;
}

/** The new directory entry must reach the disk too, or a power cut can forget a secret in use. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse to fsync a directory; the secret is still published.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
