import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parse } from 'dotenv';
import { CONFIG_VARIABLES, loadConfig, logLevelOf } from '../config';
import { readOrCreateSecret } from '../config/secrets';
import { CACHED_LEAD_BYTES, workflowCacheSize } from '../worker/cacheSize';
import { nativeConnectionOptions } from '../worker/connection';
import { configProblems, tempDataDir } from './support/config';

const ROOT = path.join(__dirname, '..');
const dataDir = tempDataDir;
const problemsOf = configProblems;

/** Environment variables a TypeScript text reads: `process.env.X`, `process.env['X']`, `env.X`, `{ X } = process.env`. */
function variablesRead(source: string): string[] {
  const names: string[] = [];
  for (const m of source.matchAll(
    /\benv(?:\.([A-Z][A-Z0-9_]*)|\[\s*(['"`])([A-Z][A-Z0-9_]*)\2\s*\])(\s*=(?!=))?/g,
  )) {
    // An assignment sets a variable for the code it is about to load; it reads nothing.
    if (!m[4]) names.push((m[1] ?? m[3])!);
  }
  for (const m of source.matchAll(/\{([^{}]*)\}\s*=\s*(?:process\.)?env\b/g)) {
    names.push(...[...m[1]!.matchAll(/\b([A-Z][A-Z0-9_]*)\b/g)].map((n) => n[1]!));
  }
  return names;
}

function typeScriptFiles(dir: string, out: string[] = []): string[] {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (['node_modules', 'tests', 'data', 'coverage'].includes(entry.name) || entry.name.startsWith('.'))
      continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) typeScriptFiles(file, out);
    else if (entry.name.endsWith('.ts')) out.push(file);
  }
  return out;
}

/**
 * Processes that are not the service and take their own knobs (the benchmark, the emulators run on
 * their own); the service they start still reads its variables through the schema.
 */
const TOOLS = [/^scripts\/bench(\.ts|\/)/, /^emulators\/main\.ts$/];

test('the scanner finds every way of reading a variable', () => {
  const source = [
    'const a = process.env.ALPHA ?? 1;',
    "const b = process.env['BRAVO'];",
    'const c = env.CHARLIE;',
    'const { DELTA, ECHO: e } = process.env;',
    "process.env.FOXTROT = 'x';",
    'if (process.env.GOLF === "1") {}',
  ].join('\n');
  expect(variablesRead(source).sort()).toEqual(['ALPHA', 'BRAVO', 'CHARLIE', 'DELTA', 'ECHO', 'GOLF']);
});

test('the code reads the environment only through the schema, and .env.example documents every variable', () => {
  const files = typeScriptFiles(ROOT).map((file) => path.relative(ROOT, file).split(path.sep).join('/'));
  expect(files).toEqual(expect.arrayContaining(['config/index.ts', 'service/main.ts', 'support/logger.ts']));
  const reads = files.flatMap((file) =>
    variablesRead(fs.readFileSync(path.join(ROOT, file), 'utf8')).map((name) => ({ file, name })),
  );
  const outsideTheSchema = reads
    .filter((r) => !TOOLS.some((tool) => tool.test(r.file)))
    .map(
      (r) =>
        `${r.file}: ${r.name}${CONFIG_VARIABLES.includes(r.name as never) ? '' : ' (not in the schema)'}`,
    );
  expect(outsideTheSchema).toEqual([]);

  const exampleText = fs.readFileSync(path.join(ROOT, '.env.example'), 'utf8');
  const documented = [...exampleText.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
  expect(CONFIG_VARIABLES.length).toBeGreaterThan(50);
  expect(CONFIG_VARIABLES.filter((name) => !documented.includes(name))).toEqual([]);
  expect(documented.filter((name) => !CONFIG_VARIABLES.includes(name as never))).toEqual([]);

  const config = loadConfig({ ...parse(exampleText), DATA_DIR: dataDir() });
  expect(config.call).toMatchObject({
    retryDelayMs: 30 * 60_000,
    maxAttempts: 5,
    resultTimeoutMs: 10 * 60_000,
  });
});

test('LOG_LEVEL and SERVICE_ROLE are read through the schema', () => {
  expect(logLevelOf({ LOG_LEVEL: 'debug' })).toBe('debug');
  expect(logLevelOf({ NODE_ENV: 'test' })).toBe('silent');
  expect(logLevelOf({})).toBe('info');
  // A wrong level leaves the logger at info; the start then stops naming it.
  expect(logLevelOf({ LOG_LEVEL: 'loud' })).toBe('info');
  expect(problemsOf({ LOG_LEVEL: 'loud' }).join('\n')).toContain('LOG_LEVEL');
  expect(loadConfig({ DATA_DIR: dataDir(), SERVICE_ROLE: 'worker' }).serviceRole).toBe('worker');
  expect(loadConfig({ DATA_DIR: dataDir() }).serviceRole).toBe('all');
  expect(problemsOf({ SERVICE_ROLE: 'both' }).join('\n')).toContain('SERVICE_ROLE');
});

test('defaults: no credentials → every provider on its emulator, contract defaults', () => {
  const config = loadConfig({ DATA_DIR: dataDir() });
  expect([config.bitrix24.mode, config.voximplant.mode, config.sms.mode, config.telegram.mode]).toEqual([
    'emulator',
    'emulator',
    'emulator',
    'emulator',
  ]);
  expect(config).toMatchObject({
    port: 3000,
    host: '127.0.0.1',
    defaultTimezone: 'Europe/Moscow',
    workingHoursText: '09:00-21:00',
  });
  expect(config.temporal).toMatchObject({ port: 7233, uiPort: 8233, namespace: 'default' });
  expect(config.publicUrl).toBe('http://127.0.0.1:3000');
  // The generated result secret survives a restart.
  const dir = dataDir();
  expect(loadConfig({ DATA_DIR: dir }).voximplant.resultSecret).toBe(
    loadConfig({ DATA_DIR: dir }).voximplant.resultSecret,
  );
});

test.each([
  [{ PORT: 'eighty' }, 'PORT'],
  [{ WORKING_HOURS: '21:00-09:00' }, 'WORKING_HOURS'],
  [{ DEFAULT_TIMEZONE: 'Mars/Olympus' }, 'DEFAULT_TIMEZONE'],
  [{ CALL_RETRY_DELAY: 'soon' }, 'CALL_RETRY_DELAY'],
  [{ CALL_MAX_ATTEMPTS: '0' }, 'CALL_MAX_ATTEMPTS'],
  [{ BITRIX24_WEBHOOK_URL: 'not a url' }, 'BITRIX24_WEBHOOK_URL'],
  [{ BITRIX24_CLIENT_ID: 'only-one-of-four' }, 'BITRIX24_PORTAL_URL'],
  [{ TELEGRAM_BOT_TOKEN: '1:x' }, 'TELEGRAM_CHAT_ID'],
  [{ VOXIMPLANT_ACCOUNT_ID: '1', VOXIMPLANT_API_KEY: 'k' }, 'VOXIMPLANT_RULE_ID'],
  [{ ENCRYPTION_KEYS: 'k1:short' }, 'ENCRYPTION_KEYS'],
  [{ TEMPORAL_TLS_CERT: '/x.pem' }, 'TEMPORAL_TLS_KEY'],
])('a wrong %j stops the start with a message naming %s', (env, name) => {
  expect(problemsOf(env).join('\n')).toContain(name);
});

test('production refuses to run on emulators or without encryption keys', () => {
  const problems = problemsOf({ NODE_ENV: 'production' }).join('\n');
  for (const what of ['bitrix24', 'voximplant', 'sms', 'telegram', 'ENCRYPTION_KEYS'])
    expect(problems).toContain(what);
});

describe('production needs the secrets every process must share', () => {
  const shared = {
    VOXIMPLANT_RESULT_SECRET: 'result-secret-0123456789abcdef0123456789',
    ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
    OPERATOR_TOKEN: 'operator-token-0123456789abcdef0123456789',
    PHONE_ID_KEY: 'phone-id-key-0123456789abcdef0123456789',
  };
  const secretProblems = (env: Record<string, string>) =>
    problemsOf({ NODE_ENV: 'production', ...env }).filter((p) =>
      Object.keys(shared).some((name) => p.startsWith(`${name}:`)),
    );

  test.each(Object.keys(shared))('without %s it names that one alone', (missing) => {
    const env = Object.fromEntries(Object.entries(shared).filter(([name]) => name !== missing));
    const problems = secretProblems(env);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^${missing}: required when NODE_ENV=production`));
  });

  test('without any it names each of them; with all three none is reported', () => {
    expect(
      secretProblems({})
        .map((p) => p.split(':')[0])
        .sort(),
    ).toEqual(Object.keys(shared).sort());
    expect(secretProblems(shared)).toEqual([]);
  });

  test('the error thrown at start-up names each missing variable', () => {
    let message = '';
    try {
      loadConfig({ DATA_DIR: dataDir(), NODE_ENV: 'production' });
    } catch (err) {
      message = (err as Error).message;
    }
    for (const name of Object.keys(shared)) {
      expect(message).toContain(`- ${name}: required when NODE_ENV=production`);
    }
  });
});

describe('secrets generated into DATA_DIR', () => {
  const NAME = 'race.secret';

  /** Racers of tests/support/secretRace.ts, started together; what each printed, per directory. */
  async function race(dirs: string[], roles: Array<'generate' | 'read'>) {
    const root = dataDir();
    const list = path.join(root, 'dirs.txt');
    const done = path.join(root, 'generators-done');
    fs.writeFileSync(list, dirs.join('\n'));
    const racers = roles.map((role) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'tests/support/secretRace.ts', role, NAME, list, done],
        { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
      );
      let out = '';
      const ready = new Promise<void>((resolve) => {
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.startsWith('ready\n')) resolve();
        });
      });
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const results = async () => {
        expect(await exited).toBe(0);
        return out
          .split('\n')
          .slice(1)
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { dir: string; value: string | null });
      };
      return { role, child, ready, exited, results };
    });
    await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) r.child.stdin.end('go\n');
    await Promise.all(racers.filter((r) => r.role === 'generate').map((r) => r.exited));
    fs.writeFileSync(done, '');
    return Promise.all(racers.map(async (r) => ({ role: r.role, results: await r.results() })));
  }

  test('concurrent readers never see a key file empty or partial; concurrent generators agree', async () => {
    const root = dataDir();
    const dirs = Array.from({ length: 100 }, (_, i) => path.join(root, String(i)));
    const racers = await race(dirs, ['generate', 'generate', 'generate', 'read', 'read']);
    for (const [i, dir] of dirs.entries()) {
      const onDisk = fs.readFileSync(path.join(dir, NAME), 'utf8');
      expect(onDisk).toMatch(/^[A-Za-z0-9_-]{43}$/); // 32 random bytes, base64url
      expect(fs.statSync(path.join(dir, NAME)).mode & 0o777).toBe(0o600);
      expect(fs.readdirSync(dir)).toEqual([NAME]); // no temporary file left behind
      for (const { role, results } of racers)
        expect({ role, ...results[i] }).toEqual({ role, dir, value: onDisk });
    }
  }, 60_000);

  test('a secret survives restarts, and an emptied one stops the start instead of signing with ""', () => {
    const dir = dataDir();
    const first = readOrCreateSecret(dir, 'voximplant-result.secret');
    expect(loadConfig({ DATA_DIR: dir }).voximplant.resultSecret).toBe(first);
    expect(loadConfig({ DATA_DIR: dir }).voximplant.resultSecret).toBe(first);
    fs.writeFileSync(path.join(dir, 'voximplant-result.secret'), '');
    expect(problemsOf({ DATA_DIR: dir }).join('\n')).toMatch(
      /DATA_DIR: .*voximplant-result\.secret is empty/,
    );
    expect(readOrCreateSecret(dataDir(), 'encryption.key', 'base64')).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });
});

test('the workflow cache is sized from WORKFLOW_CACHE_MEMORY_MB unless WORKFLOW_CACHE_SIZE fixes it', () => {
  const sized = (env: Record<string, string>) =>
    workflowCacheSize(loadConfig({ DATA_DIR: dataDir(), ...env }));
  expect(sized({ WORKFLOW_CACHE_MEMORY_MB: '64' })).toBe(Math.floor((64 * 2 ** 20) / CACHED_LEAD_BYTES));
  expect(sized({ WORKFLOW_CACHE_MEMORY_MB: '256' })).toBe(Math.floor((256 * 2 ** 20) / CACHED_LEAD_BYTES));
  expect(sized({ WORKFLOW_CACHE_MEMORY_MB: '256' })).toBeGreaterThan(
    sized({ WORKFLOW_CACHE_MEMORY_MB: '64' }),
  );
  expect(sized({ WORKFLOW_CACHE_MEMORY_MB: '1' })).toBe(10);
  expect(sized({ WORKFLOW_CACHE_MEMORY_MB: '64', WORKFLOW_CACHE_SIZE: '1000' })).toBe(1000);
  expect(sized({})).toBe(
    sized({
      WORKFLOW_CACHE_MEMORY_MB: String(loadConfig({ DATA_DIR: dataDir() }).temporal.workflowCacheMemoryMb),
    }),
  );
  expect(problemsOf({ WORKFLOW_CACHE_MEMORY_MB: '0' }).join('\n')).toContain('WORKFLOW_CACHE_MEMORY_MB');
});

test("the scenario asks for its claim as long as CALL_RESULT_TIMEOUT leaves after a call's session", () => {
  const patience = (env: Record<string, string>) =>
    loadConfig({ DATA_DIR: dataDir(), ...env }).voximplant.claimPatienceMs;
  // The call's session at its longest (5 min, then 90 s for the report) is kept out of it.
  expect(patience({})).toBe(10 * 60_000 - 6.5 * 60_000);
  expect(patience({ CALL_RESULT_TIMEOUT: '20m' })).toBe(13.5 * 60_000);
  // Never less than the minute the scenario asked for before it learned claimUntil.
  expect(patience({ CALL_RESULT_TIMEOUT: '7m' })).toBe(60_000);
  expect(patience({ CALL_RESULT_TIMEOUT: '3m' })).toBe(60_000);
});

test('gRPC to Temporal is uncompressed unless TEMPORAL_GRPC_COMPRESSION=gzip; anything else is refused', () => {
  const compressionOf = (env: Record<string, string>) =>
    nativeConnectionOptions(loadConfig({ DATA_DIR: dataDir(), ...env })).grpcCompression;
  expect(compressionOf({})).toEqual({ codec: 'none' });
  expect(compressionOf({ TEMPORAL_GRPC_COMPRESSION: 'gzip' })).toEqual({ codec: 'gzip' });
  expect(problemsOf({ TEMPORAL_GRPC_COMPRESSION: 'zstd' }).join('\n')).toMatch(/TEMPORAL_GRPC_COMPRESSION/);
});
