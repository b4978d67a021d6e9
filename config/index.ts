// The one place that reads the environment. Each variable is declared once, in `envSchema`; the
// schema's transform gives the service its nested `AppConfig`, whose type is inferred from it.
// Everything is validated at start, so a wrong value stops the service with a message naming it
// instead of failing later inside a lead.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { isSupportedCountry } from 'libphonenumber-js/min';
import { parseDuration } from '../domain/duration';
import { parseWorkingSchedule } from '../domain/workingHours';
import { isValidTimeZone } from '../domain/timezone';
import { fillTemplate, LONGEST_NAME, MAX_NAME_LENGTH } from '../domain/customerText';
import { smsSize } from '../domain/smsSegments';
import { telegramCallbackKey } from '../domain/telegramCallback';
import { parseEncryptionKeys, type EncryptionKeys } from '../support/codec';
import { EMULATOR_CREDENTIALS, EMULATOR_PLACEHOLDER_URL } from '../emulators/credentials';
import { readOrCreateSecret } from './secrets';
import { parseTrustProxy } from './trustProxy';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** A blank value is no value: `FOO=` in .env leaves FOO at its default. */
const blank = z.literal('').transform(() => undefined);
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();
const httpUrl = z.url({ protocol: /^https?$/ });
const optionalUrl = httpUrl.optional().or(blank);
/** A base URL the adapters append paths to. */
const baseUrl = (def: string) => httpUrl.default(def).transform((v) => v.replace(/\/+$/, ''));
const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
const list = z
  .string()
  .default('')
  .transform((v) =>
    v
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  );
const origins = list.transform((items) => items.map((o) => o.replace(/\/+$/, '')));
/** A secret someone chose: long enough that guessing it is hopeless. */
const chosenSecret = (min: number) =>
  optionalString.refine((v) => v === undefined || v.length >= min, {
    error: `must be at least ${min} characters`,
  });
/** Tokens a stranger could guess at over HTTP, one request a guess. */
const SECRET_MIN_LENGTH = 32;

