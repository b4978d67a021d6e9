// Thin adapter over the Bitrix24 REST API as it really answers. Every failure leaves as an
// ApplicationFailure whose retryability is decided here, so workflows only choose what to do
// with a lead, never how to talk to Bitrix24. Tokens and the webhook URL (which embeds a secret)
// never reach a log line or an error message.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { logger, maskPhone } from '../support/logger';
import { systemClock, type Clock } from '../support/clock';
import { createRateLimiter } from '../support/rateLimiter';

export interface Partner {
  id: number;
  title: string;
  code: string;
}
export type PartnerLookup = { status: 'found'; partner: Partner } | { status: 'not_found' };
export interface CrmLeadInput {
  ref: string;
  name: string;
  phone: string;
  city?: string;
  timezone?: string;
  partnerCode?: string;
  partner?: Partner;
  site?: string;
  orderAmount?: number;
  comment?: string;
}
/** created=false when an existing lead with the same ORIGIN_ID was found. */
export interface CrmLeadResult {
  leadId: number;
  created: boolean;
}
/** What registering a lead found of its partner; lookup_failed when Bitrix24 refused the search. */
export type PartnerOutcome = PartnerLookup | { status: 'lookup_failed'; reason: string };
export interface RegisteredLead extends CrmLeadResult {
  partner?: PartnerOutcome;
}
export interface CallAttemptNote {
  leadId: number;
  statusId?: string;
  comment: string;
}
export interface Bitrix24Activities {
  findPartner(code: string): Promise<PartnerLookup>;
  createCrmLead(input: CrmLeadInput): Promise<CrmLeadResult>;
  /** The partner lookup and the lead in one activity: one workflow task per lead fewer. */
  registerLead(input: Omit<CrmLeadInput, 'partner'>): Promise<RegisteredLead>;
  recordCallAttempt(note: CallAttemptNote): Promise<void>;
  /** Several notes for one lead, in order; a retry resumes after the last one written. */
  recordCallAttempts(batch: { leadId: number; notes: Array<Omit<CallAttemptNote, 'leadId'>> }): Promise<void>;
}

type Bitrix24Config = AppConfig['bitrix24'];
type OAuthConfig = Extract<Bitrix24Config['auth'], { kind: 'oauth' }>;
type Params = Record<string, unknown>;
type Row = Record<string, unknown>;
interface Answer<T> {
  result: T;
  total?: number;
  next?: number;
}

const log = logger.child({ component: 'bitrix24' });
export const ORIGINATOR_ID = 'speed-to-lead';
export const OAUTH_STATE_FILE = 'bitrix24-oauth.json';
const REQUEST_TIMEOUT_MS = 15_000;
// Refreshing a minute early means a call rarely pays for an expired_token round trip.
const EXPIRY_MARGIN_MS = 60_000;
const AUTH_ERRORS = new Set([
  'invalid_token',
  'NO_AUTH_FOUND',
  'INVALID_CREDENTIALS',
  'insufficient_scope',
  'ACCESS_DENIED',
  'authorization_error',
  'WRONG_AUTH_TYPE',
  'invalid_client',
  'invalid_grant',
]);
const UNAVAILABLE_ERRORS = new Set(['QUERY_LIMIT_EXCEEDED', 'OVERLOAD_LIMIT', 'INTERNAL_SERVER_ERROR']);

/** Raised by one request so the caller can refresh and retry; never leaves this module. */
class ExpiredToken extends Error {}

