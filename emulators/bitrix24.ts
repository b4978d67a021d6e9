// A local Bitrix24 portal and its OAuth server answering with the real paths, status codes and
// bodies, so the adapter is exercised over HTTP against the wire format and not against itself.
import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import qs from 'qs';
import { EMULATOR_CREDENTIALS } from './credentials';

type Params = Record<string, unknown>;
export type Bitrix24Entity = Record<string, unknown> & { ID: number };
export interface Bitrix24TimelineComment {
  ID: number;
  ENTITY_ID: number;
  ENTITY_TYPE: string;
  COMMENT: string;
}
export interface Bitrix24EmulatorState {
  leads: Bitrix24Entity[];
  companies: Bitrix24Entity[];
  contacts: Bitrix24Entity[];
  comments: Bitrix24TimelineComment[];
  /**
   * Every REST call that reached the portal, `auth` removed from its params; `abandoned` when the
   * client closed the connection before the answer was written; `status` the HTTP status answered;
   * `commands` the methods a `batch` ran, in order.
   */
  requests: Array<{
    method: string;
    params: unknown;
    at: number;
    abandoned?: boolean;
    status?: number;
    commands?: string[];
  }>;
  /**
   * `refreshToken` is the one refresh token the OAuth server accepts right now (each is
   * single-use); `invalidGrants` counts refreshes refused with a spent or unknown one.
   */
  oauth: { refreshes: number; refreshToken: string; invalidGrants: number };
}
/**
 * 'operating_time_limit': 429 OPERATION_TIME_LIMIT until `resetAt` (epoch s; then 'ok' again);
 * 'overload': 503 OVERLOAD_LIMIT, a block only Bitrix24's support lifts; 'lose_answer': the
 * request is carried out and the connection dropped instead of answering.
 */
export type Bitrix24EmulatorMode =
  | 'ok'
  | 'down'
  | 'invalid_token'
  | 'rate_limit'
  | 'slow'
  | 'operating_time_limit'
  | 'overload'
  | 'lose_answer';
export interface Bitrix24ModeOptions {
  delayMs?: number;
  disconnect?: boolean;
  /** How many requests get this mode before it falls back to 'ok' (default: until changed). */
  times?: number;
  /** 'operating_time_limit': when the method is allowed again, epoch seconds. */
  resetAt?: number;
  /** 'lose_answer': only for a request that calls this method (itself or in its batch). */
  method?: string;
}
/** Bitrix24's leaky bucket: `burst` requests at once, drained at `perSecond`. */
export type Bitrix24RateLimit = { perSecond: number; burst: number } | false;
export interface Bitrix24EmulatorOptions {
  webhookPath?: string;
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  rateLimit?: Bitrix24RateLimit;
  accessTokenTtlSeconds?: number;
  /** Epoch ms for the leaky bucket, token expiry and timestamps; a test may pass a virtual clock. */
  now?: () => number;
}
export interface Bitrix24EmulatorControl {
  addCompany(fields: Record<string, unknown>): number;
  addContact(fields: Record<string, unknown>): number;
  /**
   * 'down' answers 503 INTERNAL_SERVER_ERROR, or drops the connection with `disconnect`; 'slow'
   * answers after `delayMs`, or without it holds the answer until the client hangs up.
   */
  setMode(mode: Bitrix24EmulatorMode, opts?: Bitrix24ModeOptions): void;
  setRateLimit(limit: Bitrix24RateLimit): void;
  /** The next `times` commands of `method` inside a batch fail with `code` in `result_error`. */
  failCommands(method: string, code: string, times?: number): void;
  /** Every access token issued so far answers 401 expired_token from now on. */
  expireAccessTokens(): void;
  reset(): void;
}

export const BITRIX24_EMULATOR_DEFAULTS = {
  clientId: 'local.emulator.speedtolead',
  clientSecret: 'emulator-client-secret',
  refreshToken: 'emulator-refresh-token',
  rateLimit: { perSecond: 2, burst: 50 },
} as const;
const PAGE_SIZE = 50;
const BATCH_MAX = 50;
const MULTI_FIELDS = new Set(['PHONE', 'EMAIL', 'WEB', 'IM']);

class BitrixError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
  ) {
    super(description);
  }
}
const notFound = () => new BitrixError(400, '', 'Not found');

