// Seller alerts in a Telegram chat through the Bot API (sendMessage, HTML parse mode).
// Lead fields come from a public web form, so every one is HTML-escaped: an unescaped `<` would
// make Telegram reject the whole alert ("can't parse entities") and the sellers would see nothing.
import type { AxiosInstance } from 'axios';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../config';
import { logger, maskPhone } from '../support/logger';
import { activityContext, createProviderHttp, HTTP_TIMEOUT_MS, readAs } from './http';

export interface SellerAlert {
  kind: 'new_lead' | 'manual_handling';
  ref: string;
  workflowId: string;
  name: string;
  phone: string;
  city?: string;
  partner?: string;
  site?: string;
  orderAmount?: number;
  crmLeadId?: number;
  reason?: string;
  webUiUrl?: string;
  /** add inline buttons call_now/handled/cancel with callback_data `${action}:${ref}` */
  actions?: boolean;
  /** Epoch ms the lead was accepted, for the intake → alert histogram. */
  receivedAt?: number;
}

/** The CRM lead of a lead the sellers were already told of. */
export interface CrmLeadLink {
  ref: string;
  workflowId: string;
  name: string;
  crmLeadId: number;
  partner?: string;
  receivedAt?: number;
}

export interface TelegramActivityOptions {
  http?: AxiosInstance;
  /** Waits for a 429's retry_after; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

const TITLES: Record<SellerAlert['kind'], string> = {
  new_lead: '🆕 <b>Новая заявка</b>',
  manual_handling: '⚠️ <b>Нужна ручная обработка</b>',
};

const BUTTONS = [
  { action: 'call_now', text: '📞 Позвонить сейчас' },
  { action: 'handled', text: '✅ Обработано' },
  { action: 'cancel', text: '✖️ Отменить' },
] as const;

// Per-field budgets of escaped characters: together with the fixed text they stay under the
// 4096-character message limit whatever the fields contain.
const LIMIT = {
  name: 200,
  phone: 40,
  city: 120,
  partner: 200,
  site: 200,
  ref: 120,
  wf: 200,
  url: 600,
  reason: 1500,
};
export const TELEGRAM_MAX_MESSAGE = 4096;
/** Telegram's limit for callback_data, in bytes. */
const MAX_CALLBACK_DATA = 64;
/**
 * Longer 429 pauses go back to Temporal's retry instead of holding a worker slot; a pause this
 * short fits between two requests within the activity's start-to-close timeout.
 */
const MAX_INLINE_WAIT_S = 5;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Escapes for Telegram HTML and cuts to `max` escaped characters without splitting an entity. */
export function escapeHtml(value: string, max = Number.POSITIVE_INFINITY): string {
  const escape = (ch: string) => ESCAPES[ch] ?? ch;
  const full = value.replace(/[&<>"]/g, escape);
  if (full.length <= max) return full;
  let out = '';
  for (const ch of value) {
    const piece = escape(ch);
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return `${out}…`;
}

export function formatSellerAlert(alert: SellerAlert): string {
  const lines: string[] = [TITLES[alert.kind], ''];
  const field = (label: string, value: string | undefined, max: number) => {
    if (value !== undefined && value.trim() !== '') lines.push(`${label}: ${escapeHtml(value.trim(), max)}`);
  };
  field('👤 Имя', alert.name, LIMIT.name);
  const digits = alert.phone.replace(/\D/g, '');
  lines.push(
    `📞 Телефон: ${digits ? `+${digits.slice(0, LIMIT.phone)}` : escapeHtml(alert.phone, LIMIT.phone)}`,
  );
  field('🏙 Город', alert.city, LIMIT.city);
  field('🤝 Партнёр', alert.partner, LIMIT.partner);
  field('🌐 Сайт', alert.site, LIMIT.site);
  if (alert.orderAmount !== undefined && Number.isFinite(alert.orderAmount)) {
    lines.push(`💰 Сумма заказа: ${new Intl.NumberFormat('ru-RU').format(alert.orderAmount)} ₽`);
  }
  if (alert.crmLeadId !== undefined) lines.push(`📋 Лид в CRM: #${Math.trunc(alert.crmLeadId)}`);
  if (alert.reason !== undefined && alert.reason.trim() !== '') {
    lines.push('', `❗ Причина: ${escapeHtml(alert.reason.trim(), LIMIT.reason)}`);
  }
  lines.push('', `🔖 Заявка: <code>${escapeHtml(alert.ref, LIMIT.ref)}</code>`);
  const wf = escapeHtml(alert.workflowId, LIMIT.wf);
  // A link only to a web page, and only whole: a cut URL would lead nowhere.
  const href = alert.webUiUrl && /^https?:\/\//i.test(alert.webUiUrl) ? escapeHtml(alert.webUiUrl) : '';
  lines.push(
    href && href.length <= LIMIT.url
      ? `⚙️ Процесс: <a href="${href}">${wf}</a>`
      : `⚙️ Процесс: <code>${wf}</code>`,
  );
  return lines.join('\n');
}

interface InlineKeyboard {
  inline_keyboard: Array<Array<{ text: string; callback_data: string }>>;
}

export function sellerAlertKeyboard(ref: string): InlineKeyboard | undefined {
  const data = (action: (typeof BUTTONS)[number]['action']) => `${action}:${ref}`;
  // A ref too long for callback_data would make Telegram reject the whole message.
  if (BUTTONS.some((b) => Buffer.byteLength(data(b.action)) > MAX_CALLBACK_DATA)) return undefined;
  const [callNow, handled, cancel] = BUTTONS.map((b) => ({ text: b.text, callback_data: data(b.action) }));
  return { inline_keyboard: [[callNow!, handled!], [cancel!]] };
}

const TelegramOk = z.object({ ok: z.literal(true), result: z.object({ message_id: z.number() }) });
const TelegramError = z.object({
  ok: z.literal(false),
  error_code: z.number(),
  description: z.string(),
  parameters: z
    .object({ retry_after: z.number().optional(), migrate_to_chat_id: z.number().optional() })
    .optional(),
});

export function createTelegramActivities(
  cfg: AppConfig['telegram'],
  opts: TelegramActivityOptions = {},
): {
  notifySellers(alert: SellerAlert): Promise<{ messageId: number }>;
  /** A message to the sellers' chat about the service itself (not a lead); `html` is sent as is. */
  notifySellersChat(html: string): Promise<{ messageId: number }>;
} {
  const request = createProviderHttp({
    provider: 'Telegram',
    unavailableType: 'TelegramUnavailable',
    timeoutMs: HTTP_TIMEOUT_MS.telegram,
    http: opts.http,
  });
  const sleep = opts.sleep ?? activitySleep;
  let chatId: string = cfg.chatId;

  // The URL holds the bot token: failures name the method only (createProviderHttp's rule).
  const sendMessage = (body: Record<string, unknown>) =>
    request({
      method: 'POST',
      url: `${cfg.apiUrl}/bot${cfg.botToken}/sendMessage`,
      what: 'sendMessage',
      body,
      headers: { 'Content-Type': 'application/json' },
    });

  return {
    async notifySellers(alert: SellerAlert): Promise<{ messageId: number }> {
      const log = logger.child({
        activity: 'notifySellers',
        kind: alert.kind,
        ref: alert.ref,
        workflowId: alert.workflowId,
        phone: maskPhone(alert.phone),
      });
      const text = formatSellerAlert(alert);
      const keyboard = alert.actions ? sellerAlertKeyboard(alert.ref) : undefined;
      if (alert.actions && !keyboard) log.warn('ref too long for buttons; alert sent without them');
      return deliver(text, keyboard, log);
    },
    async notifySellersChat(html: string): Promise<{ messageId: number }> {
      return deliver(html, undefined, logger.child({ activity: 'notifySellersChat' }));
    },
  };

  async function deliver(
    text: string,
    keyboard: InlineKeyboard | undefined,
    log: typeof logger,
  ): Promise<{ messageId: number }> {
    const body = (): Record<string, unknown> => ({
      chat_id: chatId,
      text,
      parse_mode: 'HTML',
      disable_web_page_preview: true,
      ...(keyboard ? { reply_markup: keyboard } : {}),
    });

    let waited = false;
    let migrated = false;
    for (;;) {
      const res = await sendMessage(body());
      const sent = readAs(TelegramOk, res.data);
      if (sent) {
        log.info({ messageId: sent.result.message_id }, 'seller alert sent');
        return { messageId: sent.result.message_id };
      }
      const err = readAs(TelegramError, res.data);
      const status = err?.error_code ?? res.status;
      const description = err?.description ?? `HTTP ${res.status}`;

      if (status === 429) {
        const retryAfter = err?.parameters?.retry_after ?? 1;
        if (!waited && retryAfter <= MAX_INLINE_WAIT_S) {
          waited = true;
          log.warn({ retryAfter }, 'telegram rate limit; waiting');
          await sleep(retryAfter * 1000);
          continue;
        }
        throw ApplicationFailure.create({
          message: `Telegram: ${description}`,
          type: 'TelegramRateLimited',
          nonRetryable: false,
          nextRetryDelay: retryAfter * 1000,
        });
      }
      // A group that became a supergroup has a new id; Telegram says which, so follow it once.
      const newChat = err?.parameters?.migrate_to_chat_id;
      if (newChat !== undefined && !migrated) {
        migrated = true;
        log.warn({ newChatId: newChat }, 'telegram chat migrated; set TELEGRAM_CHAT_ID to the new id');
        chatId = String(newChat);
        continue;
      }
      if (res.status >= 500 || status >= 500 || !err) {
        throw ApplicationFailure.retryable(`Telegram: ${description}`, 'TelegramUnavailable');
      }
      // 400 (chat not found, bad markup), 401 (bad token), 403 (bot removed), 404: a retry
      // sends the same request to the same answer.
      throw ApplicationFailure.nonRetryable(`Telegram: ${description} (${status})`, 'TelegramRequestError');
    }
  }
}

function activitySleep(ms: number): Promise<void> {
  // Cancellation-aware when inside an activity.
  return activityContext()?.sleep(ms) ?? new Promise((resolve) => setTimeout(resolve, ms));
}