export function createBitrix24Activities(
  cfg: Bitrix24Config,
  opts: {
    dataDir: string;
    http?: AxiosInstance;
    /** Paces requests and ages access tokens; injectable so tests run the schedule exactly. */
    clock?: Clock;
  },
): Bitrix24Activities {
  const http = opts.http ?? axios.create({ timeout: REQUEST_TIMEOUT_MS });
  const clock = opts.clock ?? systemClock;
  const auth = cfg.auth;
  const base = auth.kind === 'webhook' ? auth.webhookUrl : `${auth.portalUrl}rest/`;
  const limiter = sharedLimiter(base, cfg.requestsPerSecond, clock);
  const oauth = auth.kind === 'oauth' ? sharedOAuthSession(auth, opts.dataDir, http, clock) : undefined;

  // `progress` rides along in the heartbeat, so a retried activity knows what was already done.
  async function send<T>(method: string, body: Params, progress?: Params): Promise<Answer<T>> {
    await limiter();
    const context = activityContext();
    context?.heartbeat({ bitrix24: method, ...progress });
    const started = Date.now();
    let res: AxiosResponse<unknown>;
    try {
      res = await http.post(`${base}${method}.json`, body, {
        validateStatus: () => true,
        signal: context?.cancellationSignal,
      });
    } catch (err) {
      if (axios.isCancel(err)) throw new CancelledFailure(`Bitrix24 ${method} cancelled`);
      throw unavailable(`Bitrix24 ${method}: network error ${networkReason(err)}`);
    }
    log.debug({ method, status: res.status, ms: Date.now() - started }, 'bitrix24 call');
    const data = res.data;
    if (isErrorBody(data)) throw classify(method, res.status, data);
    if (res.status >= 200 && res.status < 300 && isRecord(data) && 'result' in data) {
      return data as unknown as Answer<T>;
    }
    const msg = `Bitrix24 ${method}: unexpected answer [HTTP ${res.status}]`;
    if (res.status >= 500 || res.status === 429) throw unavailable(msg);
    throw ApplicationFailure.nonRetryable(msg, 'Bitrix24RequestError');
  }

  async function call<T>(method: string, params: Params, progress?: Params): Promise<Answer<T>> {
    if (!oauth) return rethrowExpired(method, () => send<T>(method, params, progress));
    const token = await oauth.accessToken();
    try {
      return await send<T>(method, { ...params, auth: token }, progress);
    } catch (err) {
      if (!(err instanceof ExpiredToken)) throw err;
      const fresh = await oauth.renew(token);
      return rethrowExpired(method, () => send<T>(method, { ...params, auth: fresh }, progress));
    }
  }

  async function recordNote(note: CallAttemptNote, progress?: Params): Promise<void> {
    // The status update is idempotent and the comment is not: doing the update first means a
    // retry after a failed update cannot leave a duplicate comment behind.
    if (note.statusId) {
      await call<boolean>(
        'crm.lead.update',
        { id: note.leadId, fields: { STATUS_ID: note.statusId } },
        progress,
      );
    }
    await call<number>(
      'crm.timeline.comment.add',
      { fields: { ENTITY_ID: note.leadId, ENTITY_TYPE: 'lead', COMMENT: note.comment } },
      progress,
    );
  }

  const activities: Bitrix24Activities = {
    async findPartner(code) {
      const value = (code ?? '').trim();
      if (value === '') return { status: 'not_found' };
      const contact = cfg.partnerEntity === 'contact';
      const { result } = await call<Row[]>(contact ? 'crm.contact.list' : 'crm.company.list', {
        filter: { [cfg.partnerField]: value },
        select: contact ? ['ID', 'NAME', 'LAST_NAME', cfg.partnerField] : ['ID', 'TITLE', cfg.partnerField],
        order: { ID: 'ASC' },
      });
      const row = result[0];
      if (!row) return { status: 'not_found' };
      if (result.length > 1)
        log.warn({ count: result.length }, 'several partners share one code; using the oldest');
      const title = contact
        ? [row.NAME, row.LAST_NAME].filter((p) => typeof p === 'string' && p !== '').join(' ')
        : String(row.TITLE ?? '');
      return { status: 'found', partner: { id: Number(row.ID), title, code: value } };
    },

    async createCrmLead(input) {
      // Bitrix24 has no unique constraint, so the ref stored in ORIGIN_ID is what makes a retried
      // activity (e.g. one that timed out after the add went through) find its lead instead of
      // adding a second one.
      const existing = await call<Row[]>('crm.lead.list', {
        filter: { ORIGINATOR_ID, ORIGIN_ID: input.ref },
        select: ['ID'],
        order: { ID: 'ASC' },
      });
      const found = existing.result[0];
      if (found) return { leadId: Number(found.ID), created: false };
      const phone = input.phone.replace(/\D/g, '');
      const { result } = await call<number | string>('crm.lead.add', {
        fields: {
          TITLE: `Заявка с сайта: ${input.name}`,
          NAME: input.name,
          PHONE: [{ VALUE: `+${phone}`, VALUE_TYPE: 'WORK' }],
          ADDRESS_CITY: input.city,
          SOURCE_ID: 'WEB',
          SOURCE_DESCRIPTION: input.site,
          UTM_SOURCE: input.partnerCode,
          COMPANY_ID: input.partner?.id,
          OPPORTUNITY: input.orderAmount,
          CURRENCY_ID: 'RUB',
          COMMENTS: input.comment,
          ORIGINATOR_ID,
          ORIGIN_ID: input.ref,
        },
        params: { REGISTER_SONET_EVENT: 'Y' },
      });
      const leadId = Number(result);
      log.info({ leadId, phone: maskPhone(phone) }, 'bitrix24 lead created');
      return { leadId, created: true };
    },

    async registerLead(input) {
      let partner: PartnerOutcome | undefined;
      if (input.partnerCode) {
        try {
          partner = await activities.findPartner(input.partnerCode);
        } catch (err) {
          // A refusal (bad token, no rights, a wrong field name) will not pass on retry: the lead
          // goes in without its partner and a person is told. Anything else is retried whole.
          if (!(err instanceof ApplicationFailure && err.nonRetryable)) throw err;
          partner = { status: 'lookup_failed', reason: err.message };
        }
      }
      const lead = await activities.createCrmLead({
        ...input,
        partner: partner?.status === 'found' ? partner.partner : undefined,
      });
      return { ...lead, partner };
    },

    async recordCallAttempt(note) {
      await recordNote(note);
    },

    async recordCallAttempts({ leadId, notes }) {
      const previous = activityContext()?.info.heartbeatDetails as { notesDone?: unknown } | undefined;
      const done = typeof previous?.notesDone === 'number' ? previous.notesDone : 0;
      for (let i = done; i < notes.length; i++) {
        await recordNote({ leadId, ...notes[i]! }, { notesDone: i });
        activityContext()?.heartbeat({ notesDone: i + 1 });
      }
    },
  };
  return activities;
}

