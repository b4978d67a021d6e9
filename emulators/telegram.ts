// A local Telegram Bot API: `/bot<token>/<method>` with the real token check, answers and error
// shapes, and the HTML parse mode enforced as Telegram does (unknown tags, unclosed tags and
// over-long messages are refused), so a formatting bug fails a test instead of an alert. Telegram's
// flood limits are enforced by default (20 messages a minute to a group, about one a second to any
// chat, edits included), answered with 429 and retry_after as Telegram does.
//
// A button press is delivered as Telegram delivers it: an Update with a callback_query posted to the
// URL given to setWebhook, with its secret_token in X-Telegram-Bot-Api-Secret-Token. A test chooses
// who presses, in which chat, under which message and with which callback_data: a modified client
// sends any data, and a bot can be added to anyone's group.
import express, { type Request, type Response } from 'express';
import { systemClock, type Clock } from '../support/clock';
import { EMULATOR_CREDENTIALS } from './credentials';
import { FaultMode, type EmulatorMode } from './faultMode';

export type { EmulatorMode };

export interface EmulatedMessage {
  messageId: number;
  chatId: string;
  /** the text as sent (HTML source when parse_mode is HTML) */
  text: string;
  /** the text a reader sees: tags removed, entities decoded */
  plainText: string;
  parseMode?: string;
  disableWebPagePreview?: boolean;
  replyMarkup?: unknown;
  at: Date;
  /** how many times editMessageText changed it */
  edits: number;
}

export interface TelegramEmulatorState {
  messages: EmulatedMessage[];
  /** answers to inline-button presses (answerCallbackQuery) */
  callbackAnswers: Array<{ callbackQueryId: string; text?: string; showAlert: boolean }>;
  /** every request by method, rejected ones included */
  requests: Array<{ method: string; at: Date }>;
  /** every 429 answered: `cause` 'limit' for the flood limit, 'fault' for setMode('rate_limit') */
  tooManyRequests: Array<{
    method: string;
    chatId: string;
    retryAfter: number;
    cause: 'limit' | 'fault';
    at: Date;
  }>;
  /** successful editMessageText calls */
  edits: Array<{ messageId: number; chatId: string; at: Date }>;
  /** the webhook set with setWebhook, as getWebhookInfo tells it */
  webhook?: { url: string; secretToken?: string; allowedUpdates?: string[] };
  /** updates posted to the webhook, with the status it answered */
  deliveredUpdates: Array<{ update: TelegramUpdate; status: number; at: Date }>;
}

/** A user as Telegram describes one in an update. */
export interface TelegramUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
  language_code?: string;
}

/** The Update Telegram posts for a press of an inline button. */
export interface TelegramUpdate {
  update_id: number;
  callback_query: {
    id: string;
    from: TelegramUser;
    message: Record<string, unknown> & { message_id: number; chat: { id: number; type: string } };
    chat_instance: string;
    data: string;
  };
}

export interface ButtonPress {
  /** who presses */
  from: TelegramUser;
  /**
   * the message the button is under: one the bot sent (its chat, text and keyboard are taken from
   * it) or, with `chatId`, any message id in any chat
   */
  messageId: number;
  /** the chat the message is in; default: the chat of the bot's message `messageId` */
  chatId?: string;
  /** what the client sends; default: the callback_data of the button `button` picks */
  data?: string;
  /** picks the message's first button whose text starts with this, when `data` is not given */
  button?: string;
}

export interface TelegramRateLimits {
  /** messages (sent or edited) per minute to a group chat (a negative id); Telegram: 20 */
  groupPerMinute: number;
  /** the shortest gap between two messages to one chat; Telegram: about a second */
  minGapMs: number;
}

export const TELEGRAM_RATE_LIMITS: TelegramRateLimits = { groupPerMinute: 20, minGapMs: 1000 };

