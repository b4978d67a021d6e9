// The settings of issue 16 and the phone rules they rest on, without a server: the operator token
// (generated and kept, or required), the allowed countries decided from the number plan, the
// captcha's modes, and numbers that an "8" would otherwise turn Russian.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config';
import { normalizePhone, phoneCountry } from '../domain/phone';
import { configProblems, tempDataDir } from './support/config';

const CHOSEN = 'a-token-the-operators-chose-0123456789';
const dataDir = tempDataDir;
const problemsOf = (env: Record<string, string>): string => configProblems(env).join('\n');

describe('OPERATOR_TOKEN', () => {
  test('unset: generated once into DATA_DIR (0600), the same after a restart, and said to be generated', () => {
    const dir = dataDir();
    const first = loadConfig({ DATA_DIR: dir });
    expect(first.operator.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.operator.generatedFile).toBe(path.join(dir, 'operator.token'));
    expect(fs.statSync(path.join(dir, 'operator.token')).mode & 0o777).toBe(0o600);
    expect(loadConfig({ DATA_DIR: dir }).operator.token).toBe(first.operator.token);
  });

  test('set: used as it is, nothing generated', () => {
    const dir = dataDir();
    const config = loadConfig({ DATA_DIR: dir, OPERATOR_TOKEN: CHOSEN });
    expect(config.operator).toEqual({ token: CHOSEN });
    expect(fs.existsSync(path.join(dir, 'operator.token'))).toBe(false);
  });

  test('production refuses to start without it', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toContain(
      'OPERATOR_TOKEN: required when NODE_ENV=production',
    );
  });
});

describe('secrets someone chose', () => {
  test.each([
    ['OPERATOR_TOKEN', 32],
    ['VOXIMPLANT_RESULT_SECRET', 32],
    ['CODEC_AUTH_TOKEN', 32],
    ['INTAKE_API_KEY', 32],
    ['METRICS_TOKEN', 32],
    ['TELEGRAM_WEBHOOK_SECRET', 16],
  ])('%s shorter than %i characters stops the start, naming it; that long is taken', (name, min) => {
    expect(problemsOf({ [name]: 'x'.repeat(min - 1) })).toContain(
      `${name}: must be at least ${min} characters`,
    );
    expect(problemsOf({ [name]: 'x'.repeat(min) })).toBe('');
  });
});

describe('ALLOWED_PHONE_COUNTRIES and PHONE_DAILY_LIMIT', () => {
  test('defaults RU and 3; codes are ISO 3166-1 alpha-2, any case', () => {
    expect(loadConfig({ DATA_DIR: dataDir() }).phoneRules).toMatchObject({
      allowedCountries: ['RU'],
      dailyLimit: 3,
    });
    expect(
      loadConfig({ DATA_DIR: dataDir(), ALLOWED_PHONE_COUNTRIES: 'ru, kz,BY' }).phoneRules.allowedCountries,
    ).toEqual(['RU', 'KZ', 'BY']);
    expect(problemsOf({ ALLOWED_PHONE_COUNTRIES: 'RU,XX' })).toMatch(
      /ALLOWED_PHONE_COUNTRIES: .*unknown: XX/,
    );
    expect(problemsOf({ ALLOWED_PHONE_COUNTRIES: ' , ' })).toContain('ALLOWED_PHONE_COUNTRIES');
    expect(problemsOf({ PHONE_DAILY_LIMIT: '0' })).toContain('PHONE_DAILY_LIMIT');
    expect(problemsOf({ PHONE_DAILY_LIMIT: 'many' })).toContain('PHONE_DAILY_LIMIT');
  });

  test.each([
    ['79161234567', 'RU'],
    ['74951234567', 'RU'],
    // +7 is shared: Kazakhstan's numbers are not Russia's.
    ['77011234567', 'KZ'],
    ['5351234567', 'CU'],
    ['380501234567', 'UA'],
    ['88216123456', undefined],
  ])('%s is a number of %s', (digits, country) => {
    expect(phoneCountry(digits)).toBe(country);
  });

  test('a valid international number after "+8" keeps its country code; "+8 916 …" is still Russian', () => {
    expect(normalizePhone('+882 16 123456')).toMatchObject({ ok: true, digits: '88216123456' });
    expect(normalizePhone('+8 916 123-45-67')).toEqual({
      ok: true,
      digits: '79161234567',
      callable: true,
      type: 'MOBILE',
    });
    expect(normalizePhone('8 916 123-45-67')).toMatchObject({
      ok: true,
      digits: '79161234567',
      callable: true,
    });
  });
});

