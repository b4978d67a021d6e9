// Who may press the sellers' buttons, against the real service on a real Temporal dev server: the
// Telegram emulator delivers each press to the webhook as Telegram does (the Update of a chosen
// user, chat, message and callback_data), and only a press from the sellers' chat, by one of
// TELEGRAM_OPERATOR_IDS, with callback_data the bot signed for that lead and action, is taken.
import crypto from 'node:crypto';
import type http from 'node:http';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { buildApp } from '../api/app';
import { logger } from '../support/logger';
import { createMetrics } from '../support/metrics';
import type { TelegramUser } from '../emulators/telegram';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { received } from './support/received';

const HOOK_SECRET = `buttons-hook-${crypto.randomBytes(8).toString('hex')}`;
const OPERATOR: TelegramUser = { id: 5_012_345_678, username: 'seller_olga', first_name: 'Ольга' };
const OTHER_OPERATOR: TelegramUser = { id: 42, first_name: 'Пётр' };
/** a member of the sellers' chat who is not in TELEGRAM_OPERATOR_IDS */
const STRANGER: TelegramUser = { id: 9_876_543, username: 'curious_cat', first_name: 'Кот' };
const STRANGERS_GROUP = '-1009876543210';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const { alertsAbout } = received(() => stack.emulators);

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(env, {
    TELEGRAM_WEBHOOK_SECRET: HOOK_SECRET,
    TELEGRAM_OPERATOR_IDS: `${OPERATOR.id}, ${OTHER_OPERATOR.id}`,
    CALL_RESULT_TIMEOUT: '1s',
    CALL_MAX_ATTEMPTS: '2',
    CALL_RETRY_DELAY: '200ms',
  });
  await setWebhook(stack.url);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

/** What the README tells the shop to do once: point the bot's webhook at the service. */
async function setWebhook(apiUrl: string): Promise<void> {
  const { telegram } = stack.emulators.urls;
  const res = await postJson(`${telegram}/bot${stack.config.telegram.botToken}/setWebhook`, {
    url: `${apiUrl}/api/telegram/webhook`,
    secret_token: HOOK_SECRET,
    allowed_updates: ['callback_query'],
  });
  expect(res.body).toMatchObject({ ok: true, result: true });
}

async function status(ref: string): Promise<Record<string, unknown>> {
  return (await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator)).body;
}

const operatorEntries = async (ref: string) =>
  ((await status(ref)).history as Array<{ what: string }>)
    .map((h) => h.what)
    .filter((w) => w.startsWith('оператор:'));

/** A lead waiting for a person, and its alert's message and buttons (by action) in the sellers' chat. */
async function leadNeedingAPerson(): Promise<{
  ref: string;
  messageId: number;
  data: Record<'call_now' | 'handled' | 'cancel', string>;
}> {
  const phone = uniquePhone();
  stack.emulators.voximplant.control.scriptFor(phone, [{ result: 'answered', report: 'none' }]);
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Алиса', phone });
  expect(res.status).toBe(202);
  const ref = String(res.body.ref);
  await eventually(async () => expect((await status(ref)).status).toBe('ManualHandling'));
  return eventually(() => {
    const alert = alertsAbout(phone).find((m) => m.replyMarkup !== undefined);
    expect(alert).toBeDefined();
    const buttons = (
      alert!.replyMarkup as { inline_keyboard: Array<Array<{ callback_data: string }>> }
    ).inline_keyboard
      .flat()
      .map((b) => b.callback_data);
    // A digest carries a row per lead: this lead's are the ones naming its ref (signed or, before
    // signing, bare).
    const of = (action: string) =>
      buttons.find((d) => d === `${action}:${ref}` || d.startsWith(`${action}:${ref}:`));
    const data = { call_now: of('call_now')!, handled: of('handled')!, cancel: of('cancel')! };
    expect(data).toEqual({
      call_now: expect.any(String),
      handled: expect.any(String),
      cancel: expect.any(String),
    });
    expect(alert!.chatId).toBe(stack.config.telegram.chatId);
    return { ref, messageId: alert!.messageId, data };
  });
}

/** The answer the presser's client was given (the button stops spinning with it). */
const answerTo = (callbackQueryId: string) =>
  stack.emulators.telegram.state.callbackAnswers.find((a) => a.callbackQueryId === callbackQueryId);

async function refusals(rule: string): Promise<number> {
  const { values } = await stack.service.metrics.refusals.get();
  return values.find((v) => v.labels.rule === rule)?.value ?? 0;
}

