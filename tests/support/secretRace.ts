// One racer of tests/config.test.ts's secret-file race, in a process of its own: `generate` runs
// readOrCreateSecret in each directory in turn; `read` waits for each directory's secret file to
// appear and reads it at once. Both print what they got, one JSON line per directory. The racers
// start together: each says "ready" and begins when the test writes a line to its stdin.
import fs from 'node:fs';
import path from 'node:path';
import { readOrCreateSecret } from '../../config/secrets';

const [role, name, listFile, doneFile] = process.argv.slice(2) as [string, string, string, string];
const dirs = fs.readFileSync(listFile, 'utf8').split('\n').filter(Boolean);

function readWhenThere(file: string): string | null {
  // Spins on purpose: the point is to read as soon as the name exists, mid-write if that were
  // possible. Gives up once the generators are done and the file never came (a failed generator).
  for (;;) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (fs.existsSync(doneFile) && !fs.existsSync(file)) return null;
    }
  }
}

function run(): void {
  for (const dir of dirs) {
    const value = role === 'generate' ? readOrCreateSecret(dir, name) : readWhenThere(path.join(dir, name));
    process.stdout.write(`${JSON.stringify({ dir, value })}\n`);
  }
  process.exit(0);
}

process.stdin.once('data', run);
process.stdout.write('ready\n');
