// Seller alerts in a Telegram chat through the Bot API (sendMessage, HTML parse mode).
// Lead fields come from a public web form, so every one is HTML-escaped: an unescaped `<` would
// make Telegram reject the whole alert ("can't parse entities") and the sellers would see nothing.
import axios, { isAxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { logger, maskPhone } from '../support/logger';

export interface SellerAlert {
  kind: 'new_lead' | 'manual_handling' | 'lead_update';
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
}

export type SellerAction = 'call_now' | 'handled' | 'cancel';

export interface TelegramActivityOptions {
  http?: AxiosInstance;
  /** Waits for a 429's retry_after; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

const TITLES: Record<SellerAlert['kind'], string> = {
  new_lead: '🆕 <b>Новая заявка</b>',
  manual_handling: '⚠️ <b>Нужна ручная обработка</b>',
  lead_update: '🔄 <b>Обновление по заявке</b>',
};

const BUTTONS: Array<{ action: SellerAction; text: string }> = [
  { action: 'call_now', text: '📞 Позвонить сейчас' },
  { action: 'handled', text: '✅ Обработано' },
  { action: 'cancel', text: '✖️ Отменить' },
];

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
/** Longer 429 pauses go back to Temporal's retry instead of holding a worker slot. */
const MAX_INLINE_WAIT_S = 30;

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
  const data = (action: SellerAction) => `${action}:${ref}`;
  // A ref too long for callback_data would make Telegram reject the whole message.
  if (BUTTONS.some((b) => Buffer.byteLength(data(b.action)) > MAX_CALLBACK_DATA)) return undefined;
  const [callNow, handled, cancel] = BUTTONS.map((b) => ({ text: b.text, callback_data: data(b.action) }));
  return { inline_keyboard: [[callNow!, handled!], [cancel!]] };
}

interface TelegramOk {
  ok: true;
  result: { message_id: number };
}

interface TelegramError {
  ok: false;
  error_code: number;
  description: string;
  parameters?: { retry_after?: number; migrate_to_chat_id?: number };
}

export function createTelegramActivities(
  cfg: AppConfig['telegram'],
  opts: TelegramActivityOptions = {},
): { notifySellers(alert: SellerAlert): Promise<{ messageId: number }> } {
  const http = opts.http ?? axios.create({ timeout: 15_000 });
  const sleep = opts.sleep ?? activitySleep;
  let chatId: string = cfg.chatId;

  async function sendMessage(body: Record<string, unknown>): Promise<AxiosResponse<unknown>> {
    try {
      return await http.post(`${cfg.apiUrl}/bot${cfg.botToken}/sendMessage`, body, {
        headers: { 'Content-Type': 'application/json' },
        validateStatus: () => true,
      });
    } catch (err) {
      // The URL holds the bot token, so only the error code and axios' own message are kept.
      const code = isAxiosError(err) ? err.code : undefined;
      throw ApplicationFailure.retryable(
        `Telegram unreachable: ${code ?? ''} ${(err as Error).message}`.replace(/\s+/g, ' '),
        'TelegramUnavailable',
      );
    }
  }

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
        const data = res.data;
        if (isOk(data)) {
          log.info({ messageId: data.result.message_id }, 'seller alert sent');
          return { messageId: data.result.message_id };
        }
        const err = isError(data) ? data : undefined;
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
    },
  };
}

function isOk(data: unknown): data is TelegramOk {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as { ok?: unknown; result?: { message_id?: unknown } };
  return d.ok === true && typeof d.result?.message_id === 'number';
}

function isError(data: unknown): data is TelegramError {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Partial<TelegramError>;
  return d.ok === false && typeof d.error_code === 'number';
}

function activitySleep(ms: number): Promise<void> {
  try {
    // Cancellation-aware when inside an activity.
    return Context.current().sleep(ms);
  } catch {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