const duration = (def: string) =>
  z
    .string()
    .default(def)
    .transform((v, ctx) => {
      const ms = parseDuration(v);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `not a duration (e.g. 30s, 5m, 2h): "${v}"` });
        return z.NEVER;
      }
      return ms;
    });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  /** service/main.ts only: which half of the service this process runs. */
  SERVICE_ROLE: z.enum(['all', 'api', 'worker']).default('all'),
  PORT: port(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z
    .string()
    .min(1)
    .default('./data')
    .transform((v) => path.resolve(v)),
  PUBLIC_URL: optionalUrl,
  /** Unset: `info`, and `silent` under Jest (NODE_ENV=test). */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),

  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_PORT: port(7233),
  TEMPORAL_UI_PORT: port(8233),
  /** Where the operators' console links each lead's history; unset: the local UI on TEMPORAL_UI_PORT. */
  TEMPORAL_UI_URL: optionalUrl,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TLS_CERT: optionalString,
  TEMPORAL_TLS_KEY: optionalString,
  TEMPORAL_API_KEY: optionalString,
  /** gzip of every gRPC request and response between the service and Temporal (the SDK's default) */
  TEMPORAL_GRPC_COMPRESSION: z.enum(['none', 'gzip']).default('none'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('leads'),
  TEMPORAL_CALL_TASK_QUEUE: z.string().min(1).default('lead-calls'),
  TEMPORAL_CRM_TASK_QUEUE: z.string().min(1).default('lead-crm'),
  /** a fixed count of cached lead workflows; unset: sized from WORKFLOW_CACHE_MEMORY_MB */
  WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(0).max(100_000).optional(),
  WORKFLOW_CACHE_MEMORY_MB: z.coerce.number().int().min(1).max(100_000).default(64),

  BITRIX24_WEBHOOK_URL: optionalUrl,
  BITRIX24_PORTAL_URL: optionalUrl,
  BITRIX24_CLIENT_ID: optionalString,
  BITRIX24_CLIENT_SECRET: optionalString,
  BITRIX24_REFRESH_TOKEN: optionalString,
  BITRIX24_OAUTH_URL: httpUrl.default('https://oauth.bitrix.info'),
  BITRIX24_PARTNER_ENTITY: z.enum(['company', 'contact']).default('company'),
  BITRIX24_PARTNER_FIELD: z
    .string()
    .regex(/^[A-Z0-9_]+$/, 'a Bitrix24 field name such as UF_CRM_PARTNER_CODE')
    .default('UF_CRM_PARTNER_CODE'),
  BITRIX24_REQUESTS_PER_SECOND: z.coerce.number().positive().max(50).default(2),
  /** The portal's bucket size: requests that may go at once after a quiet spell (Enterprise: 250). */
  BITRIX24_BURST: z.coerce.number().int().min(1).max(250).default(50),
  /** How long a partner code's look-up (found or not) is reused; 0 asks Bitrix24 every time. */
  BITRIX24_PARTNER_CACHE_TTL: duration('5m'),

  VOXIMPLANT_API_URL: baseUrl('https://api.voximplant.com/platform_api'),
  VOXIMPLANT_ACCOUNT_ID: optionalString,
  VOXIMPLANT_API_KEY: optionalString,
  VOXIMPLANT_CREDENTIALS_FILE: optionalString.refine((f) => f === undefined || fs.existsSync(f), {
    error: (issue) => `no such file: ${String(issue.input)}`,
  }),
  VOXIMPLANT_RULE_ID: optionalString,
  VOXIMPLANT_RESULT_SECRET: chosenSecret(SECRET_MIN_LENGTH),
  /** What the scenario plays to a person: a recording URL, else this text (TTS); {name} is filled in. */
  VOXIMPLANT_RECORDING_URL: optionalUrl,
  VOXIMPLANT_TTS_TEXT: optionalString,
  VOXIMPLANT_CALLER_ID: z
    .string()
    .regex(/^\d{10,15}$/, 'digits of a number rented or verified in VoxImplant')
    .optional()
    .or(blank),

  SMSRU_API_URL: baseUrl('https://sms.ru'),
  SMSRU_API_ID: optionalString,
  SMS_SENDER: optionalString,

  TELEGRAM_API_URL: baseUrl('https://api.telegram.org'),
  TELEGRAM_BOT_TOKEN: optionalString,
  TELEGRAM_CHAT_ID: optionalString,
  /** Telegram lets a bot post 20 messages a minute to one group; all worker processes share it. */
  TELEGRAM_MESSAGES_PER_MINUTE: z.coerce.number().int().min(1).max(20).default(20),
  // Telegram takes 1-256 characters; a short one could be guessed at over HTTP.
  TELEGRAM_WEBHOOK_SECRET: z
    .string()
    .min(16, 'must be at least 16 characters')
    .regex(/^[A-Za-z0-9_-]{1,256}$/, "Telegram's secret_token alphabet: A-Z, a-z, 0-9, _ and -")
    .optional()
    .or(blank),
  /** Telegram user ids whose button presses are taken; unset: any member of TELEGRAM_CHAT_ID. */
  TELEGRAM_OPERATOR_IDS: list.transform((items, ctx) => {
    // Telegram's user ids are positive integers of up to 52 bits: a name or @username is a mistake.
    const bad = items.filter(
      (id) => !/^\d{1,16}$/.test(id) || !Number.isSafeInteger(Number(id)) || Number(id) === 0,
    );
    if (bad.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message: `Telegram user ids (positive integers, comma-separated, e.g. 123456789,987654321), not: ${bad.join(', ')}`,
      });
      return z.NEVER;
    }
    return items.map(Number);
  }),

  COREZOID_PUBLIC_KEY: optionalString,
  OPERATOR_TOKEN: chosenSecret(SECRET_MIN_LENGTH),
  INTAKE_API_KEY: chosenSecret(SECRET_MIN_LENGTH),
  ALLOWED_PHONE_COUNTRIES: z
    .string()
    .default('RU')
    .transform((v, ctx) => {
      const codes = v
        .split(',')
        .map((c) => c.trim().toUpperCase())
        .filter(Boolean);
      const unknown = codes.filter((c) => !isSupportedCountry(c));
      if (codes.length === 0 || unknown.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `ISO 3166-1 alpha-2 codes of countries with phone numbers, e.g. RU,KZ${unknown.length ? ` (unknown: ${unknown.join(', ')})` : ''}`,
        });
        return z.NEVER;
      }
      return codes;
    }),
  PHONE_DAILY_LIMIT: z.coerce.number().int().min(1).max(1000).default(3),
  /** HMAC key of the workflow ids derived from phone numbers; the same on every API process. */
  PHONE_ID_KEY: optionalString.refine((v) => v === undefined || v.length >= 32, {
    error: 'must be at least 32 characters',
  }),
  CAPTCHA_PROVIDER: z.enum(['smartcaptcha', 'hcaptcha', 'turnstile']).optional().or(blank),
  CAPTCHA_SITE_KEY: optionalString,
  CAPTCHA_SECRET: optionalString,
  CAPTCHA_VERIFY_URL: optionalUrl,

  WORKING_HOURS: z.string().default('09:00-21:00'),
  WEEKEND_WORKING_HOURS: optionalString,
  DEFAULT_TIMEZONE: z
    .string()
    .default('Europe/Moscow')
    .refine(isValidTimeZone, { error: (issue) => `not an IANA time zone: "${String(issue.input)}"` }),

  CALL_RETRY_DELAY: duration('30m'),
  CALL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  // Longer than the scenario's longest session (ringing, AMD, playback, report retries: ~6.5 min).
  CALL_RESULT_TIMEOUT: duration('10m'),
  CALLS_PER_SECOND: z.coerce.number().positive().max(1000).default(5),
  MAX_CONCURRENT_CALLS: z.coerce.number().int().min(1).max(10000).default(20),
  // A lead woken costs its whole morning's work (a replay, the call, claim, report, SMS, notes);
  // two cores carry about ten a second. Waking them faster than the workers carry only queues that
  // work, and a scenario whose claim waits past its minute of retries does not dial.
  MORNING_LEADS_PER_SECOND: z.coerce.number().positive().max(1000).default(10),
  MANUAL_HANDLING_TIMEOUT: duration('7d'),
  /** How often the dashboard and console data is read from Temporal, however many tabs poll it. */
  DASHBOARD_REFRESH: duration('5s').refine((ms) => ms >= 1000, 'at least 1s'),

  SMS_NIGHT_TEXT: z
    .string()
    .min(1)
    .default('Здравствуйте, {name}! Ваш заказ принят. Мы перезвоним вам в рабочее время ({hours}).'),
  SMS_CONFIRMATION_TEXT: z
    .string()
    .min(1)
    .default('Здравствуйте, {name}! Ваш заказ принят и передан менеджеру. Спасибо!'),
  SMS_VOICEMAIL_TEXT: z
    .string()
    .min(1)
    .default('Здравствуйте, {name}! Мы звонили подтвердить ваш заказ. Он принят, менеджер свяжется с вами.'),
  /**
   * The most segments (each one paid) an SMS may take when it carries the longest name the
   * customer's text can put into it; every SMS_*_TEXT is checked against it at start.
   */
  SMS_MAX_SEGMENTS: z.coerce.number().int().min(1).max(10).default(2),

  /** Maps the shop's own form field names onto ours, e.g. `fio:name,tel:phone`. */
  LEAD_FIELD_MAP: list.transform((pairs, ctx) => {
    const map: Record<string, string> = {};
    for (const pair of pairs) {
      const [from, to] = pair.split(':').map((p) => p.trim());
      if (from && to) map[from] = to;
      else ctx.addIssue({ code: 'custom', message: `"${pair}" is not shopField:ourField` });
    }
    return map;
  }),
  MAX_BODY_SIZE: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 64kb')
    .default('64kb'),
  INTAKE_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  /** Express "trust proxy": which hops' X-Forwarded-For to believe for the client IP. */
  TRUST_PROXY: z
    .string()
    .default('loopback')
    .transform((v, ctx) => {
      const parsed = parseTrustProxy(v);
      if ('error' in parsed) {
        ctx.addIssue({ code: 'custom', message: parsed.error });
        return z.NEVER;
      }
      return parsed.value;
    }),
  /** Shop origins allowed to post leads from the browser; empty = same origin only. */
  ALLOWED_ORIGINS: origins,
  SDK_METRICS_PORT: port(9464),
  /** /metrics on a loopback port of its own (0: any free one); unset: 9465, or none with METRICS_TOKEN */
  METRICS_PORT: blank.or(z.coerce.number().int().min(0).max(65535)).optional(),
  /** /metrics on the API port too, for `Authorization: Bearer <METRICS_TOKEN>` */
  METRICS_TOKEN: chosenSecret(SECRET_MIN_LENGTH),
  /** Providers (bitrix24, voximplant, smsru, telegram) meant to run on the emulators beside real ones. */
  EMULATE: list,
  ENCRYPTION_KEYS: optionalString.transform((v, ctx) => {
    if (v === undefined) return undefined;
    try {
      return parseEncryptionKeys(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  }),
  ENCRYPTION_KEY_ID: optionalString,
  CODEC_AUTH_TOKEN: chosenSecret(SECRET_MIN_LENGTH),
  /** Unset: the local Web UI's two origins. */
  CODEC_CORS_ORIGINS: origins,
});

