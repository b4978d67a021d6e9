// Starts the four provider emulators on loopback ports: the default when a provider has no
// credentials, and what the tests and the benchmark run against.
import type http from 'node:http';
import type express from 'express';
import { createBitrix24Emulator, type Bitrix24EmulatorOptions } from './bitrix24';
import { createVoximplantEmulator, type VoximplantEmulatorOptions } from './voximplant';
import { createSmsRuEmulator, type SmsRuEmulatorOptions } from './smsru';
import { createTelegramEmulator, type TelegramEmulatorOptions } from './telegram';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from './credentials';

export interface EmulatorOptions {
  host?: string;
  bitrix24?: Bitrix24EmulatorOptions;
  voximplant?: VoximplantEmulatorOptions;
  smsru?: SmsRuEmulatorOptions;
  telegram?: TelegramEmulatorOptions;
}

export interface RunningEmulators {
  urls: { bitrix24: string; voximplant: string; smsru: string; telegram: string };
  bitrix24: ReturnType<typeof createBitrix24Emulator>;
  voximplant: ReturnType<typeof createVoximplantEmulator>;
  smsru: ReturnType<typeof createSmsRuEmulator>;
  telegram: ReturnType<typeof createTelegramEmulator>;
  close(): Promise<void>;
}

function listen(app: express.Express, host: string): Promise<{ server: http.Server; url: string }> {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({ server, url: `http://${host}:${port}` });
    });
    server.once('error', reject);
  });
}

export async function startEmulators(options: EmulatorOptions = {}): Promise<RunningEmulators> {
  const host = options.host ?? '127.0.0.1';
  const bitrix24 = createBitrix24Emulator(options.bitrix24);
  // Our scenario keeps only the call key as the session's custom data; emulate exactly that.
  const voximplant = createVoximplantEmulator({ scenarioSetsCallKey: true, ...options.voximplant });
  const smsru = createSmsRuEmulator(options.smsru);
  const telegram = createTelegramEmulator(options.telegram);
  const servers = await Promise.all([bitrix24, voximplant, smsru, telegram].map((e) => listen(e.app, host)));
  const [b, v, s, t] = servers as [
    (typeof servers)[0],
    (typeof servers)[0],
    (typeof servers)[0],
    (typeof servers)[0],
  ];
  return {
    urls: { bitrix24: b.url, voximplant: `${v.url}/platform_api`, smsru: s.url, telegram: t.url },
    bitrix24,
    voximplant,
    smsru,
    telegram,
    async close() {
      await Promise.all(
        servers.map(
          ({ server }) =>
            new Promise<void>((resolve) => {
              server.close(() => resolve());
              server.closeAllConnections();
            }),
        ),
      );
    },
  };
}

/**
 * The environment that points a service process at these emulators as if they were the real
 * providers (credentials set, base URLs overridden): what tests and the benchmark use for a service
 * in a process of its own.
 */
export function emulatorProviderEnv(urls: RunningEmulators['urls']): Record<string, string> {
  return {
    BITRIX24_WEBHOOK_URL: `${urls.bitrix24}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`,
    VOXIMPLANT_API_URL: urls.voximplant,
    VOXIMPLANT_ACCOUNT_ID: EMULATOR_CREDENTIALS.voximplantAccountId,
    VOXIMPLANT_API_KEY: EMULATOR_CREDENTIALS.voximplantApiKey,
    VOXIMPLANT_RULE_ID: EMULATOR_CREDENTIALS.voximplantRuleId,
    SMSRU_API_URL: urls.smsru,
    SMSRU_API_ID: EMULATOR_CREDENTIALS.smsruApiId,
    TELEGRAM_API_URL: urls.telegram,
    TELEGRAM_BOT_TOKEN: EMULATOR_CREDENTIALS.telegramBotToken,
    TELEGRAM_CHAT_ID: EMULATOR_CREDENTIALS.telegramChatId,
  };
}

/** Points every emulated provider of `config` at these emulators, once they listen. */
export function withEmulatorUrls(config: AppConfig, urls: RunningEmulators['urls']): AppConfig {
  const base = (url: string) => url.replace(/\/+$/, '');
  const { bitrix24, voximplant, sms, telegram } = config;
  return {
    ...config,
    bitrix24:
      bitrix24.mode === 'emulator'
        ? {
            ...bitrix24,
            auth: {
              kind: 'webhook',
              webhookUrl: `${base(urls.bitrix24)}/${EMULATOR_CREDENTIALS.bitrix24WebhookPath}`,
            },
          }
        : bitrix24,
    voximplant:
      voximplant.mode === 'emulator' ? { ...voximplant, apiUrl: base(urls.voximplant) } : voximplant,
    sms: sms.mode === 'emulator' ? { ...sms, apiUrl: base(urls.smsru) } : sms,
    telegram: telegram.mode === 'emulator' ? { ...telegram, apiUrl: base(urls.telegram) } : telegram,
  };
}
