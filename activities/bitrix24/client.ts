// The Bitrix24 REST client: one method call as Bitrix24 really answers it. Every failure leaves as
// an ApplicationFailure whose retryability is decided here; an expired OAuth token is refreshed and
// the call repeated once. The webhook URL (which embeds a secret) and tokens never reach a log line
// or an error message.
import type { AxiosInstance } from 'axios';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../../config';
import { logger } from '../../support/logger';
import { systemClock, type Clock } from '../../support/clock';
import { createRateLimiter } from '../../support/rateLimiter';
import {
  activityContext,
  createProviderHttp,
  HTTP_TIMEOUT_MS,
  readAs,
  type HttpAnswer,
  type ProviderHttp,
} from '../http';
import { sharedOAuthSession } from './oauth';

export type Bitrix24Config = AppConfig['bitrix24'];
export type Params = Record<string, unknown>;

export interface Bitrix24ClientOptions {
  /** Where the OAuth token holder keeps the rotated refresh token. */
  dataDir: string;
  http?: AxiosInstance;
  /** Paces requests and ages access tokens; injectable so tests run the schedule exactly. */
  clock?: Clock;
}

export interface Bitrix24Client {
  /**
   * Calls one REST method and returns its `result`, read through `result`. `progress` rides along
   * in the heartbeat, so a retried activity knows what was already done.
   */
  call<S extends z.ZodType>(
    method: string,
    params: Params,
    result: S,
    progress?: Params,
  ): Promise<z.output<S>>;
  /**
   * One POST of `method` as Bitrix24 answers it, errors included and not paced here: `pace` runs
   * before each send. OAuth: `auth` is added, and an expired token is refreshed and the request
   * sent once more; expired again, a retryable failure is thrown.
   */
  post(method: string, params: Params, pace: () => Promise<void>): Promise<HttpAnswer>;
}

/** Bitrix24's error answer, whatever the HTTP status. */
export const ErrorBody = z.object({ error: z.string(), error_description: z.string().optional() });
export type ErrorBody = z.output<typeof ErrorBody>;
const Envelope = z.object({ result: z.unknown() });
/** Rows of a `*.list` method. */
export const Rows = z.array(z.record(z.string(), z.unknown()));
/** The id an `*.add` method answers, as a number or a string of digits. */
export const NewId = z.union([z.number().int(), z.string().regex(/^\d+$/)]).transform(Number);

const log = logger.child({ component: 'bitrix24' });
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
const UNAVAILABLE_ERRORS = new Set(['QUERY_LIMIT_EXCEEDED', 'OPERATION_TIME_LIMIT', 'INTERNAL_SERVER_ERROR']);

function bitrix24Http(http?: AxiosInstance): ProviderHttp {
  return createProviderHttp({
    provider: 'Bitrix24',
    unavailableType: 'Bitrix24Unavailable',
    timeoutMs: HTTP_TIMEOUT_MS.bitrix24,
    http,
  });
}

export function createBitrix24Client(cfg: Bitrix24Config, opts: Bitrix24ClientOptions): Bitrix24Client {
  const request = bitrix24Http(opts.http);
  const clock = opts.clock ?? systemClock;
  const auth = cfg.auth;
  const base = auth.kind === 'webhook' ? auth.webhookUrl : `${auth.portalUrl}rest/`;
  const limiter = sharedLimiter(base, cfg.requestsPerSecond, clock);
  const oauth = auth.kind === 'oauth' ? sharedOAuthSession(auth, opts.dataDir, request, clock) : undefined;

  async function postOnce(method: string, body: Params, pace: () => Promise<void>): Promise<HttpAnswer> {
    await pace();
    const started = Date.now();
    const res = await request({ method: 'POST', url: `${base}${method}.json`, what: method, body });
    log.debug({ method, status: res.status, ms: Date.now() - started }, 'bitrix24 call');
    return res;
  }
  const expired = (res: HttpAnswer) => readAs(ErrorBody, res.data)?.error === 'expired_token';
  // A token that expires again right after a refresh points at clock skew or a portal hiccup,
  // not at wrong credentials, so a later attempt may well succeed.
  const expiredAgain = (method: string) =>
    unavailable(`Bitrix24 ${method}: access token rejected as expired after refresh`);

  async function post(method: string, params: Params, pace: () => Promise<void>): Promise<HttpAnswer> {
    if (!oauth) {
      const res = await postOnce(method, params, pace);
      if (expired(res)) throw expiredAgain(method);
      return res;
    }
    const token = await oauth.accessToken();
    const res = await postOnce(method, { ...params, auth: token }, pace);
    if (!expired(res)) return res;
    const fresh = await oauth.renew(token);
    const again = await postOnce(method, { ...params, auth: fresh }, pace);
    if (expired(again)) throw expiredAgain(method);
    return again;
  }

  return {
    post,
    async call(method, params, result, progress) {
      const res = await post(method, params, async () => {
        await limiter();
        activityContext()?.heartbeat({ bitrix24: method, ...progress });
      });
      const error = readAs(ErrorBody, res.data);
      if (error) throw bitrix24Failure(method, error, res.status);
      const envelope = readAs(Envelope, res.data);
      const answer = envelope && result.safeParse(envelope.result);
      if (res.status >= 200 && res.status < 300 && answer?.success) return answer.data;
      const msg = `Bitrix24 ${method}: unexpected answer [HTTP ${res.status}]`;
      if (res.status >= 500 || res.status === 429) throw unavailable(msg);
      throw ApplicationFailure.nonRetryable(msg, 'Bitrix24RequestError');
    },
  };
}