/**
 * A granted call's session at its longest, in scenario.js: its safety net (5 min) and the report's
 * deadline after it (90 s). The claim is asked for only as long as the rest of the result timeout
 * leaves, so a late claim's report still lands before the lead stops waiting for it.
 */
const CALL_SESSION_MAX_MS = 6.5 * 60_000;
/** What the scenario asked for before it learned claimUntil: seven tries over about a minute. */
const MIN_CLAIM_PATIENCE_MS = 60_000;
export function claimPatienceMs(resultTimeoutMs: number): number {
  return Math.max(MIN_CLAIM_PATIENCE_MS, resultTimeoutMs - CALL_SESSION_MAX_MS);
}

type Env = z.output<typeof envSchema>;
/** Every variable the service reads: the keys of the one schema. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape) as ReadonlyArray<keyof Env>;
type Check = (problem: string, variable?: keyof Env) => void;

const configSchema = envSchema.transform((e, ctx) => {
  let failed = false;
  const problem: Check = (message, variable) => {
    failed = true;
    ctx.addIssue({ code: 'custom', message, path: variable ? [variable] : [] });
  };
  const production = e.NODE_ENV === 'production';
  const mode = (emulated: boolean): 'emulator' | 'real' => (emulated ? 'emulator' : 'real');

  if (!!e.TEMPORAL_TLS_CERT !== !!e.TEMPORAL_TLS_KEY) {
    problem('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  }
  let workingSchedule;
  try {
    workingSchedule = parseWorkingSchedule(e.WORKING_HOURS, e.WEEKEND_WORKING_HOURS);
  } catch (err) {
    problem(`WORKING_HOURS / WEEKEND_WORKING_HOURS: ${(err as Error).message}`);
  }
  checkSmsSizes(e, problem);

  const bitrix24 = bitrix24Auth(e, problem);
  const emulated = {
    bitrix24: bitrix24 === undefined,
    voximplant: !(e.VOXIMPLANT_ACCOUNT_ID && e.VOXIMPLANT_API_KEY) && !e.VOXIMPLANT_CREDENTIALS_FILE,
    sms: !e.SMSRU_API_ID,
    telegram: !e.TELEGRAM_BOT_TOKEN,
  };
  if (!emulated.voximplant && !e.VOXIMPLANT_RULE_ID) {
    problem('required when VoxImplant credentials are set', 'VOXIMPLANT_RULE_ID');
  }
  if (!!e.TELEGRAM_BOT_TOKEN !== !!e.TELEGRAM_CHAT_ID) {
    problem('TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set together');
  }
  if (production) {
    for (const [name, isEmulated] of Object.entries(emulated)) {
      if (isEmulated) problem(`${name}: credentials are required when NODE_ENV=production`);
    }
  }
  checkEmulate(e, emulated, production, problem);
  checkPublicUrlForVoximplant(e, emulated.voximplant, production, problem);

  if (production && !e.OPERATOR_TOKEN) {
    problem('required when NODE_ENV=production (the bearer token of the operator routes)', 'OPERATOR_TOKEN');
  }
  // Generated per host, it would differ between an API and a worker on two hosts: every call
  // report would then be refused with 401.
  if (production && !e.VOXIMPLANT_RESULT_SECRET) {
    problem(
      'required when NODE_ENV=production (the HMAC key of call-report tokens, the same on every process)',
      'VOXIMPLANT_RESULT_SECRET',
    );
  }
  // Generated per host, two API processes would give one customer's posts two workflow ids.
  if (production && !e.PHONE_ID_KEY) {
    problem(
      'required when NODE_ENV=production (the HMAC key of workflow ids derived from phone numbers, the same on every API process)',
      'PHONE_ID_KEY',
    );
  }
  const captcha = captchaConfig(e, production, problem);

  const configuredKeys = configuredEncryptionKeys(e, production, problem);
  if (failed || !workingSchedule) return z.NEVER;
  // Secrets are generated only for a configuration that will run, and once, into DATA_DIR.
  let encryption: EncryptionKeys, resultSecret: string, operatorToken: string, phoneIdKey: string;
  try {
    encryption = configuredKeys ?? generatedEncryptionKey(e.DATA_DIR);
    phoneIdKey = e.PHONE_ID_KEY ?? readOrCreateSecret(e.DATA_DIR, 'phone-id.key');
    resultSecret = e.VOXIMPLANT_RESULT_SECRET ?? readOrCreateSecret(e.DATA_DIR, 'voximplant-result.secret');
    operatorToken = e.OPERATOR_TOKEN ?? readOrCreateSecret(e.DATA_DIR, OPERATOR_TOKEN_FILE);
  } catch (err) {
    problem((err as Error).message, 'DATA_DIR');
    return z.NEVER;
  }

  return {
    serviceRole: e.SERVICE_ROLE,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    publicUrl: (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/+$/, ''),
    /** false when publicUrl was derived from PORT (then a PORT of 0 is resolved once listening) */
    publicUrlFromEnv: !!e.PUBLIC_URL,
    temporal: optionalWhenUndefined({
      /** Unset: the run command starts a local dev server on `port`. */
      address: e.TEMPORAL_ADDRESS,
      port: e.TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      uiUrl: (e.TEMPORAL_UI_URL ?? `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`).replace(/\/+$/, ''),
      namespace: e.TEMPORAL_NAMESPACE,
      tlsCert: e.TEMPORAL_TLS_CERT,
      tlsKey: e.TEMPORAL_TLS_KEY,
      apiKey: e.TEMPORAL_API_KEY,
      grpcCompression: e.TEMPORAL_GRPC_COMPRESSION,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      callTaskQueue: e.TEMPORAL_CALL_TASK_QUEUE,
      crmTaskQueue: e.TEMPORAL_CRM_TASK_QUEUE,
      /** lead workflows a worker keeps in memory between their tasks (unset: from the budget) */
      workflowCacheSize: e.WORKFLOW_CACHE_SIZE,
      /** the memory the worker's workflow cache may take, MB */
      workflowCacheMemoryMb: e.WORKFLOW_CACHE_MEMORY_MB,
    }),
    bitrix24: {
      mode: mode(emulated.bitrix24),
      auth: bitrix24 ?? {
        kind: 'webhook' as const,
        webhookUrl: `${EMULATOR_PLACEHOLDER_URL}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`,
      },
      partnerEntity: e.BITRIX24_PARTNER_ENTITY,
      partnerField: e.BITRIX24_PARTNER_FIELD,
      requestsPerSecond: e.BITRIX24_REQUESTS_PER_SECOND,
      burst: e.BITRIX24_BURST,
      partnerCacheTtlMs: e.BITRIX24_PARTNER_CACHE_TTL,
    },
    voximplant: optionalWhenUndefined({
      mode: mode(emulated.voximplant),
      apiUrl: emulated.voximplant ? EMULATOR_PLACEHOLDER_URL : e.VOXIMPLANT_API_URL,
      accountId: emulated.voximplant ? EMULATOR_CREDENTIALS.voximplantAccountId : e.VOXIMPLANT_ACCOUNT_ID,
      apiKey: emulated.voximplant ? EMULATOR_CREDENTIALS.voximplantApiKey : e.VOXIMPLANT_API_KEY,
      credentialsFile: emulated.voximplant ? undefined : e.VOXIMPLANT_CREDENTIALS_FILE,
      ruleId: e.VOXIMPLANT_RULE_ID ?? EMULATOR_CREDENTIALS.voximplantRuleId,
      resultSecret,
      recordingUrl: e.VOXIMPLANT_RECORDING_URL,
      ttsText: e.VOXIMPLANT_TTS_TEXT,
      callerId: e.VOXIMPLANT_CALLER_ID,
      /** how long the scenario asks for its claim before giving the attempt up (`claimUntil`) */
      claimPatienceMs: claimPatienceMs(e.CALL_RESULT_TIMEOUT),
    }),
    sms: optionalWhenUndefined({
      mode: mode(emulated.sms),
      apiUrl: emulated.sms ? EMULATOR_PLACEHOLDER_URL : e.SMSRU_API_URL,
      apiId: e.SMSRU_API_ID ?? EMULATOR_CREDENTIALS.smsruApiId,
      sender: e.SMS_SENDER,
    }),
    telegram: optionalWhenUndefined({
      mode: mode(emulated.telegram),
      apiUrl: emulated.telegram ? EMULATOR_PLACEHOLDER_URL : e.TELEGRAM_API_URL,
      botToken: e.TELEGRAM_BOT_TOKEN ?? EMULATOR_CREDENTIALS.telegramBotToken,
      chatId: e.TELEGRAM_CHAT_ID ?? EMULATOR_CREDENTIALS.telegramChatId,
      webhookSecret: e.TELEGRAM_WEBHOOK_SECRET,
      messagesPerMinute: e.TELEGRAM_MESSAGES_PER_MINUTE,
      /** empty: any member of chatId may press the buttons */
      operatorIds: e.TELEGRAM_OPERATOR_IDS,
      /** signs the buttons' callback_data; derived from resultSecret (see telegramCallbackKey) */
      callbackKey: telegramCallbackKey(resultSecret),
    }),
    ...optionalWhenUndefined({ corezoidPublicKey: e.COREZOID_PUBLIC_KEY, intakeApiKey: e.INTAKE_API_KEY }),
    operator: optionalWhenUndefined({
      token: operatorToken,
      /** set when the token was generated (OPERATOR_TOKEN unset): where it is kept */
      generatedFile: e.OPERATOR_TOKEN ? undefined : path.join(e.DATA_DIR, OPERATOR_TOKEN_FILE),
    }),
    phoneRules: {
      allowedCountries: e.ALLOWED_PHONE_COUNTRIES,
      dailyLimit: e.PHONE_DAILY_LIMIT,
      /** the "day" of PHONE_DAILY_LIMIT; tests shorten it */
      windowMs: 24 * 3_600_000,
    },
    /** HMAC key of ids derived from phone numbers (api/leadIds.ts) */
    phoneIdKey,
    ...optionalWhenUndefined({ captcha }),
    workingSchedule,
    workingHoursText: e.WORKING_HOURS,
    defaultTimezone: e.DEFAULT_TIMEZONE,
    call: {
      retryDelayMs: e.CALL_RETRY_DELAY,
      maxAttempts: e.CALL_MAX_ATTEMPTS,
      resultTimeoutMs: e.CALL_RESULT_TIMEOUT,
      callsPerSecond: e.CALLS_PER_SECOND,
      maxConcurrentCalls: e.MAX_CONCURRENT_CALLS,
      /** leads asleep for a window wake at this pace: calls cannot go faster, nor the workers carry more */
      morningLeadsPerSecond: Math.min(e.CALLS_PER_SECOND, e.MORNING_LEADS_PER_SECOND),
      manualHandlingTimeoutMs: e.MANUAL_HANDLING_TIMEOUT,
    },
    texts: {
      nightSms: e.SMS_NIGHT_TEXT,
      confirmationSms: e.SMS_CONFIRMATION_TEXT,
      voicemailSms: e.SMS_VOICEMAIL_TEXT,
    },
    dashboard: { refreshMs: e.DASHBOARD_REFRESH },
    leadFieldMap: e.LEAD_FIELD_MAP,
    maxBodySize: e.MAX_BODY_SIZE,
    intakeRateLimitPerMinute: e.INTAKE_RATE_LIMIT_PER_MINUTE,
    trustProxy: e.TRUST_PROXY,
    metrics: optionalWhenUndefined({
      /** the loopback port of /metrics (0: any free one); undefined: not on a port of its own */
      port: e.METRICS_PORT ?? (e.METRICS_TOKEN ? undefined : DEFAULT_METRICS_PORT),
      /** whether METRICS_PORT was set: a worker alone serves /metrics only then */
      portFromEnv: e.METRICS_PORT !== undefined,
      /** set: /metrics on the API port too, for this bearer token */
      token: e.METRICS_TOKEN,
    }),
    allowedOrigins: e.ALLOWED_ORIGINS,
    sdkMetricsPort: e.SDK_METRICS_PORT,
    encryption,
    codec: optionalWhenUndefined({
      authToken: e.CODEC_AUTH_TOKEN,
      /** whether a direct caller on this machine may decode without the token (never in production) */
      localWithoutToken: !production,
      corsOrigins:
        e.CODEC_CORS_ORIGINS.length > 0
          ? e.CODEC_CORS_ORIGINS
          : [`http://localhost:${e.TEMPORAL_UI_PORT}`, `http://127.0.0.1:${e.TEMPORAL_UI_PORT}`],
    }),
  };
});