export interface TelegramEmulatorOptions {
  botToken?: string;
  /** chats the bot is a member of */
  chatIds?: string[];
  /**
   * Telegram's flood limits, on by default; `false` only for a test that says it needs an
   * instant provider.
   */
  rateLimits?: Partial<TelegramRateLimits> | false;
  clock?: Clock;
}

export interface TelegramEmulatorControl {
  /**
   * `times`: how many requests get this mode before it falls back to 'ok' (default: until changed);
   * `retryAfter`: seconds announced by 'rate_limit' (default 1).
   */
  setMode(mode: EmulatorMode, opts?: { times?: number; retryAfter?: number }): void;
  /** the group `from` became the supergroup `to`: messages to `from` are refused with migrate_to_chat_id */
  migrateChat(from: string, to: string): void;
  /** Turns the flood limits on (Telegram's, or the given ones) or off. */
  setRateLimits(limits: Partial<TelegramRateLimits> | false): void;
  /** Clears the record and the faults; the flood limits stay as set. */
  reset(): void;
  /**
   * Presses a button: posts the Update to the webhook (setWebhook) and resolves with the webhook's
   * answer. Telegram would resend an update answered with anything but 2xx; a test sees the status.
   */
  press(press: ButtonPress): Promise<{ status: number; body: unknown; update: TelegramUpdate }>;
}

export interface TelegramEmulator {
  app: express.Express;
  /**
   * The answer to `/bot<token>/<method>` without HTTP: for tests on a virtual clock, where a
   * request must complete without real time passing.
   */
  invoke(path: string, params: Record<string, unknown>): { status: number; body: Record<string, unknown> };
  state: TelegramEmulatorState;
  control: TelegramEmulatorControl;
}

const MAX_TEXT = 4096;
const MAX_CALLBACK_DATA = 64;
const BOT = { id: 123456, is_bot: true, first_name: 'Speed-to-lead', username: 'speed_to_lead_emulator_bot' };
// Telegram's HTML subset: tag → attributes it may carry.
const ALLOWED_TAGS: Record<string, string[]> = {
  b: [],
  strong: [],
  i: [],
  em: [],
  u: [],
  ins: [],
  s: [],
  strike: [],
  del: [],
  'tg-spoiler': [],
  span: ['class'],
  a: ['href'],
  code: ['class'],
  pre: [],
  blockquote: ['expandable'],
  'tg-emoji': ['emoji-id'],
};
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"' };

type ApiError = { status: number; body: Record<string, unknown> };
const fail = (status: number, description: string, parameters?: Record<string, unknown>): ApiError => ({
  status,
  body: { ok: false, error_code: status, description, ...(parameters ? { parameters } : {}) },
});

