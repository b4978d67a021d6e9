// The one place that reads the environment. Every variable is validated here, at start, so a wrong
// value stops the service with a message naming it instead of failing later inside a lead.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { z } from 'zod';
import { parseDuration } from '../domain/duration';
import { parseWorkingSchedule, type WorkingSchedule } from '../domain/workingHours';
import { isValidTimeZone } from '../domain/timezone';
import { parseEncryptionKeys } from '../support/codec';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export const DEFAULT_URLS = {
  voximplant: 'https://api.voximplant.com/platform_api',
  smsru: 'https://sms.ru',
  telegram: 'https://api.telegram.org',
  bitrix24OAuth: 'https://oauth.bitrix.info',
} as const;

export const DEFAULT_TEXTS = {
  nightSms: 'Здравствуйте, {name}! Ваш заказ принят. Мы перезвоним вам в рабочее время ({hours}).',
  confirmationSms: 'Здравствуйте, {name}! Ваш заказ принят и передан менеджеру. Спасибо!',
  voicemailSms:
    'Здравствуйте, {name}! Мы звонили подтвердить ваш заказ. Он принят, менеджер свяжется с вами.',
} as const;

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);

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

const httpUrl = z.url({ protocol: /^https?$/ });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: port(3000),
  HOST: z.string().min(1).default('127.0.0.1'),
  DATA_DIR: z.string().min(1).default('./data'),
  PUBLIC_URL: httpUrl.optional().or(z.literal('').transform(() => undefined)),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_PORT: port(7233),
  TEMPORAL_UI_PORT: port(8233),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TLS_CERT: optionalString,
  TEMPORAL_TLS_KEY: optionalString,
  TEMPORAL_API_KEY: optionalString,
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('leads'),
  TEMPORAL_CALL_TASK_QUEUE: z.string().min(1).default('lead-calls'),
  TEMPORAL_CRM_TASK_QUEUE: z.string().min(1).default('lead-crm'),
  TEMPORAL_CALL_WORKFLOW_TASK_QUEUE: z.string().min(1).default('lead-call-workflows'),
  WORKFLOW_CACHE_SIZE: z.coerce.number().int().min(0).max(100_000).default(1000),

  BITRIX24_WEBHOOK_URL: httpUrl.optional().or(z.literal('').transform(() => undefined)),
  BITRIX24_PORTAL_URL: httpUrl.optional().or(z.literal('').transform(() => undefined)),
  BITRIX24_CLIENT_ID: optionalString,
  BITRIX24_CLIENT_SECRET: optionalString,
  BITRIX24_REFRESH_TOKEN: optionalString,
  BITRIX24_OAUTH_URL: httpUrl.default(DEFAULT_URLS.bitrix24OAuth),
  BITRIX24_PARTNER_ENTITY: z.enum(['company', 'contact']).default('company'),
  BITRIX24_PARTNER_FIELD: z
    .string()
    .regex(/^[A-Z0-9_]+$/, 'a Bitrix24 field name such as UF_CRM_PARTNER_CODE')
    .default('UF_CRM_PARTNER_CODE'),
  BITRIX24_REQUESTS_PER_SECOND: z.coerce.number().positive().max(50).default(2),

  VOXIMPLANT_API_URL: httpUrl.default(DEFAULT_URLS.voximplant),
  VOXIMPLANT_ACCOUNT_ID: optionalString,
  VOXIMPLANT_API_KEY: optionalString,
  VOXIMPLANT_CREDENTIALS_FILE: optionalString,
  VOXIMPLANT_RULE_ID: optionalString,
  VOXIMPLANT_RESULT_SECRET: optionalString,
  /** What the scenario plays to a person: a recording URL, else this text (TTS); {name} is filled in. */
  VOXIMPLANT_RECORDING_URL: httpUrl.optional().or(z.literal('').transform(() => undefined)),
  VOXIMPLANT_TTS_TEXT: optionalString,
  VOXIMPLANT_CALLER_ID: z
    .string()
    .regex(/^\d{10,15}$/, 'digits of a number rented or verified in VoxImplant')
    .optional()
    .or(z.literal('').transform(() => undefined)),

  SMSRU_API_URL: httpUrl.default(DEFAULT_URLS.smsru),
  SMSRU_API_ID: optionalString,
  SMS_SENDER: optionalString,

  TELEGRAM_API_URL: httpUrl.default(DEFAULT_URLS.telegram),
  TELEGRAM_BOT_TOKEN: optionalString,
  TELEGRAM_CHAT_ID: optionalString,
  TELEGRAM_WEBHOOK_SECRET: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, "Telegram's secret_token alphabet: A-Z, a-z, 0-9, _ and -")
    .optional()
    .or(z.literal('').transform(() => undefined)),

  COREZOID_PUBLIC_KEY: optionalString,

  WORKING_HOURS: z.string().default('09:00-21:00'),
  WEEKEND_WORKING_HOURS: optionalString,
  DEFAULT_TIMEZONE: z.string().default('Europe/Moscow'),

  CALL_RETRY_DELAY: duration('30m'),
  CALL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(5),
  // Longer than the scenario's longest session (ringing, AMD, playback, report retries: ~6.5 min).
  CALL_RESULT_TIMEOUT: duration('10m'),
  CALLS_PER_SECOND: z.coerce.number().positive().max(1000).default(5),
  MAX_CONCURRENT_CALLS: z.coerce.number().int().min(1).max(10000).default(20),
  MANUAL_HANDLING_TIMEOUT: duration('7d'),

  SMS_NIGHT_TEXT: z.string().min(1).default(DEFAULT_TEXTS.nightSms),
  SMS_CONFIRMATION_TEXT: z.string().min(1).default(DEFAULT_TEXTS.confirmationSms),
  SMS_VOICEMAIL_TEXT: z.string().min(1).default(DEFAULT_TEXTS.voicemailSms),

  /** Maps the shop's own form field names onto ours, e.g. `fio:name,tel:phone`. */
  LEAD_FIELD_MAP: z.string().default(''),
  MAX_BODY_SIZE: z
    .string()
    .regex(/^\d+(b|kb|mb)$/i, 'a size such as 64kb')
    .default('64kb'),
  INTAKE_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  /** Express "trust proxy": which hops' X-Forwarded-For to believe for the client IP. */
  TRUST_PROXY: z.string().default('loopback'),
  /** Shop origins allowed to post leads from the browser (comma-separated); empty = same origin only. */
  ALLOWED_ORIGINS: z.string().default(''),
  SDK_METRICS_PORT: port(9464),
  ENCRYPTION_KEYS: optionalString,
  ENCRYPTION_KEY_ID: optionalString,
  CODEC_AUTH_TOKEN: optionalString,
  CODEC_CORS_ORIGINS: optionalString,
});