export type AppConfig = z.output<typeof configSchema>;
export type CaptchaProvider = NonNullable<Env['CAPTCHA_PROVIDER']>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map(describeIssue));
  return parsed.data;
}

const logSchema = envSchema.pick({ NODE_ENV: true, LOG_LEVEL: true });
export type LogLevel = NonNullable<Env['LOG_LEVEL']>;

/**
 * The logger's level, read before (and without) the rest of the configuration: the logger exists
 * from the first import on. A wrong LOG_LEVEL gives `info` here and stops the start in loadConfig.
 */
export function logLevelOf(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const parsed = logSchema.safeParse(env);
  if (!parsed.success) return 'info';
  return parsed.data.LOG_LEVEL ?? (parsed.data.NODE_ENV === 'test' ? 'silent' : 'info');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  return issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message;
}

const SMS_TEMPLATES = ['SMS_NIGHT_TEXT', 'SMS_CONFIRMATION_TEXT', 'SMS_VOICEMAIL_TEXT'] as const;

/**
 * Each SMS template, filled as the workflow fills it with the longest name a customer can give,
 * fits SMS_MAX_SEGMENTS: a shop learns at start, not from its SMS bill, that a text is too long.
 */
function checkSmsSizes(e: Env, problem: Check): void {
  for (const variable of SMS_TEMPLATES) {
    const text = fillTemplate(e[variable], LONGEST_NAME, { hours: e.WORKING_HOURS });
    const { segments, encoding } = smsSize(text);
    if (segments > e.SMS_MAX_SEGMENTS) {
      problem(
        `takes ${segments} SMS segments (${encoding}) with the longest name a customer can give ` +
          `(${MAX_NAME_LENGTH} Cyrillic letters) and WORKING_HOURS filled in; SMS_MAX_SEGMENTS is ` +
          `${e.SMS_MAX_SEGMENTS}: shorten the text or raise SMS_MAX_SEGMENTS`,
        variable,
      );
    }
  }
}

