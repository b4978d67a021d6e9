import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'dotenv';
import { ConfigError, loadConfig } from '../config';

const dataDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'stl-config-'));
const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig({ DATA_DIR: dataDir(), ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

test('.env.example is a valid configuration, and every variable the code reads is documented in it', () => {
  const example = parse(fs.readFileSync(path.join(__dirname, '..', '.env.example')));
  const config = loadConfig({ ...example, DATA_DIR: dataDir() });
  expect(config.call).toMatchObject({
    retryDelayMs: 30 * 60_000,
    maxAttempts: 5,
    resultTimeoutMs: 10 * 60_000,
  });
  const documented = fs.readFileSync(path.join(__dirname, '..', '.env.example'), 'utf8');
  const source = fs.readFileSync(path.join(__dirname, '..', 'config', 'index.ts'), 'utf8');
  const schema = source.slice(
    source.indexOf('const envSchema'),
    source.indexOf('\n});', source.indexOf('const envSchema')),
  );
  const names = [...schema.matchAll(/^ {2}([A-Z0-9_]+):/gm)].map((m) => m[1]!);
  expect(names.length).toBeGreaterThan(50);
  for (const name of names) expect(documented).toMatch(new RegExp(`\\b${name}=`));
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