type Env = z.infer<typeof envSchema>;

export type ProviderMode = 'real' | 'emulator';

export interface AppConfig {
  nodeEnv: Env['NODE_ENV'];
  port: number;
  host: string;
  dataDir: string;
  publicUrl: string;
  /** false when publicUrl was derived from PORT (then a PORT of 0 is resolved once listening) */
  publicUrlFromEnv: boolean;
  logLevel: Env['LOG_LEVEL'];
  temporal: {
    /** Unset: the run command starts a local dev server on `port`. */
    address?: string;
    port: number;
    uiPort: number;
    namespace: string;
    tlsCert?: string;
    tlsKey?: string;
    apiKey?: string;
    taskQueue: string;
    callTaskQueue: string;
    crmTaskQueue: string;
    callWorkflowTaskQueue: string;
    /** lead workflows a worker keeps in memory between their tasks */
    workflowCacheSize: number;
  };
  bitrix24: {
    mode: ProviderMode;
    auth:
      | { kind: 'webhook'; webhookUrl: string }
      | {
          kind: 'oauth';
          portalUrl: string;
          clientId: string;
          clientSecret: string;
          refreshToken: string;
          oauthUrl: string;
        };
    partnerEntity: 'company' | 'contact';
    partnerField: string;
    requestsPerSecond: number;
  };
  voximplant: {
    mode: ProviderMode;
    apiUrl: string;
    accountId?: string;
    apiKey?: string;
    credentialsFile?: string;
    ruleId: string;
    resultSecret: string;
    recordingUrl?: string;
    ttsText?: string;
    callerId?: string;
  };
  sms: { mode: ProviderMode; apiUrl: string; apiId: string; sender?: string };
  telegram: { mode: ProviderMode; apiUrl: string; botToken: string; chatId: string; webhookSecret?: string };
  corezoidPublicKey?: string;
  workingSchedule: WorkingSchedule;
  workingHoursText: string;
  defaultTimezone: string;
  call: {
    retryDelayMs: number;
    maxAttempts: number;
    resultTimeoutMs: number;
    callsPerSecond: number;
    maxConcurrentCalls: number;
    manualHandlingTimeoutMs: number;
  };
  texts: { nightSms: string; confirmationSms: string; voicemailSms: string };
  leadFieldMap: Record<string, string>;
  maxBodySize: string;
  intakeRateLimitPerMinute: number;
  trustProxy: string;
  allowedOrigins: string[];
  sdkMetricsPort: number;
  encryption: { currentKeyId: string; keys: Record<string, Buffer> };
  codec: { authToken?: string; corsOrigins: string[] };
}