/** Webhook wins over OAuth; OAuth needs all four of its values. Undefined: the emulator. */
function bitrix24Auth(e: Env, problem: Check) {
  const trailingSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);
  if (e.BITRIX24_WEBHOOK_URL) {
    return { kind: 'webhook' as const, webhookUrl: trailingSlash(e.BITRIX24_WEBHOOK_URL) };
  }
  const { BITRIX24_PORTAL_URL: portalUrl, BITRIX24_CLIENT_ID: clientId } = e;
  const { BITRIX24_CLIENT_SECRET: clientSecret, BITRIX24_REFRESH_TOKEN: refreshToken } = e;
  if (portalUrl && clientId && clientSecret && refreshToken) {
    return {
      kind: 'oauth' as const,
      portalUrl: trailingSlash(portalUrl),
      clientId,
      clientSecret,
      refreshToken,
      oauthUrl: trailingSlash(e.BITRIX24_OAUTH_URL),
    };
  }
  if (portalUrl || clientId || clientSecret || refreshToken) {
    problem(
      'BITRIX24_PORTAL_URL, BITRIX24_CLIENT_ID, BITRIX24_CLIENT_SECRET and BITRIX24_REFRESH_TOKEN must be set together (or set BITRIX24_WEBHOOK_URL)',
    );
  }
  return undefined;
}

