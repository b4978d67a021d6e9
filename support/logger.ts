// One structured (JSON) logger for the API, the worker, activities and the Temporal runtime.
// Secrets are redacted by key; phone numbers are masked by whoever logs them (maskPhone).
import pino, { type Logger } from 'pino';
import { logLevelOf } from '../config';

export type { Logger };

export const logger: Logger = pino({
  level: logLevelOf(process.env),
  base: { service: 'speed-to-lead' },
  redact: {
    paths: [
      '*.token',
      '*.apiKey',
      '*.api_key',
      '*.api_id',
      '*.auth',
      '*.access_token',
      '*.refresh_token',
      '*.client_secret',
      '*.botToken',
      '*.secret',
      '*.password',
      'req.headers.authorization',
      'req.headers.cookie',
    ],
    censor: '[redacted]',
  },
});

/** "79161234567" → "7916***4567": enough for a person to recognise, not enough to dial. */
export function maskPhone(phone: string | undefined): string {
  if (!phone) return '';
  const digits = phone.replace(/\D/g, '');
  if (digits.length <= 6) return '*'.repeat(digits.length);
  return `${digits.slice(0, 4)}${'*'.repeat(Math.max(3, digits.length - 8))}${digits.slice(-4)}`;
}