/** The press was refused: answered with a refusal, and the lead is as it was. */
async function expectRefused(
  pressed: { status: number; body: unknown; update: { callback_query: { id: string } } },
  ref: string,
): Promise<void> {
  // The webhook answers once the press is applied or refused: the lead is read after it.
  expect(await status(ref)).toMatchObject({ status: 'ManualHandling', execution: 'RUNNING' });
  expect(await operatorEntries(ref)).toEqual([]);
  expect(pressed.status).toBe(200);
  expect(pressed.body).toMatchObject({ ok: true, refused: expect.stringMatching(/^telegram_/) });
  expect(answerTo(pressed.update.callback_query.id)?.text).toBe('Нет доступа к этой кнопке');
}

test('a press under a message in another chat is refused and the lead is unchanged', async () => {
  const lead = await leadNeedingAPerson();
  const before = await refusals('telegram_chat');
  // The bot added to a stranger's group, and a private chat with the bot: the same press, elsewhere.
  for (const chatId of [STRANGERS_GROUP, String(OPERATOR.id)]) {
    const pressed = await stack.emulators.telegram.control.press({
      from: OPERATOR,
      chatId,
      messageId: lead.messageId,
      data: lead.data.handled,
    });
    await expectRefused(pressed, lead.ref);
  }
  expect(await refusals('telegram_chat')).toBe(before + 2);
});

test('with TELEGRAM_OPERATOR_IDS set, a member of the sellers’ chat not in it is refused', async () => {
  const lead = await leadNeedingAPerson();
  const before = await refusals('telegram_operator');
  const pressed = await stack.emulators.telegram.control.press({
    from: STRANGER,
    messageId: lead.messageId,
    data: lead.data.cancel,
  });
  await expectRefused(pressed, lead.ref);
  expect(await refusals('telegram_operator')).toBe(before + 1);
});

test('callback_data changed by a client (another lead, another action, no MAC) is refused', async () => {
  const shown = await leadNeedingAPerson();
  const other = await leadNeedingAPerson();
  const mac = shown.data.handled.slice(shown.data.handled.lastIndexOf(':') + 1);
  const before = await refusals('telegram_signature');
  const tampered = [
    // the MAC of a button of one lead, under the ref of a lead it was never shown for
    { data: `handled:${other.ref}:${mac}`, lead: other.ref },
    // the MAC of "handled", with another action
    { data: `cancel:${shown.ref}:${mac}`, lead: shown.ref },
    { data: `call_now:${shown.ref}:${mac}`, lead: shown.ref },
    // the unsigned form of buttons sent before signing
    { data: `handled:${shown.ref}`, lead: shown.ref },
    { data: `handled:${shown.ref}:${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`, lead: shown.ref },
  ];
  for (const t of tampered) {
    const pressed = await stack.emulators.telegram.control.press({
      from: OPERATOR,
      messageId: shown.messageId,
      data: t.data,
    });
    await expectRefused(pressed, t.lead);
  }
  expect(await refusals('telegram_signature')).toBe(before + tampered.length);
});

test('an operator’s press of a button the bot sent, in the sellers’ chat, is taken', async () => {
  const lead = await leadNeedingAPerson();
  const pressed = await stack.emulators.telegram.control.press({
    from: OPERATOR,
    messageId: lead.messageId,
    data: lead.data.handled,
  });
  expect(pressed).toMatchObject({ status: 200, body: { ok: true, action: 'handled', ref: lead.ref } });
  expect(answerTo(pressed.update.callback_query.id)?.text).toBe('Отмечено как обработанное');
  await eventually(async () =>
    expect(await status(lead.ref)).toMatchObject({ status: 'Handled', execution: 'COMPLETED' }),
  );
  expect(await operatorEntries(lead.ref)).toEqual(['оператор: handled (@seller_olga (Telegram))']);
});

test('without TELEGRAM_OPERATOR_IDS any member of the sellers’ chat may press, still only there', async () => {
  const lead = await leadNeedingAPerson();
  // A second API process of the same service, configured without operator ids.
  const config = { ...stack.config, telegram: { ...stack.config.telegram, operatorIds: [] } };
  const app = buildApp({ client: stack.service.client, config, logger, metrics: createMetrics() });
  const server = await new Promise<http.Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    await setWebhook(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    const elsewhere = await stack.emulators.telegram.control.press({
      from: STRANGER,
      chatId: STRANGERS_GROUP,
      messageId: lead.messageId,
      data: lead.data.cancel,
    });
    await expectRefused(elsewhere, lead.ref);
    const pressed = await stack.emulators.telegram.control.press({
      from: STRANGER,
      messageId: lead.messageId,
      data: lead.data.cancel,
    });
    expect(pressed).toMatchObject({ status: 200, body: { ok: true, action: 'cancel', ref: lead.ref } });
    await eventually(async () => expect((await status(lead.ref)).execution).toBe('COMPLETED'));
    expect(await operatorEntries(lead.ref)).toEqual(['оператор: cancel (@curious_cat (Telegram))']);
  } finally {
    await setWebhook(stack.url);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