export function createTelegramEmulator(opts: TelegramEmulatorOptions = {}): TelegramEmulator {
  const botToken = opts.botToken ?? EMULATOR_CREDENTIALS.telegramBotToken;
  const chatIds = new Set(opts.chatIds ?? [EMULATOR_CREDENTIALS.telegramChatId]);
  const clock = opts.clock ?? systemClock;
  const state: TelegramEmulatorState = {
    messages: [],
    callbackAnswers: [],
    requests: [],
    tooManyRequests: [],
    edits: [],
    deliveredUpdates: [],
  };
  let nextUpdateId = 1;
  let nextQueryId = 1;
  const migrated = new Map<string, string>();
  const faults = new FaultMode();
  let retryAfter = 1;
  let nextMessageId = 1;
  const limitsOf = (l: Partial<TelegramRateLimits> | false | undefined) =>
    l === false ? undefined : { ...TELEGRAM_RATE_LIMITS, ...l };
  let limits = limitsOf(opts.rateLimits);
  /** When each chat was last sent or edited a message, for the flood limits. */
  const posted = new Map<string, number[]>();

  type Answer = ApiError | { status: 200; body: Record<string, unknown> };

  /** The chat a request may post to, or the error Telegram gives. */
  function chatOf(p: Record<string, unknown>): ApiError | { chatId: string } {
    const chatId = p.chat_id === undefined ? '' : String(p.chat_id);
    if (chatId === '') return fail(400, 'Bad Request: chat_id is empty');
    const to = migrated.get(chatId);
    if (to !== undefined) {
      return fail(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
        migrate_to_chat_id: Number(to),
      });
    }
    if (!chatIds.has(chatId)) return fail(400, 'Bad Request: chat not found');
    return { chatId };
  }

  /** The text, parse mode and keyboard as Telegram reads them, or its error. */
  function contentOf(
    p: Record<string, unknown>,
  ): ApiError | { text: string; plainText: string; parseMode?: string; markup: unknown } {
    const text = typeof p.text === 'string' ? p.text : '';
    if (text.trim() === '') return fail(400, 'Bad Request: message text is empty');
    const parseMode = typeof p.parse_mode === 'string' && p.parse_mode !== '' ? p.parse_mode : undefined;
    let plainText = text;
    if (parseMode !== undefined) {
      if (parseMode.toLowerCase() !== 'html') return fail(400, `Bad Request: unsupported parse_mode`);
      const parsed = parseTelegramHtml(text);
      if (!parsed.ok) return fail(400, `Bad Request: can't parse entities: ${parsed.error}`);
      plainText = parsed.text;
    }
    if (plainText.length > MAX_TEXT) return fail(400, 'Bad Request: message is too long');
    const markup = typeof p.reply_markup === 'string' ? safeJson(p.reply_markup) : p.reply_markup;
    if (markup === null) return fail(400, "Bad Request: can't parse reply keyboard markup JSON object");
    if (markup !== undefined && !validKeyboard(markup)) return fail(400, 'Bad Request: BUTTON_DATA_INVALID');
    return { text, plainText, ...(parseMode ? { parseMode } : {}), markup };
  }

  /** Telegram's flood control: a 429 with the seconds to wait, or undefined when the message may go. */
  function flooded(method: string, chatId: string): ApiError | undefined {
    if (!limits) return undefined;
    const now = clock.now();
    const times = (posted.get(chatId) ?? []).filter((t) => t > now - 60_000);
    posted.set(chatId, times);
    let waitMs = 0;
    const last = times[times.length - 1];
    if (last !== undefined) waitMs = Math.max(waitMs, last + limits.minGapMs - now);
    if (chatId.startsWith('-') && times.length >= limits.groupPerMinute) {
      waitMs = Math.max(waitMs, times[times.length - limits.groupPerMinute]! + 60_000 - now);
    }
    if (waitMs <= 0) return undefined;
    const seconds = Math.max(1, Math.ceil(waitMs / 1000));
    state.tooManyRequests.push({ method, chatId, retryAfter: seconds, cause: 'limit', at: new Date(now) });
    return fail(429, `Too Many Requests: retry after ${seconds}`, { retry_after: seconds });
  }

  function note(chatId: string): void {
    const times = posted.get(chatId) ?? [];
    times.push(clock.now());
    posted.set(chatId, times);
  }

  function resultOf(message: EmulatedMessage): Record<string, unknown> {
    return {
      message_id: message.messageId,
      from: BOT,
      chat: { id: Number(message.chatId), title: 'Продавцы', type: 'supergroup' },
      date: Math.floor(message.at.getTime() / 1000),
      text: message.plainText,
      ...(message.replyMarkup !== undefined ? { reply_markup: message.replyMarkup } : {}),
    };
  }

  function sendMessage(p: Record<string, unknown>): Answer {
    const chat = chatOf(p);
    if ('status' in chat) return chat;
    const content = contentOf(p);
    if ('status' in content) return content;
    const busy = flooded('sendMessage', chat.chatId);
    if (busy) return busy;
    const message: EmulatedMessage = {
      messageId: nextMessageId++,
      chatId: chat.chatId,
      text: content.text,
      plainText: content.plainText,
      ...(content.parseMode ? { parseMode: content.parseMode } : {}),
      disableWebPagePreview: p.disable_web_page_preview === true || p.disable_web_page_preview === 'true',
      ...(content.markup !== undefined ? { replyMarkup: content.markup } : {}),
      at: new Date(clock.now()),
      edits: 0,
    };
    state.messages.push(message);
    note(chat.chatId);
    return { status: 200, body: { ok: true, result: resultOf(message) } };
  }

  function editMessageText(p: Record<string, unknown>): Answer {
    const chat = chatOf(p);
    if ('status' in chat) return chat;
    const message = state.messages.find(
      (m) => m.chatId === chat.chatId && m.messageId === Number(p.message_id),
    );
    if (!message) return fail(400, 'Bad Request: message to edit not found');
    const content = contentOf(p);
    if ('status' in content) return content;
    if (
      message.text === content.text &&
      JSON.stringify(message.replyMarkup) === JSON.stringify(content.markup)
    ) {
      return fail(
        400,
        'Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message',
      );
    }
    const busy = flooded('editMessageText', chat.chatId);
    if (busy) return busy;
    message.text = content.text;
    message.plainText = content.plainText;
    // Telegram drops the keyboard of an edit that does not repeat it.
    if (content.markup === undefined) delete message.replyMarkup;
    else message.replyMarkup = content.markup;
    message.edits += 1;
    state.edits.push({ messageId: message.messageId, chatId: chat.chatId, at: new Date(clock.now()) });
    note(chat.chatId);
    return { status: 200, body: { ok: true, result: resultOf(message) } };
  }

  function setWebhook(p: Record<string, unknown>): Answer {
    const url = typeof p.url === 'string' ? p.url : '';
    if (url === '') {
      delete state.webhook;
      return { status: 200, body: { ok: true, result: true, description: 'Webhook was deleted' } };
    }
    // Telegram wants https; the emulator also takes the tests' loopback http.
    if (!/^https?:\/\//i.test(url)) {
      return fail(400, 'Bad Request: bad webhook: An HTTPS URL must be provided for webhook');
    }
    const secretToken =
      typeof p.secret_token === 'string' && p.secret_token !== '' ? p.secret_token : undefined;
    if (secretToken !== undefined && !/^[A-Za-z0-9_-]{1,256}$/.test(secretToken)) {
      return fail(400, 'Bad Request: secret token contains unallowed characters');
    }
    const allowed = typeof p.allowed_updates === 'string' ? safeJson(p.allowed_updates) : p.allowed_updates;
    state.webhook = {
      url,
      ...(secretToken ? { secretToken } : {}),
      ...(Array.isArray(allowed) ? { allowedUpdates: allowed.map(String) } : {}),
    };
    return { status: 200, body: { ok: true, result: true, description: 'Webhook was set' } };
  }

  /** The Update of a press, built as Telegram builds it. */
  function updateOf(press: ButtonPress): TelegramUpdate {
    const sent = state.messages.find(
      (m) => m.messageId === press.messageId && (press.chatId === undefined || m.chatId === press.chatId),
    );
    const chatId = press.chatId ?? sent?.chatId;
    if (chatId === undefined) throw new Error(`no message ${press.messageId} of the bot: give its chatId`);
    let data = press.data;
    if (data === undefined) {
      const markup = sent?.replyMarkup as
        { inline_keyboard?: Array<Array<{ text: string; callback_data?: string }>> } | undefined;
      const button = markup?.inline_keyboard
        ?.flat()
        .find((b) => press.button === undefined || b.text.startsWith(press.button));
      if (button?.callback_data === undefined) {
        throw new Error(`message ${press.messageId} has no such button`);
      }
      data = button.callback_data;
    }
    const id = Number(chatId);
    const chat =
      id < 0
        ? { id, title: 'Продавцы', type: chatId.startsWith('-100') ? 'supergroup' : 'group' }
        : { id, first_name: press.from.first_name ?? '', type: 'private' };
    const message = sent
      ? { ...resultOf(sent), message_id: sent.messageId, chat }
      : { message_id: press.messageId, from: BOT, chat, date: Math.floor(clock.now() / 1000), text: '…' };
    return {
      update_id: nextUpdateId++,
      callback_query: {
        // Telegram's ids are opaque strings of a large number, one per press.
        id: `${4_000_000_000_000 + nextQueryId++}`,
        from: { is_bot: false, first_name: 'Продавец', ...press.from },
        message,
        chat_instance: `ci${chatId}`,
        data,
      },
    };
  }

  async function press(p: ButtonPress) {
    const webhook = state.webhook;
    if (!webhook) throw new Error('no webhook: call setWebhook first');
    if (webhook.allowedUpdates && !webhook.allowedUpdates.includes('callback_query')) {
      throw new Error('the webhook does not take callback_query updates (allowed_updates)');
    }
    const update = updateOf(p);
    const res = await fetch(webhook.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(webhook.secretToken ? { 'x-telegram-bot-api-secret-token': webhook.secretToken } : {}),
      },
      body: JSON.stringify(update),
    });
    const text = await res.text();
    state.deliveredUpdates.push({ update, status: res.status, at: new Date(clock.now()) });
    return { status: res.status, body: safeJson(text) ?? text, update };
  }

  function handle(req: Request, res: Response): void {
    const method = String(req.params.method ?? '');
    state.requests.push({ method, at: new Date(clock.now()) });
    const answer = answerFor(String(req.params.bot ?? ''), method, { ...req.query, ...(req.body ?? {}) });
    res.status(answer.status).json(answer.body);
  }

  function answerFor(
    botSegment: string,
    method: string,
    params: Record<string, unknown>,
  ): ApiError | { status: number; body: Record<string, unknown> } {
    if (!botSegment.startsWith('bot')) return fail(404, 'Not Found');
    const current = faults.take();
    if (current === 'down') return fail(502, 'Bad Gateway');
    if (current === 'auth_error' || botSegment.slice(3) !== botToken) return fail(401, 'Unauthorized');
    if (current === 'rate_limit') {
      const chatId = params.chat_id === undefined ? '' : String(params.chat_id);
      state.tooManyRequests.push({ method, chatId, retryAfter, cause: 'fault', at: new Date(clock.now()) });
      return fail(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
    }
    if (method === 'getMe') return { status: 200, body: { ok: true, result: BOT } };
    if (method === 'sendMessage') return sendMessage(params);
    if (method === 'editMessageText') return editMessageText(params);
    if (method === 'setWebhook') return setWebhook(params);
    if (method === 'deleteWebhook') {
      delete state.webhook;
      return { status: 200, body: { ok: true, result: true, description: 'Webhook was deleted' } };
    }
    if (method === 'getWebhookInfo') {
      return {
        status: 200,
        body: {
          ok: true,
          result: {
            url: state.webhook?.url ?? '',
            has_custom_certificate: false,
            pending_update_count: 0,
            ...(state.webhook?.allowedUpdates ? { allowed_updates: state.webhook.allowedUpdates } : {}),
          },
        },
      };
    }
    if (method === 'answerCallbackQuery') {
      if (typeof params.callback_query_id !== 'string' || !params.callback_query_id) {
        return fail(400, 'Bad Request: query is too old and response timeout expired or query ID is invalid');
      }
      state.callbackAnswers.push({
        callbackQueryId: params.callback_query_id,
        text: typeof params.text === 'string' ? params.text : undefined,
        showAlert: params.show_alert === true || params.show_alert === 'true',
      });
      return { status: 200, body: { ok: true, result: true } };
    }
    return fail(404, 'Not Found: method not found');
  }

  const app = express();
  app.disable('x-powered-by');
  app.use(express.json({ limit: '1mb' }));
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  app.all('/:bot/:method', handle);

  const control: TelegramEmulatorControl = {
    setMode(next, o = {}) {
      faults.set(next, o.times);
      retryAfter = o.retryAfter ?? 1;
    },
    migrateChat(from, to) {
      migrated.set(from, to);
      chatIds.add(to);
    },
    setRateLimits(next) {
      limits = limitsOf(next);
    },
    reset() {
      state.messages.length = 0;
      state.callbackAnswers.length = 0;
      state.requests.length = 0;
      state.tooManyRequests.length = 0;
      state.edits.length = 0;
      state.deliveredUpdates.length = 0;
      posted.clear();
      migrated.clear();
      faults.reset();
      retryAfter = 1;
    },
    press,
  };

  function invoke(path: string, params: Record<string, unknown>) {
    const [, bot = '', method = ''] = /^\/?([^/]*)\/([^/?]*)/.exec(path) ?? [];
    state.requests.push({ method, at: new Date(clock.now()) });
    return answerFor(bot, method, params);
  }

  return { app, invoke, state, control };
}