const OPERATOR_TOKEN_FILE = 'operator.token';

/** Next to SDK_METRICS_PORT's 9464, which the Temporal SDK's exporter takes. */
export const DEFAULT_METRICS_PORT = 9465;

/** EMULATE's names, and the config's name of each provider. */
const EMULATE_NAMES = {
  bitrix24: 'bitrix24',
  voximplant: 'voximplant',
  smsru: 'sms',
  telegram: 'telegram',
} as const;
type EmulateName = keyof typeof EMULATE_NAMES;
type Emulated = Record<(typeof EMULATE_NAMES)[EmulateName], boolean>;

/**
 * Real and emulated providers side by side is a start that looks right and is not (a real SMS
 * saying "answered" about a call nobody made): only when EMULATE names exactly the emulated ones.
 */
function checkEmulate(e: Env, emulated: Emulated, production: boolean, problem: Check): void {
  const names = Object.keys(EMULATE_NAMES) as EmulateName[];
  const unknown = e.EMULATE.filter((n) => !names.includes(n as EmulateName));
  if (unknown.length > 0) {
    problem(`unknown provider ${unknown.join(', ')} (known: ${names.join(', ')})`, 'EMULATE');
    return;
  }
  if (production) {
    if (e.EMULATE.length > 0) problem('production runs on real providers only: unset it', 'EMULATE');
    return;
  }
  const emulatedNames = names.filter((n) => emulated[EMULATE_NAMES[n]]);
  const realNames = names.filter((n) => !emulated[EMULATE_NAMES[n]]);
  const withCredentials = e.EMULATE.filter((n) => realNames.includes(n as EmulateName));
  if (withCredentials.length > 0) {
    problem(
      `${listed(withCredentials)} ${withCredentials.length > 1 ? 'have' : 'has'} credentials set and would be called for real: unset them, or leave ${withCredentials.length > 1 ? 'them' : 'it'} out of EMULATE`,
      'EMULATE',
    );
  }
  const unnamed = emulatedNames.filter((n) => !e.EMULATE.includes(n));
  if (unnamed.length === 0) return;
  const fix = `set their credentials, or EMULATE=${emulatedNames.join(',')} if that is meant`;
  if (realNames.length > 0) {
    problem(
      `${listed(unnamed)} would run on the emulators (no credentials) while ${listed(realNames)} ${realNames.length > 1 ? 'are' : 'is'} real: ${fix}`,
      'EMULATE',
    );
  } else if (e.EMULATE.length > 0) {
    problem(`${listed(unnamed)} would run on the emulators too (no credentials): ${fix}`, 'EMULATE');
  }
}

