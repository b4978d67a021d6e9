// Seller alerts in a Telegram chat through the Bot API (sendMessage, editMessageText, HTML parse
// mode). What they say is in telegramFormat.ts; when they go, paced by Telegram's limits for all
// worker processes together, is telegramOutbox.ts's job; this file speaks the Bot API.
import type { AxiosInstance } from 'axios';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../config';
import type { Clock } from '../support/clock';
import { logger, maskPhone } from '../support/logger';
import { sharedLimit, type LimitPolicy, type SharedLimit } from '../support/sharedLimit';
import { activityContext, createProviderHttp, HTTP_TIMEOUT_MS, readAs } from './http';
import type { InlineKeyboard, SellerAlert } from './telegramFormat';
import {
  createOutbox,
  type CrmLeadLink,
  type Delivered,
  type OutboxMetrics,
  type OutboxTransport,
  type SendOutcome,
} from './telegramOutbox';

export {
  escapeHtml,
  formatSellerAlert,
  sellerAlertKeyboard,
  TELEGRAM_MAX_MESSAGE,
  type SellerAlert,
} from './telegramFormat';
export type { CrmLeadLink } from './telegramOutbox';

export interface TelegramActivityOptions {
  http?: AxiosInstance;
  /** Paces the messages and waits out a 429; injectable so tests run on a virtual clock. */
  clock?: Clock;
  /** DATA_DIR: the message budget is shared by every process using it. */
  dataDir?: string;
  /** A limit of one's own (a test simulating two processes); by default the chat's shared one. */
  limit?: SharedLimit;
  metrics?: OutboxMetrics;
  /** See OutboxOptions. */
  editPatienceMs?: number;
  /** how often a queued alert heartbeats its activity (tests) */
  heartbeatMs?: number;
}

/** Telegram counts a minute loosely; a second more per window and 100 ms more per gap keep clear of it. */
const WINDOW_MARGIN_MS = 1_000;
const GAP_MS = 1_100;

/** Telegram's flood limit for a group, as the shared limit enforces it across processes. */
export function telegramLimitPolicy(messagesPerMinute: number): LimitPolicy {
  return { kind: 'window', limit: messagesPerMinute, windowMs: 60_000 + WINDOW_MARGIN_MS, minGapMs: GAP_MS };
}

/** The shared limit's name for a chat: one budget per chat, whichever process sends. */
export function telegramLimitName(chatId: string): string {
  return `telegram-chat${chatId.replace(/[^0-9A-Za-z_-]/g, '_')}`;
}

const TelegramOk = z.object({
  ok: z.literal(true),
  result: z.union([z.object({ message_id: z.number() }), z.literal(true)]),
});
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
  notifySellers(alert: SellerAlert): Promise<Delivered>;
  /** A message to the sellers' chat about the service itself (not a lead); `html` is sent as is. */
  notifySellersChat(html: string): Promise<Delivered>;
  /** The lead's CRM id, told once its alert is out (see createOutbox). */
  notifySellersCrmLead(input: CrmLeadLink): Promise<Delivered>;
  /** Alerts queued in this process and not yet delivered. */
  waiting(): number;
} {
  const request = createProviderHttp({
    provider: 'Telegram',
    unavailableType: 'TelegramUnavailable',
    timeoutMs: HTTP_TIMEOUT_MS.telegram,
    http: opts.http,
  });
  let chatId: string = cfg.chatId;
  const log = logger.child({ component: 'telegram' });

  // The URL holds the bot token: failures name the method only (createProviderHttp's rule).
  async function call(
    method: 'sendMessage' | 'editMessageText',
    fields: Record<string, unknown>,
  ): Promise<SendOutcome> {
    let migrated = false;
    for (;;) {
      const res = await request({
        method: 'POST',
        url: `${cfg.apiUrl}/bot${cfg.botToken}/${method}`,
        what: method,
        body: { chat_id: chatId, parse_mode: 'HTML', disable_web_page_preview: true, ...fields },
        headers: { 'Content-Type': 'application/json' },
      });
      const sent = readAs(TelegramOk, res.data);
      if (sent) {
        const messageId = sent.result === true ? Number(fields.message_id) : sent.result.message_id;
        return { kind: 'sent', messageId };
      }
      const err = readAs(TelegramError, res.data);
      const status = err?.error_code ?? res.status;
      const description = err?.description ?? `HTTP ${res.status}`;
      if (status === 429) return { kind: 'rate_limited', retryAfterS: err?.parameters?.retry_after ?? 1 };
      // A group that became a supergroup has a new id; Telegram says which, so follow it once.
      const newChat = err?.parameters?.migrate_to_chat_id;
      if (newChat !== undefined && !migrated) {
        migrated = true;
        // The API takes button presses only from TELEGRAM_CHAT_ID: until it names the new chat,
        // presses there are refused.
        log.warn(
          { newChatId: newChat },
          'telegram chat migrated; set TELEGRAM_CHAT_ID to the new id (its button presses are refused until then)',
        );
        chatId = String(newChat);
        continue;
      }
      // An edit that changes nothing has already been made.
      if (method === 'editMessageText' && /message is not modified/i.test(description)) {
        return { kind: 'sent', messageId: Number(fields.message_id) };
      }
      if (res.status >= 500 || status >= 500 || !err) {
        return {
          kind: 'refused',
          failure: ApplicationFailure.retryable(`Telegram: ${description}`, 'TelegramUnavailable'),
          aboutContent: false,
        };
      }
      // 400 (chat not found, bad markup), 401 (bad token), 403 (bot removed), 404: a retry
      // sends the same request to the same answer.
      return {
        kind: 'refused',
        failure: ApplicationFailure.nonRetryable(
          `Telegram: ${description} (${status})`,
          'TelegramRequestError',
        ),
        aboutContent: status === 400 && !/chat not found|chat_id/i.test(description),
      };
    }
  }

  const transport: OutboxTransport = {
    send: (text, keyboard) => call('sendMessage', { text, ...markup(keyboard) }),
    edit: (messageId, text, keyboard) =>
      call('editMessageText', { message_id: messageId, text, ...markup(keyboard) }),
  };
  const limit =
    opts.limit ??
    sharedLimit({
      name: telegramLimitName(cfg.chatId),
      dir: opts.dataDir,
      clock: opts.clock,
      policy: telegramLimitPolicy(cfg.messagesPerMinute),
    });
  const outbox = createOutbox({
    transport,
    callbackKey: cfg.callbackKey,
    limit,
    clock: opts.clock,
    metrics: opts.metrics,
    editPatienceMs: opts.editPatienceMs,
    heartbeatMs: opts.heartbeatMs,
  });

  return {
    async notifySellers(alert) {
      const sent = await outbox.notify(alert, activityContext());
      logger.info(
        {
          activity: 'notifySellers',
          kind: alert.kind,
          ref: alert.ref,
          workflowId: alert.workflowId,
          phone: maskPhone(alert.phone),
          messageId: sent.messageId,
        },
        'seller alert delivered',
      );
      return sent;
    },
    async notifySellersChat(html) {
      return outbox.chat(html, activityContext());
    },
    async notifySellersCrmLead(input) {
      const sent = await outbox.crmLead(input, activityContext());
      logger.info(
        {
          activity: 'notifySellersCrmLead',
          ref: input.ref,
          workflowId: input.workflowId,
          messageId: sent.messageId,
        },
        'CRM lead told to the sellers',
      );
      return sent;
    },
    waiting: () => outbox.waiting(),
  };
}

function markup(keyboard: InlineKeyboard | undefined): Record<string, unknown> {
  return keyboard ? { reply_markup: keyboard } : {};
}