export function createBitrix24Emulator(opts: Bitrix24EmulatorOptions = {}): {
  app: express.Express;
  state: Bitrix24EmulatorState;
  control: Bitrix24EmulatorControl;
} {
  const [, webhookUser, webhookCode] = (opts.webhookPath ?? EMULATOR_CREDENTIALS.bitrix24WebhookPath)
    .split('/')
    .filter(Boolean);
  const clientId = opts.clientId ?? BITRIX24_EMULATOR_DEFAULTS.clientId;
  const clientSecret = opts.clientSecret ?? BITRIX24_EMULATOR_DEFAULTS.clientSecret;
  const initialRefresh = opts.refreshToken ?? BITRIX24_EMULATOR_DEFAULTS.refreshToken;
  const ttlSeconds = opts.accessTokenTtlSeconds ?? 3600;
  const now = opts.now ?? Date.now;

  const state: Bitrix24EmulatorState = {
    leads: [],
    companies: [],
    contacts: [],
    comments: [],
    requests: [],
    oauth: { refreshes: 0, refreshToken: initialRefresh, invalidGrants: 0 },
  };
  const accessTokens = new Map<string, number>(); // token → expires at (ms)
  let nextId = { lead: 1, company: 1, contact: 1, comment: 1, multi: 1 };
  let mode: Bitrix24EmulatorMode = 'ok';
  let modeOpts: Bitrix24ModeOptions = {};
  let commandFailures: Array<{ method: string; code: string; left: number }> = [];
  let rateLimit: Bitrix24RateLimit = opts.rateLimit ?? BITRIX24_EMULATOR_DEFAULTS.rateLimit;
  let bucket = { level: 0, at: now() };

  function overLimit(): boolean {
    if (!rateLimit) return false;
    const t = now();
    bucket.level = Math.max(0, bucket.level - ((t - bucket.at) / 1000) * rateLimit.perSecond);
    bucket.at = t;
    if (bucket.level + 1 > rateLimit.burst) return true;
    bucket.level += 1;
    return false;
  }

  /** The mode for the request being answered, counted against `times`. */
  function takeMode(): Bitrix24EmulatorMode {
    if (mode === 'operating_time_limit' && (modeOpts.resetAt ?? 0) * 1000 <= now()) mode = 'ok';
    const current = mode;
    if (current === 'lose_answer') return current; // counted once carried out: loseAnswer()
    if (current !== 'ok' && modeOpts.times !== undefined && --modeOpts.times <= 0) {
      mode = 'ok';
      modeOpts = {};
    }
    return current;
  }

  function loseAnswer(entry: Bitrix24EmulatorState['requests'][number]): boolean {
    const ran = [entry.method, ...(entry.commands ?? [])];
    if (modeOpts.method !== undefined && !ran.includes(modeOpts.method.toLowerCase())) return false;
    if (modeOpts.times !== undefined && --modeOpts.times <= 0) {
      mode = 'ok';
      modeOpts = {};
    }
    return true;
  }

  function authenticate(segments: string[], params: Params): void {
    if (segments.length === 3) {
      if (segments[0] !== webhookUser || segments[1] !== webhookCode) {
        throw new BitrixError(401, 'INVALID_CREDENTIALS', 'Invalid request credentials');
      }
      return;
    }
    const token = params.auth;
    if (typeof token !== 'string' || token === '') {
      throw new BitrixError(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
    }
    const expiresAt = accessTokens.get(token);
    if (expiresAt === undefined)
      throw new BitrixError(401, 'invalid_token', 'Unable to get application by token');
    if (expiresAt <= now())
      throw new BitrixError(401, 'expired_token', 'The access token provided has expired.');
  }

  function store(kind: 'lead' | 'company' | 'contact', list: Bitrix24Entity[], fields: Params): number {
    const created = new Date(now()).toISOString();
    const entity: Bitrix24Entity = {
      ...withMultiFields(fields),
      ID: nextId[kind]++,
      DATE_CREATE: created,
      DATE_MODIFY: created,
    };
    if (kind === 'lead') {
      entity.STATUS_ID ??= 'NEW';
      entity.OPENED ??= 'Y';
    }
    list.push(entity);
    return entity.ID;
  }

  function withMultiFields(fields: Params): Params {
    const out: Params = {};
    for (const [key, value] of Object.entries(fields)) {
      out[key] =
        MULTI_FIELDS.has(key) && Array.isArray(value)
          ? value
              .filter(isRecord)
              .map((v) => ({ ID: nextId.multi++, VALUE_TYPE: 'WORK', ...v, TYPE_ID: key }))
          : value;
    }
    return out;
  }

  const methods: Record<string, (p: Params) => { result: unknown; total?: number; next?: number }> = {
    'crm.lead.add': (p) => ({ result: store('lead', state.leads, fieldsOf(p)) }),
    'crm.lead.list': (p) => list(state.leads, p),
    'crm.lead.get': (p) => ({ result: present(byId(state.leads, p.id), []) }),
    'crm.lead.update': (p) => {
      const lead = byId(state.leads, p.id);
      Object.assign(lead, withMultiFields(fieldsOf(p)), {
        ID: lead.ID,
        DATE_MODIFY: new Date(now()).toISOString(),
      });
      return { result: true };
    },
    'crm.company.add': (p) => ({ result: store('company', state.companies, fieldsOf(p)) }),
    'crm.company.list': (p) => list(state.companies, p),
    'crm.contact.add': (p) => ({ result: store('contact', state.contacts, fieldsOf(p)) }),
    'crm.contact.list': (p) => list(state.contacts, p),
    'crm.timeline.comment.add': (p) => {
      const f = fieldsOf(p);
      const entityType = String(f.ENTITY_TYPE ?? '').toLowerCase();
      const owners: Record<string, Bitrix24Entity[]> = {
        lead: state.leads,
        company: state.companies,
        contact: state.contacts,
      };
      const owner = owners[entityType];
      if (!owner || typeof f.COMMENT !== 'string' || f.COMMENT === '') {
        throw new BitrixError(400, 'ERROR_ARGUMENT', 'ENTITY_TYPE, ENTITY_ID and COMMENT are required');
      }
      const entity = byId(owner, f.ENTITY_ID);
      const comment = {
        ID: nextId.comment++,
        ENTITY_ID: entity.ID,
        ENTITY_TYPE: entityType,
        COMMENT: f.COMMENT,
      };
      state.comments.push(comment);
      return { result: comment.ID };
    },
  };

  /**
   * `batch`: up to 50 commands `cmd[key]=method?query`, run in order; `$result[key]` (and
   * `$result[key][field]…`) in a query is an earlier command's result. With halt=0 a failed command
   * is reported in `result_error` and the rest still run.
   */
  function batch(p: Params, ran: string[]): { result: unknown } {
    const cmds = isRecord(p.cmd) ? p.cmd : undefined;
    if (!cmds || Object.keys(cmds).length === 0)
      throw new BitrixError(400, 'ERROR_BATCH_METHOD_NOT_ALLOWED', 'No commands');
    if (Object.keys(cmds).length > BATCH_MAX) {
      throw new BitrixError(400, 'ERROR_BATCH_LENGTH_EXCEEDED', `Max batch length exceeded ${BATCH_MAX}`);
    }
    const halt = ['1', 'true', 'Y'].includes(String(p.halt ?? '0'));
    const out = { result: {} as Params, result_error: {} as Params, result_total: {} as Params };
    const next: Params = {};
    const time: Params = {};
    for (const [key, raw] of Object.entries(cmds)) {
      const started = now();
      const [path = '', query = ''] = String(raw).split(/\?(.*)/s);
      const method = path
        .trim()
        .replace(/\.json$/i, '')
        .toLowerCase();
      ran.push(method);
      try {
        const handler = methods[method];
        if (!handler || method === 'batch') {
          throw new BitrixError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
        }
        const failure = commandFailures.find((f) => f.method === method && f.left > 0);
        if (failure) {
          failure.left -= 1;
          throw new BitrixError(400, failure.code, `${failure.code} (emulated)`);
        }
        const params = qs.parse(substitute(query, out.result), { arrayLimit: 1000, depth: 10 }) as Params;
        const answer = handler(params);
        out.result[key] = answer.result;
        if (answer.total !== undefined) out.result_total[key] = answer.total;
        if (answer.next !== undefined) next[key] = answer.next;
      } catch (err) {
        const e =
          err instanceof BitrixError
            ? err
            : new BitrixError(500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
        out.result_error[key] = { error: e.code, error_description: e.description };
        if (halt) break;
      }
      time[key] = timing(started, now());
    }
    // PHP answers an empty map as [].
    const php = (m: Params) => (Object.keys(m).length === 0 ? [] : m);
    return {
      result: {
        result: php(out.result),
        result_error: php(out.result_error),
        result_total: php(out.result_total),
        result_next: php(next),
        result_time: php(time),
      },
    };
  }

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'extended'); // Bitrix24 reads nested keys such as filter[ID] from the query too
  app.use(express.json({ type: ['application/json', 'text/json'] }));
  app.use(express.urlencoded({ extended: true }));

  app.use('/rest', async (req: Request, res: Response) => {
    const started = now();
    const segments = req.path.split('/').filter(Boolean);
    const params: Params = { ...(req.query as Params), ...(isRecord(req.body) ? req.body : {}) };
    const method = (segments.at(-1) ?? '').replace(/\.json$/i, '').toLowerCase();
    const loggable = { ...params };
    delete loggable.auth;
    const entry: Bitrix24EmulatorState['requests'][number] = { method, params: loggable, at: started };
    state.requests.push(entry);
    res.once('finish', () => (entry.status = res.statusCode));
    const current = takeMode();
    const hungUp = new Promise<void>((resolve) =>
      res.once('close', () => {
        if (!res.writableFinished) entry.abandoned = true;
        resolve();
      }),
    );
    try {
      if (current === 'slow') {
        let timer: NodeJS.Timeout | undefined;
        const answerDue =
          modeOpts.delayMs === undefined
            ? new Promise<never>(() => {})
            : new Promise<void>((r) => (timer = setTimeout(r, modeOpts.delayMs)));
        await Promise.race([answerDue, hungUp]);
        clearTimeout(timer);
        if (entry.abandoned) return;
      }
      if (current === 'down') {
        if (modeOpts.disconnect) return void req.socket.destroy();
        throw new BitrixError(503, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      }
      if (current === 'invalid_token')
        throw new BitrixError(401, 'invalid_token', 'Unable to get application by token');
      if (segments.length !== 1 && segments.length !== 3) {
        throw new BitrixError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
      }
      authenticate(segments, params);
      if (current === 'rate_limit' || overLimit())
        throw new BitrixError(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests');
      if (current === 'overload') {
        throw new BitrixError(503, 'OVERLOAD_LIMIT', 'REST API is blocked due to overload.');
      }
      if (current === 'operating_time_limit') {
        return void res.status(429).json({
          error: 'OPERATION_TIME_LIMIT',
          error_description: 'Method is blocked due to operation time limit.',
          time: { ...timing(started, now()), operating_reset_at: modeOpts.resetAt, operating: 480 },
        });
      }
      let answer: { result: unknown; total?: number; next?: number };
      if (method === 'batch') {
        entry.commands = [];
        answer = batch(params, entry.commands);
      } else {
        const handler = methods[method];
        if (!handler) throw new BitrixError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
        answer = handler(params);
      }
      if (current === 'lose_answer' && loseAnswer(entry)) return void req.socket.destroy();
      res.status(200).json({ ...answer, time: timing(started, now()) });
    } catch (err) {
      const e =
        err instanceof BitrixError
          ? err
          : new BitrixError(500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      res.status(e.status).json({ error: e.code, error_description: e.description });
    }
  });

  app.all('/oauth/token', (req: Request, res: Response) => {
    const q: Params = { ...(req.query as Params), ...(isRecord(req.body) ? req.body : {}) };
    const fail = (status: number, error: string, error_description: string) =>
      void res.status(status).json({ error, error_description });
    if (q.grant_type !== 'refresh_token')
      return fail(400, 'unsupported_grant_type', 'Unsupported grant type');
    if (q.client_id !== clientId || q.client_secret !== clientSecret) {
      return fail(401, 'invalid_client', 'Invalid client credentials');
    }
    if (q.refresh_token !== state.oauth.refreshToken) {
      state.oauth.invalidGrants += 1;
      return fail(400, 'invalid_grant', 'Invalid grant');
    }
    const accessToken = crypto.randomBytes(32).toString('hex');
    accessTokens.set(accessToken, now() + ttlSeconds * 1000);
    state.oauth.refreshToken = crypto.randomBytes(32).toString('hex');
    state.oauth.refreshes += 1;
    const endpoint = `${req.protocol}://${req.get('host') ?? 'localhost'}/rest/`;
    res.status(200).json({
      access_token: accessToken,
      expires: Math.floor(now() / 1000) + ttlSeconds,
      expires_in: ttlSeconds,
      scope: 'crm',
      domain: req.get('host') ?? 'localhost',
      server_endpoint: `${req.protocol}://${req.get('host') ?? 'localhost'}/oauth/rest/`,
      status: 'L',
      client_endpoint: endpoint,
      member_id: 'emulator-member',
      user_id: 1,
      refresh_token: state.oauth.refreshToken,
    });
  });

  // Malformed bodies: answered in Bitrix24's shape rather than express's HTML page.
  app.use((err: Error & { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 400).json({ error: 'INVALID_REQUEST', error_description: err.message });
  });

  const control: Bitrix24EmulatorControl = {
    addCompany: (fields) => store('company', state.companies, fields),
    addContact: (fields) => store('contact', state.contacts, fields),
    setMode(next, o = {}) {
      mode = next;
      modeOpts = { ...o };
      if (next === 'operating_time_limit') modeOpts.resetAt ??= Math.floor(now() / 1000) + 60;
    },
    setRateLimit(limit) {
      rateLimit = limit;
      bucket = { level: 0, at: now() };
    },
    failCommands(method, code, times = 1) {
      commandFailures.push({ method: method.toLowerCase(), code, left: times });
    },
    expireAccessTokens() {
      for (const token of accessTokens.keys()) accessTokens.set(token, 0);
    },
    reset() {
      for (const items of [state.leads, state.companies, state.contacts, state.comments, state.requests]) {
        items.length = 0;
      }
      state.oauth = { refreshes: 0, refreshToken: initialRefresh, invalidGrants: 0 };
      accessTokens.clear();
      nextId = { lead: 1, company: 1, contact: 1, comment: 1, multi: 1 };
      mode = 'ok';
      modeOpts = {};
      commandFailures = [];
      rateLimit = opts.rateLimit ?? BITRIX24_EMULATOR_DEFAULTS.rateLimit;
      bucket = { level: 0, at: now() };
    },
  };
  return { app, state, control };
}

function isRecord(v: unknown): v is Params {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fieldsOf(p: Params): Params {
  if (!isRecord(p.fields)) throw new BitrixError(400, '', "Parameter 'fields' must be array.");
  return p.fields;
}

function byId(items: Bitrix24Entity[], id: unknown): Bitrix24Entity {
  const n = Number(id);
  if (!Number.isInteger(n) || n <= 0) throw new BitrixError(400, '', 'ID is not defined or invalid.');
  const found = items.find((item) => item.ID === n);
  if (!found) throw notFound();
  return found;
}

function list(items: Bitrix24Entity[], p: Params): { result: unknown[]; total: number; next?: number } {
  const filter = isRecord(p.filter) ? p.filter : {};
  const select = Array.isArray(p.select) ? p.select.map(String) : [];
  const matched = items.filter((item) =>
    Object.entries(filter).every(([key, want]) => {
      const have = item[key.replace(/^[=@]/, '').toUpperCase()];
      if (have === undefined || have === null) return false;
      // `@F` is IN; a form-encoded list past qs's array limit arrives as an object of indices.
      const wanted = Array.isArray(want) ? want : isRecord(want) ? Object.values(want) : [want];
      return wanted.some((w) => String(w) === String(have));
    }),
  );
  const [orderKey, orderDir] = Object.entries(isRecord(p.order) ? p.order : {})[0] ?? ['ID', 'ASC'];
  const sign = String(orderDir).toUpperCase() === 'DESC' ? -1 : 1;
  matched.sort((a, b) => sign * compare(a[orderKey.toUpperCase()], b[orderKey.toUpperCase()]));
  const start = Math.max(0, Number(p.start) || 0);
  const next = start + PAGE_SIZE < matched.length ? start + PAGE_SIZE : undefined;
  const result = matched.slice(start, start + PAGE_SIZE).map((item) => present(item, select));
  return next === undefined ? { result, total: matched.length } : { result, total: matched.length, next };
}

/** `$result[key]` and `$result[key][field]…` replaced by what that earlier command answered. */
function substitute(query: string, results: Params): string {
  return query.replace(/\$result((?:\[[^\]]*\])+)/g, (whole, path: string) => {
    const keys = [...path.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!);
    let value: unknown = results;
    for (const k of keys) value = isRecord(value) || Array.isArray(value) ? (value as Params)[k] : undefined;
    return value === undefined || isRecord(value) ? whole : encodeURIComponent(String(value));
  });
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a ?? '').localeCompare(String(b ?? ''));
}

// Bitrix24 answers scalars as strings ("ID":"12") and null for empty fields; mirroring that keeps
// the adapter honest about parsing.
function present(item: Bitrix24Entity, select: string[]): Params {
  const all = select.length === 0 || select.includes('*');
  const keys = all ? Object.keys(item) : ['ID', ...select.filter((k) => k !== 'ID')];
  const out: Params = {};
  for (const key of keys) {
    const value = item[key];
    out[key] = typeof value === 'number' || typeof value === 'boolean' ? String(value) : (value ?? null);
  }
  return out;
}

function timing(startedMs: number, finished: number): Params {
  return {
    start: startedMs / 1000,
    finish: finished / 1000,
    duration: (finished - startedMs) / 1000,
    processing: (finished - startedMs) / 1000,
    date_start: new Date(startedMs).toISOString(),
    date_finish: new Date(finished).toISOString(),
    operating_reset_at: Math.floor(startedMs / 1000) + 600,
    operating: 0,
  };
}