const listed = (names: string[]) => names.join(', ');

/** The real cloud is never at a loopback address: such a VOXIMPLANT_API_URL is an emulator on this host. */
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, '$1');
  const family = net.isIP(host);
  return host === 'localhost' || (family !== 0 && LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6'));
}

/**
 * The scenario reaches the service at PUBLIC_URL (its claim and its report): derived from PORT it is
 * 127.0.0.1, which VoxImplant's cloud cannot reach, and over http the tokens cross in clear. A local
 * VoxImplant emulator (outside production) runs the scenario on this host, where loopback works.
 */
function checkPublicUrlForVoximplant(e: Env, emulated: boolean, production: boolean, problem: Check): void {
  if (emulated || (!production && isLoopbackUrl(e.VOXIMPLANT_API_URL))) return;
  if (!e.PUBLIC_URL) {
    problem(
      'required when VoxImplant is real: the https URL at which the scenario reaches this API',
      'PUBLIC_URL',
    );
  } else if (new URL(e.PUBLIC_URL).protocol !== 'https:') {
    problem(
      'must be an https URL when VoxImplant is real (the scenario sends its tokens there)',
      'PUBLIC_URL',
    );
  }
}

/** The widget script each provider serves, and where it verifies tokens. */
export const CAPTCHA_PROVIDERS = {
  smartcaptcha: {
    scriptUrl: 'https://smartcaptcha.yandexcloud.net/captcha.js',
    verifyUrl: 'https://smartcaptcha.yandexcloud.net/validate',
  },
  hcaptcha: {
    scriptUrl: 'https://js.hcaptcha.com/1/api.js',
    verifyUrl: 'https://api.hcaptcha.com/siteverify',
  },
  turnstile: {
    scriptUrl: 'https://challenges.cloudflare.com/turnstile/v0/api.js',
    verifyUrl: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
  },
} as const;