/**
 * Telegram's HTML parse mode: only its tags, properly nested, and `<`/`&` only as tags or
 * entities. Returns the text a reader sees, or the error Telegram would give (UTF-8 byte offsets).
 */
export function parseTelegramHtml(html: string): { ok: true; text: string } | { ok: false; error: string } {
  const stack: string[] = [];
  let text = '';
  let i = 0;
  const offset = (at: number) => Buffer.byteLength(html.slice(0, at));
  while (i < html.length) {
    const ch = html[i]!;
    if (ch === '<') {
      const m = /^<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*)\s*>/.exec(
        html.slice(i),
      );
      if (!m) return { ok: false, error: `Unexpected end of name token at byte offset ${offset(i)}` };
      const [whole, closing, rawName, attrs] = m;
      const name = rawName!.toLowerCase();
      const allowed = ALLOWED_TAGS[name];
      if (!allowed)
        return { ok: false, error: `Unsupported start tag "${name}" at byte offset ${offset(i)}` };
      if (closing) {
        const open = stack.pop();
        if (open !== name) {
          return {
            ok: false,
            error: `Unmatched end tag at byte offset ${offset(i)}, expected "</${open ?? ''}>", found "</${name}>"`,
          };
        }
      } else {
        for (const attr of (attrs ?? '').matchAll(/([\w-]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?/g)) {
          if (!allowed.includes(attr[1]!.toLowerCase())) {
            return { ok: false, error: `Unsupported attribute "${attr[1]}" at byte offset ${offset(i)}` };
          }
        }
        stack.push(name);
      }
      i += whole!.length;
      continue;
    }
    if (ch === '&') {
      const m = /^&(#\d{1,7}|#x[\da-fA-F]{1,6}|[a-zA-Z]+);/.exec(html.slice(i, i + 12));
      const name = m?.[1];
      if (name !== undefined && (name.startsWith('#') || ENTITIES[name] !== undefined)) {
        text += name.startsWith('#x')
          ? String.fromCodePoint(parseInt(name.slice(2), 16))
          : name.startsWith('#')
            ? String.fromCodePoint(Number(name.slice(1)))
            : ENTITIES[name]!;
        i += m![0].length;
        continue;
      }
    }
    text += ch;
    i += 1;
  }
  if (stack.length > 0) {
    return { ok: false, error: `Can't find end tag corresponding to start tag "${stack[stack.length - 1]}"` };
  }
  return { ok: true, text };
}

function validKeyboard(markup: unknown): boolean {
  if (typeof markup !== 'object' || markup === null) return false;
  const rows = (markup as { inline_keyboard?: unknown }).inline_keyboard;
  if (rows === undefined) return true; // other keyboard kinds are not checked here
  if (!Array.isArray(rows)) return false;
  return rows.every(
    (row) =>
      Array.isArray(row) &&
      row.every((button: { text?: unknown; callback_data?: unknown }) => {
        if (typeof button?.text !== 'string' || button.text === '') return false;
        if (button.callback_data === undefined) return true;
        const size = typeof button.callback_data === 'string' ? Buffer.byteLength(button.callback_data) : 0;
        return size >= 1 && size <= MAX_CALLBACK_DATA;
      }),
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}
