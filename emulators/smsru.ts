// A local SMS.ru: `sms/send` with its real parameters, api_id check and answers (JSON with
// `json=1`, the old line format without), per-number statuses included, so the adapter's handling
// of "request OK but this number failed" is exercised as it happens on the real gateway.
import express, { type Request, type Response } from 'express';
import { EMULATOR_CREDENTIALS } from './credentials';
import { FaultMode, type EmulatorMode } from './faultMode';

export type { EmulatorMode };

export interface EmulatedSms {
  smsId: string;
  to: string;
  text: string;
  from?: string;
  /** `test=1`: SMS.ru answers as if sent but sends nothing */
  test: boolean;
  at: Date;
}

export interface SmsRuEmulatorState {
  /** every message the gateway accepted for sending */
  sms: EmulatedSms[];
  /** every request, rejected ones included */
  requests: Array<{ path: string; at: Date }>;
  balance: number;
}

export interface SmsRuEmulatorOptions {
  apiId?: string;
  /** approved sender names; unset: any `from` is accepted */
  senders?: string[];
  balance?: number;
}

export interface SmsRuEmulatorControl {
  /** `times`: how many requests get this mode before it falls back to 'ok' (default: until changed) */
  setMode(mode: EmulatorMode, opts?: { times?: number }): void;
  /** answer this per-number status code for `phone` (e.g. 202 bad number, 207 no route, 209 stop list) */
  rejectNumber(phone: string, statusCode?: number): void;
  /**
   * Delay every answer; the message is accepted first, as a slow real gateway would. `Infinity`
   * holds the answer until the client hangs up.
   */
  setLatency(ms: number): void;
  /** the account's money; below a message's price every number answers 201 */
  setBalance(amount: number): void;
  /** messages the account may send per day (SMS.ru's own limit); past it the request answers 206 */
  setDailyLimit(limit: number | undefined): void;
  reset(): void;
}

export interface SmsRuEmulator {
  app: express.Express;
  state: SmsRuEmulatorState;
  control: SmsRuEmulatorControl;
}

// Status texts as SMS.ru words them.
const STATUS_TEXT: Record<number, string> = {
  200: 'Неправильный api_id',
  201: 'Не хватает средств на лицевом счету',
  202: 'Неправильно указан номер телефона получателя, либо на него нет маршрута',
  203: 'Нет текста сообщения',
  204: 'Имя отправителя не согласовано с администрацией',
  205: 'Сообщение слишком длинное (превышает 8 СМС)',
  206: 'Будет превышен или уже превышен дневной лимит на отправку сообщений',
  207: 'На этот номер нет маршрута для доставки сообщений',
  209: 'Вы добавили этот номер (или один из номеров) в стоп-лист',
  213: 'Указано более 100 номеров в списке получателей',
  220: 'Сервис временно недоступен, попробуйте чуть позже.',
  230: 'Превышен общий лимит количества сообщений на этот номер в день',
  231: 'Превышен лимит одинаковых сообщений на этот номер в минуту',
  232: 'Превышен лимит одинаковых сообщений на этот номер в день',
};
const MAX_PARTS = 8;
const PRICE_PER_PART = 3.5;
// Large enough that a demo or a benchmark never runs dry; tests that want "no money" pass `balance`.
const INITIAL_BALANCE = 1_000_000;
const DOWN_PAGE = '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>';

interface PerNumber {
  status: 'OK' | 'ERROR';
  status_code: number;
  status_text?: string;
  sms_id?: string;
  cost?: string;
  sms?: number;
}

type Answer =
  | { status: 'OK'; status_code: 100; sms: Record<string, PerNumber>; balance: number }
  | { status: 'ERROR'; status_code: number; status_text: string };

const topError = (code: number): Answer => ({
  status: 'ERROR',
  status_code: code,
  status_text: STATUS_TEXT[code] ?? 'Ошибка',
});