/** Values the emulators use; a provider with no credentials is pointed at its emulator with these. */
export const EMULATOR_CREDENTIALS = {
  bitrix24WebhookPath: 'rest/1/emulatorwebhookcode/',
  voximplantAccountId: '1',
  voximplantApiKey: 'emulator-api-key',
  voximplantRuleId: '1',
  smsruApiId: 'EMULATOR-API-ID',
  telegramBotToken: '123456:EMULATOR-TOKEN',
  telegramChatId: '-1000000000001',
} as const;

export const EMULATOR_PLACEHOLDER_URL = 'http://emulator.invalid';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const parsed = envSchema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push(`${issue.path.join('.')}: ${issue.message}`);
    }
    throw new ConfigError(problems);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';

  let workingSchedule: WorkingSchedule | undefined;
  try {
    workingSchedule = parseWorkingSchedule(e.WORKING_HOURS, e.WEEKEND_WORKING_HOURS);
  } catch (err) {
    problems.push(`WORKING_HOURS / WEEKEND_WORKING_HOURS: ${(err as Error).message}`);
  }
  if (!isValidTimeZone(e.DEFAULT_TIMEZONE)) {
    problems.push(`DEFAULT_TIMEZONE: not an IANA time zone: "${e.DEFAULT_TIMEZONE}"`);
  }
  if (!!e.TEMPORAL_TLS_CERT !== !!e.TEMPORAL_TLS_KEY) {
    problems.push('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together');
  }

  // Bitrix24: webhook wins over OAuth; OAuth needs all four of its values.
  const oauthValues = [
    e.BITRIX24_PORTAL_URL,
    e.BITRIX24_CLIENT_ID,
    e.BITRIX24_CLIENT_SECRET,
    e.BITRIX24_REFRESH_TOKEN,
  ];
  let bitrix24Auth: AppConfig['bitrix24']['auth'];
  let bitrix24Mode: ProviderMode = 'real';
  if (e.BITRIX24_WEBHOOK_URL) {
    bitrix24Auth = { kind: 'webhook', webhookUrl: withTrailingSlash(e.BITRIX24_WEBHOOK_URL) };
  } else if (oauthValues.every(Boolean)) {
    bitrix24Auth = {
      kind: 'oauth',
      portalUrl: withTrailingSlash(e.BITRIX24_PORTAL_URL!),
      clientId: e.BITRIX24_CLIENT_ID!,
      clientSecret: e.BITRIX24_CLIENT_SECRET!,
      refreshToken: e.BITRIX24_REFRESH_TOKEN!,
      oauthUrl: withTrailingSlash(e.BITRIX24_OAUTH_URL),
    };
  } else {
    if (oauthValues.some(Boolean)) {
      problems.push(
        'BITRIX24_PORTAL_URL, BITRIX24_CLIENT_ID, BITRIX24_CLIENT_SECRET and BITRIX24_REFRESH_TOKEN must be set together (or set BITRIX24_WEBHOOK_URL)',
      );
    }
    bitrix24Mode = 'emulator';
    bitrix24Auth = {
      kind: 'webhook',
      webhookUrl: `${EMULATOR_PLACEHOLDER_URL}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`,
    };
  }

  const voxCredentialsSet =
    !!(e.VOXIMPLANT_ACCOUNT_ID && e.VOXIMPLANT_API_KEY) || !!e.VOXIMPLANT_CREDENTIALS_FILE;
  if (e.VOXIMPLANT_CREDENTIALS_FILE && !fs.existsSync(e.VOXIMPLANT_CREDENTIALS_FILE)) {
    problems.push(`VOXIMPLANT_CREDENTIALS_FILE: no such file: ${e.VOXIMPLANT_CREDENTIALS_FILE}`);
  }
  if (voxCredentialsSet && !e.VOXIMPLANT_RULE_ID) {
    problems.push('VOXIMPLANT_RULE_ID: required when VoxImplant credentials are set');
  }
  if (!!e.TELEGRAM_BOT_TOKEN !== !!e.TELEGRAM_CHAT_ID) {
    problems.push('TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must be set together');
  }

  const emulated = {
    bitrix24: bitrix24Mode === 'emulator',
    voximplant: !voxCredentialsSet,
    sms: !e.SMSRU_API_ID,
    telegram: !e.TELEGRAM_BOT_TOKEN,
  };
  if (production) {
    for (const [name, isEmulated] of Object.entries(emulated)) {
      if (isEmulated) problems.push(`${name}: credentials are required when NODE_ENV=production`);
    }
  }

  const leadFieldMap: Record<string, string> = {};
  for (const pair of e.LEAD_FIELD_MAP.split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [from, to] = pair.split(':').map((p) => p.trim());
    if (!from || !to) problems.push(`LEAD_FIELD_MAP: "${pair}" is not shopField:ourField`);
    else leadFieldMap[from] = to;
  }

  const dataDir = path.resolve(e.DATA_DIR);
  let encryption: AppConfig['encryption'] | undefined;
  try {
    if (e.ENCRYPTION_KEYS) {
      const keys = parseEncryptionKeys(e.ENCRYPTION_KEYS);
      const ids = Object.keys(keys);
      const currentKeyId = e.ENCRYPTION_KEY_ID ?? ids[ids.length - 1]!;
      if (!keys[currentKeyId])
        problems.push(`ENCRYPTION_KEY_ID: "${currentKeyId}" is not one of ENCRYPTION_KEYS`);
      encryption = { currentKeyId, keys };
    } else if (production) {
      problems.push('ENCRYPTION_KEYS: required when NODE_ENV=production (keyId:base64 of 32 bytes)');
    } else {
      const key = Buffer.from(readOrCreateSecret(dataDir, 'encryption.key', 'base64'), 'base64');
      encryption = { currentKeyId: 'local-1', keys: { 'local-1': key } };
    }
  } catch (err) {
    problems.push(`ENCRYPTION_KEYS: ${(err as Error).message}`);
  }

  if (problems.length > 0) throw new ConfigError(problems);

  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    dataDir,
    publicUrl: (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/+$/, ''),
    publicUrlFromEnv: !!e.PUBLIC_URL,
    logLevel: e.LOG_LEVEL,
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      port: e.TEMPORAL_PORT,
      uiPort: e.TEMPORAL_UI_PORT,
      namespace: e.TEMPORAL_NAMESPACE,
      tlsCert: e.TEMPORAL_TLS_CERT,
      tlsKey: e.TEMPORAL_TLS_KEY,
      apiKey: e.TEMPORAL_API_KEY,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      callTaskQueue: e.TEMPORAL_CALL_TASK_QUEUE,
      crmTaskQueue: e.TEMPORAL_CRM_TASK_QUEUE,
      callWorkflowTaskQueue: e.TEMPORAL_CALL_WORKFLOW_TASK_QUEUE,
      workflowCacheSize: e.WORKFLOW_CACHE_SIZE,
    },
    bitrix24: {
      mode: bitrix24Mode,
      auth: bitrix24Auth,
      partnerEntity: e.BITRIX24_PARTNER_ENTITY,
      partnerField: e.BITRIX24_PARTNER_FIELD,
      requestsPerSecond: e.BITRIX24_REQUESTS_PER_SECOND,
    },
    voximplant: {
      mode: emulated.voximplant ? 'emulator' : 'real',
      apiUrl: emulated.voximplant ? EMULATOR_PLACEHOLDER_URL : e.VOXIMPLANT_API_URL.replace(/\/+$/, ''),
      accountId: emulated.voximplant ? EMULATOR_CREDENTIALS.voximplantAccountId : e.VOXIMPLANT_ACCOUNT_ID,
      apiKey: emulated.voximplant ? EMULATOR_CREDENTIALS.voximplantApiKey : e.VOXIMPLANT_API_KEY,
      credentialsFile: emulated.voximplant ? undefined : e.VOXIMPLANT_CREDENTIALS_FILE,
      ruleId: e.VOXIMPLANT_RULE_ID ?? EMULATOR_CREDENTIALS.voximplantRuleId,
      resultSecret: e.VOXIMPLANT_RESULT_SECRET ?? readOrCreateSecret(dataDir, 'voximplant-result.secret'),
      recordingUrl: e.VOXIMPLANT_RECORDING_URL,
      ttsText: e.VOXIMPLANT_TTS_TEXT,
      callerId: e.VOXIMPLANT_CALLER_ID,
    },
    sms: {
      mode: emulated.sms ? 'emulator' : 'real',
      apiUrl: emulated.sms ? EMULATOR_PLACEHOLDER_URL : e.SMSRU_API_URL.replace(/\/+$/, ''),
      apiId: e.SMSRU_API_ID ?? EMULATOR_CREDENTIALS.smsruApiId,
      sender: e.SMS_SENDER,
    },
    telegram: {
      mode: emulated.telegram ? 'emulator' : 'real',
      apiUrl: emulated.telegram ? EMULATOR_PLACEHOLDER_URL : e.TELEGRAM_API_URL.replace(/\/+$/, ''),
      botToken: e.TELEGRAM_BOT_TOKEN ?? EMULATOR_CREDENTIALS.telegramBotToken,
      chatId: e.TELEGRAM_CHAT_ID ?? EMULATOR_CREDENTIALS.telegramChatId,
      webhookSecret: e.TELEGRAM_WEBHOOK_SECRET,
    },
    corezoidPublicKey: e.COREZOID_PUBLIC_KEY,
    workingSchedule: workingSchedule!,
    workingHoursText: e.WORKING_HOURS,
    defaultTimezone: e.DEFAULT_TIMEZONE,
    call: {
      retryDelayMs: e.CALL_RETRY_DELAY,
      maxAttempts: e.CALL_MAX_ATTEMPTS,
      resultTimeoutMs: e.CALL_RESULT_TIMEOUT,
      callsPerSecond: e.CALLS_PER_SECOND,
      maxConcurrentCalls: e.MAX_CONCURRENT_CALLS,
      manualHandlingTimeoutMs: e.MANUAL_HANDLING_TIMEOUT,
    },
    texts: {
      nightSms: e.SMS_NIGHT_TEXT,
      confirmationSms: e.SMS_CONFIRMATION_TEXT,
      voicemailSms: e.SMS_VOICEMAIL_TEXT,
    },
    leadFieldMap,
    maxBodySize: e.MAX_BODY_SIZE,
    intakeRateLimitPerMinute: e.INTAKE_RATE_LIMIT_PER_MINUTE,
    trustProxy: e.TRUST_PROXY,
    allowedOrigins: e.ALLOWED_ORIGINS.split(',')
      .map((o) => o.trim().replace(/\/+$/, ''))
      .filter(Boolean),
    sdkMetricsPort: e.SDK_METRICS_PORT,
    encryption: encryption!,
    codec: {
      authToken: e.CODEC_AUTH_TOKEN,
      corsOrigins: (
        e.CODEC_CORS_ORIGINS ??
        `http://localhost:${e.TEMPORAL_UI_PORT},http://127.0.0.1:${e.TEMPORAL_UI_PORT}`
      )
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    },
  };
}

