// scripts/node.sh, which starts the service (npm start, npm run service/worker/api): the memory
// settings it gives the process, and that a setting of the caller's own wins.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const ROOT = path.join(__dirname, '..');
const JEMALLOC_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
  '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2',
  '/usr/lib64/libjemalloc.so.2',
  '/usr/lib/libjemalloc.so.2',
];
const systemHasJemalloc = JEMALLOC_PATHS.some((p) => fs.existsSync(p));

// What the started process sees: its malloc as the service's start-up log reports it, and its settings.
const probe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'stl-node-sh-')), 'probe.ts');
fs.writeFileSync(
  probe,
  `import { mallocOf } from ${JSON.stringify(path.join(ROOT, 'support', 'malloc'))};
console.log(JSON.stringify({
  malloc: mallocOf(),
  preload: process.env.LD_PRELOAD ?? null,
  mallocConf: process.env.MALLOC_CONF ?? null,
  glibc: process.env.GLIBC_TUNABLES ?? null,
  nodeOptions: process.env.NODE_OPTIONS ?? null,
}));
`,
);

async function startedWith(env: Record<string, string>) {
  const base = { ...process.env };
  for (const name of ['LD_PRELOAD', 'MALLOC_CONF', 'STL_MALLOC', 'GLIBC_TUNABLES', 'NODE_OPTIONS'])
    delete base[name];
  const { stdout } = await promisify(execFile)('bash', [path.join(ROOT, 'scripts', 'node.sh'), probe], {
    cwd: ROOT,
    env: { ...base, ...env },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as {
    malloc: string;
    preload: string | null;
    mallocConf: string | null;
    glibc: string | null;
    nodeOptions: string | null;
  };
}

test('jemalloc when the system has it, glibc with fixed thresholds otherwise; young generation capped', async () => {
  const got = await startedWith({});
  expect(got.malloc).toBe(systemHasJemalloc ? 'jemalloc' : 'system');
  if (systemHasJemalloc) {
    expect(JEMALLOC_PATHS).toContain(got.preload);
    expect(got.mallocConf).toBe('background_thread:true');
  } else {
    expect(got.preload).toBeNull();
  }
  expect(got.glibc).toMatch(/^glibc\.malloc\.arena_max=2/);
  expect(got.nodeOptions).toMatch(/^--max-semi-space-size=4 /);
}, 30_000);

test("STL_MALLOC=glibc keeps glibc's malloc; the caller's own preload and settings are kept", async () => {
  const glibc = await startedWith({ STL_MALLOC: 'glibc' });
  expect(glibc).toMatchObject({ malloc: 'system', preload: null, mallocConf: null });

  const own = await startedWith({
    GLIBC_TUNABLES: 'glibc.malloc.arena_max=1',
    MALLOC_CONF: 'narenas:1',
    NODE_OPTIONS: '--max-semi-space-size=2',
    ...(systemHasJemalloc ? { LD_PRELOAD: JEMALLOC_PATHS.find((p) => fs.existsSync(p))! } : {}),
  });
  expect(own.glibc).toBe('glibc.malloc.arena_max=1');
  // Node takes the last of a repeated flag: the caller's.
  expect(own.nodeOptions).toBe('--max-semi-space-size=4 --max-semi-space-size=2');
  if (systemHasJemalloc) expect(own).toMatchObject({ malloc: 'jemalloc', mallocConf: 'narenas:1' });
}, 30_000);