describe('CAPTCHA_*', () => {
  test('off by default; a provider without keys runs on the emulator (development only)', () => {
    expect(loadConfig({ DATA_DIR: dataDir() }).captcha).toBeUndefined();
    expect(loadConfig({ DATA_DIR: dataDir(), CAPTCHA_PROVIDER: 'hcaptcha' }).captcha).toMatchObject({
      provider: 'hcaptcha',
      mode: 'emulator',
    });
    expect(problemsOf({ NODE_ENV: 'production', CAPTCHA_PROVIDER: 'turnstile' })).toContain(
      'CAPTCHA_SECRET: required when NODE_ENV=production and CAPTCHA_PROVIDER is set',
    );
  });

  test.each([
    ['smartcaptcha', 'https://smartcaptcha.yandexcloud.net/validate'],
    ['hcaptcha', 'https://api.hcaptcha.com/siteverify'],
    ['turnstile', 'https://challenges.cloudflare.com/turnstile/v0/siteverify'],
  ])('%s with keys: verified at %s unless CAPTCHA_VERIFY_URL says otherwise', (provider, url) => {
    const keys = { CAPTCHA_PROVIDER: provider, CAPTCHA_SITE_KEY: 'site', CAPTCHA_SECRET: 'secret' };
    expect(loadConfig({ DATA_DIR: dataDir(), ...keys }).captcha).toMatchObject({
      mode: 'real',
      verifyUrl: url,
    });
    expect(
      loadConfig({ DATA_DIR: dataDir(), ...keys, CAPTCHA_VERIFY_URL: 'http://10.0.0.5:8080/verify' }).captcha,
    ).toMatchObject({ verifyUrl: 'http://10.0.0.5:8080/verify' });
  });

  test.each([
    [{ CAPTCHA_PROVIDER: 'recaptcha' }, 'CAPTCHA_PROVIDER'],
    [
      { CAPTCHA_PROVIDER: 'hcaptcha', CAPTCHA_SECRET: 'only-the-secret' },
      'CAPTCHA_SITE_KEY and CAPTCHA_SECRET',
    ],
    [{ CAPTCHA_SECRET: 'no-provider' }, 'CAPTCHA_SECRET: has no effect without CAPTCHA_PROVIDER'],
    [{ CAPTCHA_PROVIDER: 'hcaptcha', CAPTCHA_VERIFY_URL: 'http://x.example/v' }, 'CAPTCHA_VERIFY_URL needs'],
  ])('%j stops the start naming %s', (env, name) => {
    expect(problemsOf(env)).toContain(name);
  });
});

describe('TRUST_PROXY', () => {
  const trustOf = (value?: string) =>
    loadConfig({ DATA_DIR: dataDir(), ...(value === undefined ? {} : { TRUST_PROXY: value }) }).trustProxy;

  test('a hop count reaches Express as a number, not as the address 0.0.0.1', () => {
    expect(trustOf('1')).toBe(1);
    expect(trustOf(' 2 ')).toBe(2);
    expect(trustOf('0')).toBe(0);
  });

  test.each([
    [undefined, ['loopback']],
    ['false', false],
    ['loopback', ['loopback']],
    ['loopback, linklocal,uniquelocal', ['loopback', 'linklocal', 'uniquelocal']],
    ['10.0.0.5', ['10.0.0.5']],
    ['10.0.0.0/8, 192.168.1.0/255.255.255.0', ['10.0.0.0/8', '192.168.1.0/255.255.255.0']],
    ['fd00::/8,::1', ['fd00::/8', '::1']],
    ['loopback, 2001:db8::10', ['loopback', '2001:db8::10']],
  ])('%j is taken as %j', (value, expected) => {
    expect(trustOf(value)).toEqual(expected);
  });

  test.each([
    ['true', /"true" believes any client/],
    ['yes', /"yes" is none of/],
    ['1, loopback', /hop count \(1\) stands alone/],
    ['-1', /"-1" is none of/],
    ['10.1', /"10.1" is none of/],
    ['0x7f.1', /is none of/],
    ['10.0.0.0/33', /invalid range/],
    ['10.0.0.0/8/8', /is none of/],
    ['loopback,,10.0.0.1', /an empty item/],
    ['2001:db8::/129', /invalid range/],
  ])('%j stops the start naming TRUST_PROXY', (value, message) => {
    const problems = problemsOf({ TRUST_PROXY: value });
    expect(problems).toMatch(/^TRUST_PROXY: /m);
    expect(problems).toMatch(message);
  });
});

describe('METRICS_PORT and METRICS_TOKEN', () => {
  const metricsOf = (env: Record<string, string>) => loadConfig({ DATA_DIR: dataDir(), ...env }).metrics;
  test('a loopback port of its own by default (9465, beside the SDK exporter 9464), 0 for any free one', () => {
    expect(metricsOf({})).toEqual({ port: 9465, portFromEnv: false });
    expect(metricsOf({ METRICS_PORT: '0' })).toEqual({ port: 0, portFromEnv: true });
    expect(metricsOf({ METRICS_PORT: '' })).toEqual({ port: 9465, portFromEnv: false });
    expect(problemsOf({ METRICS_PORT: 'ninety' })).toMatch(/^METRICS_PORT: /m);
  });
  test('with METRICS_TOKEN: the API port with the bearer, no port of its own unless one is named', () => {
    const token = 'metrics-scraper-token-0123456789abcdef';
    expect(metricsOf({ METRICS_TOKEN: token })).toEqual({ portFromEnv: false, token });
    expect(metricsOf({ METRICS_TOKEN: token, METRICS_PORT: '9999' })).toEqual({
      port: 9999,
      portFromEnv: true,
      token,
    });
  });
});