/** Points every emulated provider at the emulators' real base URLs once they listen. */
export function withEmulatorUrls(
  config: AppConfig,
  urls: { bitrix24: string; voximplant: string; smsru: string; telegram: string },
): AppConfig {
  const c = structuredClone(config);
  if (c.bitrix24.mode === 'emulator') {
    c.bitrix24.auth = {
      kind: 'webhook',
      webhookUrl: `${urls.bitrix24.replace(/\/+$/, '')}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`,
    };
  }
  if (c.voximplant.mode === 'emulator') c.voximplant.apiUrl = urls.voximplant.replace(/\/+$/, '');
  if (c.sms.mode === 'emulator') c.sms.apiUrl = urls.smsru.replace(/\/+$/, '');
  if (c.telegram.mode === 'emulator') c.telegram.apiUrl = urls.telegram.replace(/\/+$/, '');
  return c;
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

// The result-token secret must survive restarts (tokens of calls in flight stay valid), so it is
// generated once into DATA_DIR rather than per process.
function readOrCreateSecret(
  dataDir: string,
  name: string,
  encoding: 'base64url' | 'base64' = 'base64url',
): string {
  const file = path.join(dataDir, name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    fs.mkdirSync(dataDir, { recursive: true });
    const secret = crypto.randomBytes(32).toString(encoding);
    try {
      fs.writeFileSync(file, secret, { flag: 'wx', mode: 0o600 });
      return secret;
    } catch {
      // Another process created it first: use theirs.
      return fs.readFileSync(file, 'utf8').trim();
    }
  }
}