export function createSmsRuEmulator(opts: SmsRuEmulatorOptions = {}): SmsRuEmulator {
  const apiId = opts.apiId ?? EMULATOR_CREDENTIALS.smsruApiId;
  const initialBalance = opts.balance ?? INITIAL_BALANCE;
  const state: SmsRuEmulatorState = { sms: [], requests: [], balance: initialBalance };
  const faults = new FaultMode();
  let latencyMs = 0;
  let nextId = 1;
  const rejected = new Map<string, number>();
  let dailyLimit: number | undefined;
  const sentToday = () => {
    const day = new Date().toISOString().slice(0, 10);
    return state.sms.filter((m) => !m.test && m.at.toISOString().slice(0, 10) === day).length;
  };

  function send(p: Record<string, string>): Answer {
    if (p.api_id !== apiId) return topError(200);
    const text = p.msg ?? '';
    if (text.trim() === '') return topError(203);
    const numbers = (p.to ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    if (numbers.length === 0) return topError(202);
    if (numbers.length > 100) return topError(213);
    if (p.from && opts.senders && !opts.senders.includes(p.from)) return topError(204);
    if (dailyLimit !== undefined && sentToday() + numbers.length > dailyLimit) return topError(206);
    const parts = smsParts(text);
    if (parts > MAX_PARTS) return topError(205);
    const cost = parts * PRICE_PER_PART;
    const sms: Record<string, PerNumber> = {};
    for (const raw of numbers) {
      const to = raw.replace(/\D/g, '');
      const code = !/^\d{10,15}$/.test(to) ? 202 : rejected.get(to);
      if (code !== undefined) {
        sms[raw] = { status: 'ERROR', status_code: code, status_text: STATUS_TEXT[code] ?? 'Ошибка' };
        continue;
      }
      if (state.balance < cost) {
        sms[raw] = { status: 'ERROR', status_code: 201, status_text: STATUS_TEXT[201] };
        continue;
      }
      const smsId = `000000-${String(10_000_000 + nextId++)}`;
      const test = p.test === '1';
      if (!test) state.balance = Math.round((state.balance - cost) * 100) / 100;
      state.sms.push({ smsId, to, text, ...(p.from ? { from: p.from } : {}), test, at: new Date() });
      sms[raw] = { status: 'OK', status_code: 100, sms_id: smsId, cost: cost.toFixed(2), sms: parts };
    }
    return { status: 'OK', status_code: 100, sms, balance: state.balance };
  }

  async function handle(req: Request, res: Response): Promise<void> {
    state.requests.push({ path: req.path, at: new Date() });
    const p = collectParams(req);
    const current = faults.take();
    let answer: Answer | undefined;
    if (current === 'down') {
      await wait(latencyMs, res);
      res.status(503).type('html').send(DOWN_PAGE);
      return;
    }
    if (current === 'rate_limit') answer = topError(220);
    else if (current === 'auth_error') answer = topError(200);
    else answer = send(p);
    await wait(latencyMs, res);
    if (res.destroyed) return;
    if (p.json === '1') {
      res.json(answer);
      return;
    }
    // Without json=1: the status code, then one sms id per accepted number, then the balance.
    const lines =
      answer.status === 'OK'
        ? [
            '100',
            ...Object.values(answer.sms).map((s) => s.sms_id ?? String(s.status_code)),
            `balance=${answer.balance}`,
          ]
        : [String(answer.status_code)];
    res.type('text/plain').send(lines.join('\n'));
  }

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  app.all('/sms/send', (req, res) => handle(req, res));
  app.all('/my/balance', (req, res) => {
    const p = collectParams(req);
    if (p.api_id !== apiId) res.json(topError(200));
    else res.json({ status: 'OK', status_code: 100, balance: state.balance });
  });

  const control: SmsRuEmulatorControl = {
    setMode(next, o = {}) {
      faults.set(next, o.times);
    },
    rejectNumber(phone, statusCode = 202) {
      rejected.set(phone.replace(/\D/g, ''), statusCode);
    },
    setLatency(ms) {
      latencyMs = ms;
    },
    setBalance(amount) {
      state.balance = amount;
    },
    setDailyLimit(limit) {
      dailyLimit = limit;
    },
    reset() {
      dailyLimit = undefined;
      state.sms.length = 0;
      state.requests.length = 0;
      state.balance = initialBalance;
      rejected.clear();
      faults.reset();
      latencyMs = 0;
    },
  };

  return { app, state, control };
}

/** Parts a text takes: 70/67 characters for Cyrillic (UCS-2), 160/153 for GSM-7 text. */
export function smsParts(text: string): number {
  const ucs2 = /[^\x20-\x7e\n\r]/.test(text);
  const [single, multi] = ucs2 ? [70, 67] : [160, 153];
  const length = [...text].length;
  return length <= single ? 1 : Math.ceil(length / multi);
}

function collectParams(req: Request): Record<string, string> {
  const out: Record<string, string> = {};
  for (const source of [req.query, req.body] as unknown[]) {
    if (typeof source !== 'object' || source === null) continue;
    for (const [k, v] of Object.entries(source as Record<string, unknown>)) {
      const first: unknown = Array.isArray(v) ? v[0] : v;
      if (typeof first === 'string') out[k] = first;
    }
  }
  return out;
}

function wait(ms: number, res: Response): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  if (ms === Number.POSITIVE_INFINITY) return new Promise((resolve) => res.once('close', resolve));
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