describe('real and emulated providers', () => {
  const SMSRU = { SMSRU_API_ID: 'real-sms-ru-api-id' };
  const TELEGRAM = { TELEGRAM_BOT_TOKEN: '123:real', TELEGRAM_CHAT_ID: '-100123' };
  const BITRIX24 = { BITRIX24_WEBHOOK_URL: 'https://shop.bitrix24.ru/rest/1/code/' };
  const VOXIMPLANT = {
    VOXIMPLANT_ACCOUNT_ID: '1',
    VOXIMPLANT_API_KEY: 'real-key',
    VOXIMPLANT_RULE_ID: '7',
    PUBLIC_URL: 'https://leads.shop.example',
  };
  const ALL = { ...SMSRU, ...TELEGRAM, ...BITRIX24, ...VOXIMPLANT };
  const modesOf = (env: Record<string, string>) => {
    const c = loadConfig({ DATA_DIR: dataDir(), ...env });
    return [c.bitrix24.mode, c.voximplant.mode, c.sms.mode, c.telegram.mode];
  };

  test('all emulated or all real start as before', () => {
    expect(modesOf({})).toEqual(['emulator', 'emulator', 'emulator', 'emulator']);
    expect(modesOf(ALL)).toEqual(['real', 'real', 'real', 'real']);
  });

  test('a mix refuses to start, naming the emulated ones and the EMULATE that would allow it', () => {
    const problems = problemsOf({ ...SMSRU, ...TELEGRAM });
    expect(problems).toContain(
      'EMULATE: bitrix24, voximplant would run on the emulators (no credentials) while smsru, telegram are real',
    );
    expect(problems).toContain('EMULATE=bitrix24,voximplant');
  });

  test('EMULATE naming exactly the emulated ones starts the mix', () => {
    expect(modesOf({ ...SMSRU, ...TELEGRAM, EMULATE: 'bitrix24, voximplant' })).toEqual([
      'emulator',
      'emulator',
      'real',
      'real',
    ]);
    expect(modesOf({ ...BITRIX24, ...VOXIMPLANT, ...TELEGRAM, EMULATE: 'smsru' })).toEqual([
      'real',
      'real',
      'emulator',
      'real',
    ]);
  });

  test.each([
    [{ ...SMSRU, EMULATE: 'bitrix24,voximplant' }, 'EMULATE: telegram would run on the emulators'],
    [{ ...SMSRU, EMULATE: 'bitrix24,voximplant,telegram,smsru' }, 'EMULATE: smsru has credentials set'],
    [{ EMULATE: 'smsru' }, 'EMULATE: bitrix24, voximplant, telegram would run on the emulators too'],
    [{ EMULATE: 'sms' }, 'EMULATE: unknown provider sms (known: bitrix24, voximplant, smsru, telegram)'],
    [{ NODE_ENV: 'production', ...ALL, EMULATE: 'smsru' }, 'EMULATE: production runs on real providers only'],
  ])('%j is refused: %s', (env, message) => {
    expect(problemsOf(env)).toContain(message);
  });

  test('in production the codec decodes for CODEC_AUTH_TOKEN only, whoever the caller', () => {
    const production = {
      NODE_ENV: 'production',
      ...ALL,
      ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
      OPERATOR_TOKEN: CHOSEN,
      VOXIMPLANT_RESULT_SECRET: CHOSEN,
      PHONE_ID_KEY: CHOSEN,
    };
    expect(loadConfig({ DATA_DIR: dataDir(), ...production }).codec.localWithoutToken).toBe(false);
    expect(loadConfig({ DATA_DIR: dataDir() }).codec.localWithoutToken).toBe(true);
  });

  test('a real VoxImplant needs PUBLIC_URL, an https one', () => {
    const { PUBLIC_URL: _, ...withoutUrl } = VOXIMPLANT;
    const env = { ...withoutUrl, EMULATE: 'bitrix24,smsru,telegram' };
    expect(problemsOf(env)).toContain('PUBLIC_URL: required when VoxImplant is real');
    expect(problemsOf({ ...env, PUBLIC_URL: 'http://leads.shop.example' })).toContain(
      'PUBLIC_URL: must be an https URL when VoxImplant is real',
    );
    expect(problemsOf({ ...env, PUBLIC_URL: 'https://leads.shop.example' })).toBe('');
    // An emulator on this host (outside production) runs the scenario here, where loopback works.
    const local = { ...env, VOXIMPLANT_API_URL: 'http://127.0.0.1:4010' };
    expect(problemsOf(local)).toBe('');
    expect(problemsOf({ ...local, NODE_ENV: 'production' })).toContain(
      'PUBLIC_URL: required when VoxImplant is real',
    );
  });
});
