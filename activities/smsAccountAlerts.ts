// A person must hear when the shop stops texting its customers (no money, a wrong key, a sender
// name not approved, the day's limit): one Telegram alert per kind per hour, however many leads
// fail meanwhile. The hour is kept per worker process, so N workers may send up to N alerts an
// hour for one kind; an alert that could not go out is tried again by the next failure.
import { logger } from '../support/logger';
import { escapeHtml } from './telegram';
import type { SmsAccountErrorKind } from './sms';

const WHAT: Record<SmsAccountErrorKind, string> = {
  auth: 'SMS.ru не принимает ключ API (SMSRU_API_ID) или аккаунт заблокирован',
  no_money: 'на счёте SMS.ru не хватает денег',
  sender_not_approved: 'имя отправителя (SMSRU_SENDER) не согласовано в SMS.ru',
  daily_limit: 'достигнут дневной лимит отправки SMS.ru',
};

export const SMS_ACCOUNT_ALERT_INTERVAL_MS = 3_600_000;

export interface SmsAccountAlertOptions {
  send(html: string): Promise<unknown>;
  now?: () => number;
  intervalMs?: number;
}

export function createSmsAccountAlerts(opts: SmsAccountAlertOptions) {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? SMS_ACCOUNT_ALERT_INTERVAL_MS;
  const lastSent = new Map<SmsAccountErrorKind, number>();
  return {
    /** Sends the alert for `kind` unless one went out within the hour; never throws. */
    async raise(kind: SmsAccountErrorKind, detail: string): Promise<boolean> {
      const at = now();
      const last = lastSent.get(kind);
      if (last !== undefined && at - last < interval) return false;
      // Taken before the request, so concurrent failures of the same kind send one alert.
      lastSent.set(kind, at);
      const text = [
        '🚫 <b>SMS клиентам не отправляются</b>',
        '',
        escapeHtml(WHAT[kind]),
        escapeHtml(detail, 500),
        '',
        'Заявки без SMS помечены для ручной обработки (sms_failed). Следующее такое оповещение — не раньше чем через час.',
      ].join('\n');
      try {
        await opts.send(text);
        return true;
      } catch (err) {
        if (lastSent.get(kind) === at) lastSent.delete(kind);
        logger.error(
          { kind, err: err instanceof Error ? err.message : String(err) },
          'sms account alert not sent',
        );
        return false;
      }
    },
  };
}
