// A local Telegram Bot API: `/bot<token>/<method>` with the real token check, answers and error
// shapes, and the HTML parse mode enforced as Telegram does (unknown tags, unclosed tags and
// over-long messages are refused), so a formatting bug fails a test instead of an alert.
import express, { type Request, type Response } from 'express';
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
}

export interface TelegramEmulatorState {
  messages: EmulatedMessage[];
  /** answers to inline-button presses (answerCallbackQuery) */
  callbackAnswers: Array<{ callbackQueryId: string; text?: string; showAlert: boolean }>;
  /** every request by method, rejected ones included */
  requests: Array<{ method: string; at: Date }>;
}

export interface TelegramEmulatorOptions {
  botToken?: string;
  /** chats the bot is a member of */
  chatIds?: string[];
}

export interface TelegramEmulatorControl {
  /**
   * `times`: how many requests get this mode before it falls back to 'ok' (default: until changed);
   * `retryAfter`: seconds announced by 'rate_limit' (default 1).
   */
  setMode(mode: EmulatorMode, opts?: { times?: number; retryAfter?: number }): void;
  /** the group `from` became the supergroup `to`: messages to `from` are refused with migrate_to_chat_id */
  migrateChat(from: string, to: string): void;
  reset(): void;
}

export interface TelegramEmulator {
  app: express.Express;
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
  const state: TelegramEmulatorState = { messages: [], callbackAnswers: [], requests: [] };
  const migrated = new Map<string, string>();
  const faults = new FaultMode();
  let retryAfter = 1;
  let nextMessageId = 1;

  function sendMessage(
    p: Record<string, unknown>,
  ): ApiError | { status: 200; body: Record<string, unknown> } {
    const chatId = p.chat_id === undefined ? '' : String(p.chat_id);
    if (chatId === '') return fail(400, 'Bad Request: chat_id is empty');
    const to = migrated.get(chatId);
    if (to !== undefined) {
      return fail(400, 'Bad Request: group chat was upgraded to a supergroup chat', {
        migrate_to_chat_id: Number(to),
      });
    }
    if (!chatIds.has(chatId)) return fail(400, 'Bad Request: chat not found');
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
    const message: EmulatedMessage = {
      messageId: nextMessageId++,
      chatId,
      text,
      plainText,
      ...(parseMode ? { parseMode } : {}),
      disableWebPagePreview: p.disable_web_page_preview === true || p.disable_web_page_preview === 'true',
      ...(markup !== undefined ? { replyMarkup: markup } : {}),
      at: new Date(),
    };
    state.messages.push(message);
    return {
      status: 200,
      body: {
        ok: true,
        result: {
          message_id: message.messageId,
          from: BOT,
          chat: { id: Number(chatId), title: 'Продавцы', type: 'supergroup' },
          date: Math.floor(message.at.getTime() / 1000),
          text: plainText,
          ...(markup !== undefined ? { reply_markup: markup } : {}),
        },
      },
    };
  }

  function handle(req: Request, res: Response): void {
    const method = String(req.params.method ?? '');
    state.requests.push({ method, at: new Date() });
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
      return fail(429, `Too Many Requests: retry after ${retryAfter}`, { retry_after: retryAfter });
    }
    if (method === 'getMe') return { status: 200, body: { ok: true, result: BOT } };
    if (method === 'sendMessage') return sendMessage(params);
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
    reset() {
      state.messages.length = 0;
      state.callbackAnswers.length = 0;
      state.requests.length = 0;
      migrated.clear();
      faults.reset();
      retryAfter = 1;
    },
  };

  return { app, state, control };
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