/**
 * What an error answer means for the work that asked: the one rule for a whole answer (with its
 * HTTP status) and for one command of a batch (`result_error`, no status of its own).
 */
export function bitrix24Failure(method: string, body: ErrorBody, status?: number): ApplicationFailure {
  const desc = body.error_description ? ` (${body.error_description})` : '';
  const msg = `Bitrix24 ${method}: ${body.error || 'error'}${desc}${status === undefined ? '' : ` [HTTP ${status}]`}`;
  if (AUTH_ERRORS.has(body.error)) return ApplicationFailure.nonRetryable(msg, 'Bitrix24AuthError');
  // A block only Bitrix24's support lifts: retrying it for hours only adds load; a person must act.
  if (body.error === 'OVERLOAD_LIMIT') return ApplicationFailure.nonRetryable(msg, 'Bitrix24Overloaded');
  if (body.error === 'expired_token') return unavailable(msg);
  const s = status ?? 0;
  if (UNAVAILABLE_ERRORS.has(body.error) || s >= 500 || s === 429) return unavailable(msg);
  return ApplicationFailure.nonRetryable(msg, 'Bitrix24RequestError');
}

/**
 * An answer (or one batch command's error, with its `time`) saying "not now": QUERY_LIMIT_EXCEEDED (the leaky bucket is full: wait a drain
 * step and send the same again) or OPERATION_TIME_LIMIT (not before `resetAt`, epoch ms).
 */
export type LimitAnswer = { kind: 'query_limit' } | { kind: 'operating_time'; resetAt?: number };
const OperatingReset = z.object({ time: z.object({ operating_reset_at: z.coerce.number() }) });
export function limitAnswerOf(data: unknown): LimitAnswer | undefined {
  const error = readAs(ErrorBody, data)?.error;
  if (error === 'QUERY_LIMIT_EXCEEDED') return { kind: 'query_limit' };
  if (error !== 'OPERATION_TIME_LIMIT') return undefined;
  const reset = readAs(OperatingReset, data)?.time.operating_reset_at;
  return { kind: 'operating_time', resetAt: reset === undefined ? undefined : reset * 1000 };
}

export function unavailable(msg: string): ApplicationFailure {
  return ApplicationFailure.retryable(msg, 'Bitrix24Unavailable');
}

// Bitrix24 counts requests per portal, so the budget is shared by every client in the process that
// talks to the same portal, not per client (per clock too: a test's virtual clock gets a bucket of
// its own).
const limiters = new WeakMap<Clock, Map<string, () => Promise<void>>>();
function sharedLimiter(base: string, perSecond: number, clock: Clock): () => Promise<void> {
  const key = `${new URL(base).origin}#${perSecond}`;
  let byPortal = limiters.get(clock);
  if (!byPortal) limiters.set(clock, (byPortal = new Map()));
  let limiter = byPortal.get(key);
  if (!limiter) byPortal.set(key, (limiter = createRateLimiter(perSecond, clock)));
  return limiter;
}
