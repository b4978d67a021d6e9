// The sellers' Telegram buttons under a manual-handling alert ("call again", "handled", "cancel").
// Telegram posts each press here with the secret token we gave setWebhook; the press becomes the
// same operator action the API offers, recorded with the seller's Telegram name.
//
// Telegram resends an update whenever we answer anything but 2xx (or not in time), possibly to
// another API process, so a press is applied once: the workflow update carries the press's id as
// its update id, which Temporal de-duplicates on the run (a resend gets the first outcome, wherever
// it lands), and each process remembers the presses it answered lately to answer a repeat at once.
//
// The webhook's secret only proves that Telegram sent the update, not who pressed: anyone can add
// the bot to a group of their own, and a modified client sends any callback_data. So a press is
// taken only from TELEGRAM_CHAT_ID, only from TELEGRAM_OPERATOR_IDS when that is set, and only with
// callback_data the bot signed (domain/telegramCallback.ts).
import express, { Router } from 'express';
import axios from 'axios';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { HttpError, type AppDeps } from './http';
import { leadWorkflowId } from './leadIds';
import { claimHoldMs, sealForOperatorStop } from '../support/callClaims';
import { safeEqual } from '../domain/safeEqual';
import { verifyCallbackData, type ButtonAction } from '../domain/telegramCallback';
import type { RefusalRule } from '../support/metrics';
import { operatorActionUpdate } from '../workflows/definitions';
import type { OperatorAction } from '../workflows/types';

interface CallbackQuery {
  id: string;
  from?: { id?: unknown; username?: string; first_name?: string; last_name?: string };
  /** the message the button is under; absent for an inline-mode message, which is never ours */
  message?: { message_id?: unknown; chat?: { id?: unknown } };
  data?: string;
}

const ACTIONS: Record<ButtonAction, OperatorAction['action']> = {
  call_now: 'call_now',
  handled: 'handled',
  cancel: 'cancel',
};
/** What a refused presser reads: the same for every rule, so it teaches a stranger nothing. */
const REFUSED = 'Нет доступа к этой кнопке';
const ANSWERS: Record<OperatorAction['action'], string> = {
  call_now: 'Звоним ещё раз',
  handled: 'Отмечено как обработанное',
  cancel: 'Заявка отменена',
};

/** How many answered updates a process remembers; Telegram resends within minutes, not days. */
const REMEMBERED_UPDATES = 2000;

type WebhookAnswer = Record<string, unknown>;

/** Insertion-ordered Map as an LRU: a hit moves to the end, the oldest entry goes first. */
function createLru<V>(capacity: number) {
  const entries = new Map<string, V>();
  return {
    get(key: string): V | undefined {
      const value = entries.get(key);
      if (value !== undefined) {
        entries.delete(key);
        entries.set(key, value);
      }
      return value;
    },
    set(key: string, value: V): void {
      entries.delete(key);
      entries.set(key, value);
      while (entries.size > capacity) entries.delete(entries.keys().next().value!);
    },
    delete(key: string): void {
      entries.delete(key);
    },
  };
}

/** The Temporal update id of a button press: the same press, resent, is the same update. */
export function pressUpdateId(callbackQueryId: string): string {
  return `tg-${callbackQueryId}`;
}