async function rethrowExpired<T>(method: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof ExpiredToken)) throw err;
    // A token that expires again right after a refresh points at clock skew or a portal hiccup,
    // not at wrong credentials, so a later attempt may well succeed.
    throw unavailable(`Bitrix24 ${method}: access token rejected as expired after refresh`);
  }
}

function classify(method: string, status: number, body: ErrorBody): Error {
  if (body.error === 'expired_token') return new ExpiredToken();
  const desc = body.error_description ? ` (${body.error_description})` : '';
  const msg = `Bitrix24 ${method}: ${body.error || 'error'}${desc} [HTTP ${status}]`;
  if (AUTH_ERRORS.has(body.error)) return ApplicationFailure.nonRetryable(msg, 'Bitrix24AuthError');
  if (UNAVAILABLE_ERRORS.has(body.error) || status >= 500 || status === 429) return unavailable(msg);
  return ApplicationFailure.nonRetryable(msg, 'Bitrix24RequestError');
}

function unavailable(msg: string): ApplicationFailure {
  return ApplicationFailure.retryable(msg, 'Bitrix24Unavailable');
}

interface ErrorBody {
  error: string;
  error_description?: string;
}
function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isErrorBody(v: unknown): v is ErrorBody {
  return isRecord(v) && typeof v.error === 'string';
}

// Only the error code: an axios error's message or config may carry the URL, and a webhook URL
// is a credential.
function networkReason(err: unknown): string {
  if (axios.isAxiosError(err)) return err.code ?? 'unknown';
  return err instanceof Error ? err.name : 'unknown';
}

// The adapter is also called outside an activity (tests, scripts), where there is no context.
function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

// Bitrix24 counts requests per portal, so the budget is shared by every adapter in the process
// that talks to the same portal, not per adapter instance (per clock too: a test's virtual clock
// gets a bucket of its own).
const limiters = new WeakMap<Clock, Map<string, () => Promise<void>>>();
function sharedLimiter(base: string, perSecond: number, clock: Clock): () => Promise<void> {
  const key = `${new URL(base).origin}#${perSecond}`;
  let byPortal = limiters.get(clock);
  if (!byPortal) limiters.set(clock, (byPortal = new Map()));
  let limiter = byPortal.get(key);
  if (!limiter) byPortal.set(key, (limiter = createRateLimiter(perSecond, clock)));
  return limiter;
}

interface OAuthSession {
  accessToken(): Promise<string>;
  /** A token valid after `rejected` was refused as expired; refreshes at most once for all callers. */
  renew(rejected: string): Promise<string>;
}
interface StoredOAuth {
  refreshToken: string;
  /** Hash of the configured refresh token this one descends from; a new configured token wins. */
  source: string;
  updatedAt: string;
}
interface TokenAnswer {
  access_token: string;
  refresh_token: string;
  expires_in: number;
}