/** Off without CAPTCHA_PROVIDER; without its secret, the emulator (never in production). */
function captchaConfig(e: Env, production: boolean, problem: Check) {
  const provider = e.CAPTCHA_PROVIDER;
  if (!provider) {
    for (const name of ['CAPTCHA_SITE_KEY', 'CAPTCHA_SECRET', 'CAPTCHA_VERIFY_URL'] as const) {
      if (e[name]) problem('has no effect without CAPTCHA_PROVIDER', name);
    }
    return undefined;
  }
  if (!!e.CAPTCHA_SITE_KEY !== !!e.CAPTCHA_SECRET) {
    problem('CAPTCHA_SITE_KEY and CAPTCHA_SECRET must be set together');
  }
  if (!e.CAPTCHA_SECRET) {
    if (production)
      problem('required when NODE_ENV=production and CAPTCHA_PROVIDER is set', 'CAPTCHA_SECRET');
    if (e.CAPTCHA_VERIFY_URL) problem('CAPTCHA_VERIFY_URL needs CAPTCHA_SITE_KEY and CAPTCHA_SECRET');
    return {
      provider,
      mode: 'emulator' as 'emulator' | 'real',
      siteKey: EMULATOR_CREDENTIALS.captchaSiteKey as string,
      secret: EMULATOR_CREDENTIALS.captchaSecret as string,
      verifyUrl: EMULATOR_PLACEHOLDER_URL as string,
      scriptUrl: EMULATOR_PLACEHOLDER_URL as string,
    };
  }
  return {
    provider,
    mode: 'real' as 'emulator' | 'real',
    siteKey: e.CAPTCHA_SITE_KEY ?? '',
    secret: e.CAPTCHA_SECRET,
    verifyUrl: e.CAPTCHA_VERIFY_URL ?? CAPTCHA_PROVIDERS[provider].verifyUrl,
    scriptUrl: CAPTCHA_PROVIDERS[provider].scriptUrl as string,
  };
}

/** ENCRYPTION_KEYS and the current one among them; undefined: generate one (never in production). */
function configuredEncryptionKeys(e: Env, production: boolean, problem: Check): EncryptionKeys | undefined {
  if (!e.ENCRYPTION_KEYS) {
    if (production)
      problem('required when NODE_ENV=production (keyId:base64 of 32 bytes)', 'ENCRYPTION_KEYS');
    return undefined;
  }
  const ids = Object.keys(e.ENCRYPTION_KEYS);
  const currentKeyId = e.ENCRYPTION_KEY_ID ?? ids[ids.length - 1] ?? '';
  if (!e.ENCRYPTION_KEYS[currentKeyId]) {
    problem(`"${currentKeyId}" is not one of ENCRYPTION_KEYS`, 'ENCRYPTION_KEY_ID');
  }
  return { currentKeyId, keys: e.ENCRYPTION_KEYS };
}

function generatedEncryptionKey(dataDir: string): EncryptionKeys {
  const key = Buffer.from(readOrCreateSecret(dataDir, 'encryption.key', 'base64'), 'base64');
  if (key.length !== 32) throw new Error(`${path.join(dataDir, 'encryption.key')} does not hold 32 bytes`);
  return { currentKeyId: 'local-1', keys: { 'local-1': key } };
}

/** `{a: string | undefined}` typed as `{a?: string}`, so a caller may leave an unset value out. */
type OptionalWhenUndefined<T> = {
  [K in keyof T as undefined extends T[K] ? never : K]: T[K];
} & { [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined> } extends infer O
  ? { [K in keyof O]: O[K] }
  : never;
function optionalWhenUndefined<T extends object>(o: T): OptionalWhenUndefined<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as OptionalWhenUndefined<T>;
}