export function telegramWebhookRoutes({ client, config, logger, metrics }: AppDeps): Router {
  const router = Router();
  const secret = config.telegram.webhookSecret;
  const chatId = String(config.telegram.chatId);
  const operators = new Set(config.telegram.operatorIds);
  const { callbackKey } = config.telegram;
  // An answer in progress is shared too: a resend that overtakes the first delivery waits for it.
  const answered = createLru<Promise<WebhookAnswer>>(REMEMBERED_UPDATES);

  async function answer(callbackQueryId: string, text: string): Promise<void> {
    const url = `${config.telegram.apiUrl}/bot${config.telegram.botToken}/answerCallbackQuery`;
    await axios
      .post(url, { callback_query_id: callbackQueryId, text, show_alert: false }, { timeout: 5000 })
      .catch((err: unknown) =>
        logger.warn(
          { err: axios.isAxiosError(err) ? err.message : String(err) },
          'answerCallbackQuery failed',
        ),
      );
  }

  router.post('/api/telegram/webhook', express.json({ limit: '64kb' }), async (req, res) => {
    if (!secret || !safeEqual(req.get('x-telegram-bot-api-secret-token') ?? '', secret)) {
      throw new HttpError(401, 'bad or missing X-Telegram-Bot-Api-Secret-Token');
    }
    const update = req.body as { update_id?: unknown; callback_query?: CallbackQuery } | undefined;
    const query = update?.callback_query;
    // Telegram resends an update until it gets 200, so anything we cannot act on is still a 200.
    if (typeof query?.id !== 'string' || !query.id || typeof query.data !== 'string') {
      res.json({ ok: true, ignored: true });
      return;
    }
    const keys = [
      `q:${query.id}`,
      ...(typeof update?.update_id === 'number' ? [`u:${update.update_id}`] : []),
    ];
    const seen = keys.map((k) => answered.get(k)).find((p) => p !== undefined);
    if (seen) {
      res.json({ ...(await seen), repeated: true });
      return;
    }
    const outcome = apply({ ...query, data: query.data });
    for (const k of keys) answered.set(k, outcome);
    try {
      res.json(await outcome);
    } catch (err) {
      // Not answered: Telegram resends it, and the update id keeps the action from repeating.
      for (const k of keys) answered.delete(k);
      throw err;
    }
  });

  /** The press's action and lead, or the rule that refuses it (the chat first, then the presser). */
  function check(
    query: CallbackQuery & { data: string },
  ): { action: ButtonAction; ref: string } | { refused: RefusalRule } {
    const chat = query.message?.chat?.id;
    // Group ids are negative and supergroup ids exceed 32 bits: compared as the strings they print as.
    if ((typeof chat !== 'number' && typeof chat !== 'string') || String(chat) !== chatId) {
      return { refused: 'telegram_chat' };
    }
    if (operators.size > 0 && !(typeof query.from?.id === 'number' && operators.has(query.from.id))) {
      return { refused: 'telegram_operator' };
    }
    return verifyCallbackData(callbackKey, query.data) ?? { refused: 'telegram_signature' };
  }

  async function apply(query: CallbackQuery & { data: string }): Promise<WebhookAnswer> {
    const press = check(query);
    if ('refused' in press) {
      metrics.refusals.inc({ rule: press.refused });
      // Neither the presser's id nor the chat's: both identify a person.
      logger.warn({ rule: press.refused, callbackQueryId: query.id }, 'telegram button press refused');
      await answer(query.id, REFUSED);
      return { ok: true, refused: press.refused };
    }
    const action = ACTIONS[press.action];
    const { ref } = press;
    const from = query.from;
    const by = from
      ? from.username
        ? `@${from.username}`
        : [from.first_name, from.last_name].filter(Boolean).join(' ')
      : undefined;
    try {
      const workflowId = leadWorkflowId(ref, config.phoneIdKey);
      if (action !== 'call_now') await sealForOperatorStop(client, workflowId, claimHoldMs(config));
      await client.workflow.getHandle(workflowId).executeUpdate(operatorActionUpdate, {
        args: [{ action, by: by ? `${by} (Telegram)` : 'Telegram' }],
        updateId: pressUpdateId(query.id),
      });
      await answer(query.id, ANSWERS[action]);
      return { ok: true, action, ref };
    } catch (err) {
      const reason =
        err instanceof WorkflowUpdateFailedError
          ? (err.cause?.message ?? err.message)
          : err instanceof WorkflowNotFoundError
            ? 'заявка уже закрыта или не найдена'
            : undefined;
      if (!reason) throw err;
      await answer(query.id, `Нельзя: ${reason}`.slice(0, 200));
      return { ok: true, refused: reason };
    }
  }
  return router;
}
