// The settings of issue 16 and the phone rules they rest on, without a server: the operator token
// (generated and kept, or required), the allowed countries decided from the number plan, the
// captcha's modes, and numbers that an "8" would otherwise turn Russian.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config';
import { normalizePhone, phoneCountry } from '../domain/phone';

const dataDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'stl-secconfig-'));
const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig({ DATA_DIR: dataDir(), ...env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.join('\n');
    throw err;
  }
  return '';
};

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
    const config = loadConfig({ DATA_DIR: dir, OPERATOR_TOKEN: 'a-token-the-operators-chose' });
    expect(config.operator).toEqual({ token: 'a-token-the-operators-chose' });
    expect(fs.existsSync(path.join(dir, 'operator.token'))).toBe(false);
  });

  test('production refuses to start without it; a short one is refused anywhere', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toContain(
      'OPERATOR_TOKEN: required when NODE_ENV=production',
    );
    expect(problemsOf({ OPERATOR_TOKEN: 'short' })).toContain(
      'OPERATOR_TOKEN: must be at least 16 characters',
    );
    expect(problemsOf({ INTAKE_API_KEY: 'short' })).toContain(
      'INTAKE_API_KEY: must be at least 16 characters',
    );
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
