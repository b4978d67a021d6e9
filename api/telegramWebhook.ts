// The sellers' Telegram buttons under a manual-handling alert ("call again", "handled", "cancel").
// Telegram posts each press here with the secret token we gave setWebhook; the press becomes the
// same operator action the API offers, recorded with the seller's Telegram name.
import express, { Router } from 'express';
import axios from 'axios';
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { HttpError, type AppDeps } from './http';
import { leadWorkflowId } from './intake';
import { safeEqual } from '../domain/safeEqual';
import { operatorActionUpdate } from '../workflows/definitions';
import type { OperatorAction } from '../workflows/types';

interface CallbackQuery {
  id: string;
  from?: { id: number; username?: string; first_name?: string; last_name?: string };
  data?: string;
}

const ACTIONS: Record<string, OperatorAction['action']> = {
  call_now: 'call_now',
  handled: 'handled',
  cancel: 'cancel',
};
const ANSWERS: Record<OperatorAction['action'], string> = {
  call_now: 'Звоним ещё раз',
  handled: 'Отмечено как обработанное',
  cancel: 'Заявка отменена',
};

export function telegramWebhookRoutes({ client, config, logger }: AppDeps): Router {
  const router = Router();
  const secret = config.telegram.webhookSecret;

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
    const query = (req.body as { callback_query?: CallbackQuery })?.callback_query;
    // Telegram resends an update until it gets 200, so anything we cannot act on is still a 200.
    if (!query?.id || typeof query.data !== 'string') {
      res.json({ ok: true, ignored: true });
      return;
    }
    const i = query.data.indexOf(':');
    const action = ACTIONS[query.data.slice(0, i)];
    const ref = query.data.slice(i + 1);
    if (i <= 0 || !action || !ref) {
      await answer(query.id, 'Неизвестная команда');
      res.json({ ok: true, ignored: true });
      return;
    }
    const from = query.from;
    const by = from
      ? from.username
        ? `@${from.username}`
        : [from.first_name, from.last_name].filter(Boolean).join(' ')
      : undefined;
    try {
      await client.workflow.getHandle(leadWorkflowId(ref)).executeUpdate(operatorActionUpdate, {
        args: [{ action, by: by ? `${by} (Telegram)` : 'Telegram' }],
      });
      await answer(query.id, ANSWERS[action]);
      res.json({ ok: true, action, ref });
    } catch (err) {
      const reason =
        err instanceof WorkflowUpdateFailedError
          ? (err.cause?.message ?? err.message)
          : err instanceof WorkflowNotFoundError
            ? 'заявка уже закрыта или не найдена'
            : undefined;
      if (!reason) throw err;
      await answer(query.id, `Нельзя: ${reason}`.slice(0, 200));
      res.json({ ok: true, refused: reason });
    }
  });
  return router;
}