// Bitrix24 invalidates a refresh token once it is used, so two sessions on one token file would
// log each other out: there is exactly one session per file in the process.
const sessions = new Map<string, OAuthSession>();
function sharedOAuthSession(
  auth: OAuthConfig,
  dataDir: string,
  http: AxiosInstance,
  clock: Clock,
): OAuthSession {
  const file = path.resolve(dataDir, OAUTH_STATE_FILE);
  const key = `${file}#${auth.portalUrl}#${auth.clientId}`;
  let session = sessions.get(key);
  if (!session) sessions.set(key, (session = createOAuthSession(auth, file, http, clock)));
  return session;
}

function createOAuthSession(
  auth: OAuthConfig,
  file: string,
  http: AxiosInstance,
  clock: Clock,
): OAuthSession {
  const source = crypto.createHash('sha256').update(auth.refreshToken).digest('hex').slice(0, 16);
  // What the file held when last read or written: a different value there later means another
  // process rotated the token; the same value means ours is at least as new.
  let fileToken = readStoredToken(file, source);
  let refreshToken = fileToken ?? auth.refreshToken;
  let access: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  const refresh = (): Promise<string> =>
    (inFlight ??= doRefresh().finally(() => {
      inFlight = undefined;
    }));

  async function doRefresh(): Promise<string> {
    // Another process sharing DATA_DIR may have rotated the token since we read it.
    const onDisk = readStoredToken(file, source);
    if (onDisk && onDisk !== fileToken) refreshToken = fileToken = onDisk;
    let res: AxiosResponse<unknown>;
    try {
      res = await http.get(`${auth.oauthUrl}oauth/token/`, {
        params: {
          grant_type: 'refresh_token',
          client_id: auth.clientId,
          client_secret: auth.clientSecret,
          refresh_token: refreshToken,
        },
        validateStatus: () => true,
      });
    } catch (err) {
      throw unavailable(`Bitrix24 OAuth refresh: network error ${networkReason(err)}`);
    }
    const body = res.data;
    if (res.status === 200 && isTokenAnswer(body)) {
      refreshToken = body.refresh_token;
      if (await persistToken(file, { refreshToken, source, updatedAt: new Date().toISOString() })) {
        fileToken = refreshToken;
      }
      access = { token: body.access_token, expiresAt: clock.now() + body.expires_in * 1000 };
      log.info({ expiresIn: body.expires_in }, 'bitrix24 access token refreshed');
      return access.token;
    }
    const code = isErrorBody(body) ? body.error : 'unexpected answer';
    const msg = `Bitrix24 OAuth refresh: ${code} [HTTP ${res.status}]`;
    if (res.status >= 500 || res.status === 429) throw unavailable(msg);
    log.error(
      { status: res.status, error: code },
      'bitrix24 OAuth refresh refused; a new refresh token is needed',
    );
    throw ApplicationFailure.nonRetryable(msg, 'Bitrix24AuthError');
  }

  return {
    async accessToken() {
      if (access && access.expiresAt - EXPIRY_MARGIN_MS > clock.now()) return access.token;
      return refresh();
    },
    async renew(rejected) {
      if (access && access.token !== rejected) return access.token;
      return refresh();
    },
  };
}

function isTokenAnswer(v: unknown): v is TokenAnswer {
  return (
    isRecord(v) &&
    typeof v.access_token === 'string' &&
    typeof v.refresh_token === 'string' &&
    typeof v.expires_in === 'number'
  );
}

function readStoredToken(file: string, source: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const stored = JSON.parse(text) as Partial<StoredOAuth>;
    if (typeof stored.refreshToken !== 'string') return undefined;
    if (stored.source && stored.source !== source) return undefined;
    return stored.refreshToken;
  } catch {
    log.warn({ file }, 'bitrix24 OAuth state file is unreadable; using the configured refresh token');
    return undefined;
  }
}

async function persistToken(file: string, data: StoredOAuth): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    // The rename itself must reach the disk for the token to survive a power cut; best effort,
    // since some file systems refuse to fsync a directory.
    const dir = await fs.promises.open(path.dirname(file), 'r').catch(() => undefined);
    await dir?.sync().catch(() => undefined);
    await dir?.close();
    return true;
  } catch (err) {
    // The old refresh token is already void, so failing the call would lose the new one too; it
    // stays in memory and the next refresh tries to persist again.
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    log.error({ file, err: (err as Error).message }, 'could not persist the rotated Bitrix24 refresh token');
    return false;
  }
}
