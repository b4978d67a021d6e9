// VoxImplant Management API adapter: starts the robot-call scenario for one call attempt.
// A call rings a customer and costs money, so a retried activity must never start a second
// session for the same attempt: every session carries a unique callKey, and a retry first asks the
// call history whether that key already has a session.
import crypto from 'node:crypto';
import fs from 'node:fs';
import axios, { isAxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { signResultToken } from '../domain/resultToken';
import { logger, maskPhone } from '../support/logger';

export interface PlaceCallInput {
  workflowId: string;
  /**
   * The workflow run. Part of the callKey when given (or known from the activity context), so a
   * later lead that reuses the workflow id is never mistaken for a retry of an earlier one.
   */
  runId?: string;
  ref: string;
  attempt: number;
  name: string;
  /** digits, e.g. 79161234567 */
  phone: string;
  resultUrl: string;
  /** where the scenario claims the attempt before it dials */
  claimUrl: string;
  tokenTtlSeconds: number;
}

export interface PlaceCallResult {
  callSessionHistoryId: number;
  deduplicated: boolean;
}

/**
 * `script_custom_data` of StartScenarios, as the scenario reads it. `callKey` names the call
 * attempt; a retry finds an earlier session by it in the call history.
 */
export interface ScenarioCustomData {
  phone: string;
  ref: string;
  name: string;
  token: string;
  resultUrl: string;
  claimUrl: string;
  attempt: number;
  callKey: string;
  recordingUrl?: string;
  ttsText?: string;
  callerId?: string;
}

/** The part of Temporal's activity info placeRobotCall needs. */
export interface CallActivityInfo {
  /** 1 on the first try of the activity, more on its retries */
  attempt: number;
  /** when the activity's first try was scheduled, epoch ms */
  scheduledTimestampMs: number;
  runId?: string;
}

export interface VoximplantActivityOptions {
  http?: AxiosInstance;
  /** Defaults to Temporal's activity context (first try, now, outside an activity). */
  activityInfo?: () => CallActivityInfo;
  /** Epoch milliseconds; injectable so token expiry and history windows are testable. */
  now?: () => number;
}

/** The service-account JSON VoxImplant's control panel issues. */
interface ServiceAccountCredentials {
  account_id: number | string;
  key_id: string;
  private_key: string;
}

interface VoxApiError {
  error: { code: number; msg: string };
}

interface StartScenariosAnswer {
  result: number;
  call_session_history_id: number;
}

interface CallHistoryAnswer {
  result: Array<{ call_session_history_id: number; custom_data?: string }>;
}

// VoxImplant error codes (https://voximplant.com/docs/references/httpapi/errors).
// Problems with the account or its credentials: retrying cannot help, a person has to act.
const ACCOUNT_ERROR_CODES = new Set([
  100, // Authorization failed
  104, // Forbidden command (the key's role may not do this)
  115, // The 'account_id' parameter is invalid
  127, // Insufficient money: no call can be placed until someone pays
  131, // The account is not activated
  137, // The account is not logged
  433, // Invalid key id
]);
// 340 "Rate limit exceed"; StartScenarios documents its concurrency limit as error 429.
const RATE_LIMIT_CODES = new Set([340, 429]);
/** Codes below 100 are the platform's own failures (internal, DB, media server, billing). */
const FIRST_CLIENT_ERROR_CODE = 100;

/** JWTs are valid for 64 s; reuse one for a while rather than signing per request. */
const JWT_LIFETIME_S = 64;
const JWT_REUSE_S = 30;
const HISTORY_WINDOW_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 10 * 60 * 1000;

export function callKeyOf(workflowId: string, attempt: number, runId?: string): string {
  return runId ? `${workflowId}#${attempt}#${runId}` : `${workflowId}#${attempt}`;
}

export function createVoximplantActivities(
  cfg: AppConfig['voximplant'],
  opts: VoximplantActivityOptions = {},
): { placeRobotCall(input: PlaceCallInput): Promise<PlaceCallResult> } {
  const http = opts.http ?? axios.create({ timeout: 15_000 });
  const now = opts.now ?? Date.now;
  const activityInfo = opts.activityInfo ?? (() => currentActivityInfo(now));
  const authorize = createAuthorizer(cfg, now);

  async function call<T extends object>(method: string, params: Record<string, string>): Promise<T> {
    const auth = authorize();
    const body = new URLSearchParams({ ...auth.params, ...params });
    let res: AxiosResponse<unknown>;
    try {
      res = await http.post(`${cfg.apiUrl}/${method}`, body.toString(), {
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth.headers },
        validateStatus: () => true,
      });
    } catch (err) {
      throw unavailable(`VoxImplant ${method}: ${networkErrorText(err)}`);
    }
    const data = res.data;
    if (res.status === 429) {
      throw unavailable(`VoxImplant ${method}: rate limited (HTTP 429)`, retryAfterMs(res));
    }
    if (isApiError(data)) throw mapApiError(method, data.error);
    if (res.status >= 500) throw unavailable(`VoxImplant ${method}: HTTP ${res.status}`);
    if (res.status >= 400) {
      const auth = res.status === 401 || res.status === 403;
      throw nonRetryable(`VoxImplant ${method}: HTTP ${res.status}`, auth ? 'auth' : 'request');
    }
    // An answer we cannot read may still mean the call started; the retry's history check covers it.
    if (typeof data !== 'object' || data === null) {
      throw unavailable(`VoxImplant ${method}: unreadable answer (HTTP ${res.status})`);
    }
    return data as T;
  }

  async function history(params: Record<string, string>): Promise<CallHistoryAnswer['result']> {
    const answer = await call<CallHistoryAnswer>('GetCallHistory', {
      timezone: 'Etc/GMT',
      desc_order: 'true',
      ...params,
    });
    if (!Array.isArray(answer.result)) throw unavailable('VoxImplant GetCallHistory: no result list');
    return answer.result;
  }

  async function findSession(callKey: string, firstScheduledMs: number): Promise<number | undefined> {
    const t = now();
    // A little ahead so clock skew between us and VoxImplant cannot hide a fresh session.
    const toDate = apiDate(t + CLOCK_SKEW_MS);
    const exact = await history({
      from_date: apiDate(t - HISTORY_WINDOW_MS),
      to_date: toDate,
      call_session_history_custom_data: callKey,
      count: '1',
    });
    if (exact[0]) return exact[0].call_session_history_id;
    // The filter matches a session's custom data exactly, and a scenario that does not replace it
    // with the callKey leaves the whole JSON there; so also look through the sessions started
    // since this activity was first scheduled.
    const recent = await history({
      from_date: apiDate(firstScheduledMs - CLOCK_SKEW_MS),
      to_date: toDate,
      count: '1000',
      with_total_count: 'false',
    });
    return recent.find((session) => sessionCallKey(session.custom_data) === callKey)?.call_session_history_id;
  }

  return {
    async placeRobotCall(input: PlaceCallInput): Promise<PlaceCallResult> {
      if (!/^\d{10,15}$/.test(input.phone)) {
        throw nonRetryable(`phone must be 10-15 digits, got ${input.phone.length} characters`, 'request');
      }
      const info = activityInfo();
      const callKey = callKeyOf(input.workflowId, input.attempt, input.runId ?? info.runId);
      const log = logger.child({
        activity: 'placeRobotCall',
        ref: input.ref,
        workflowId: input.workflowId,
        callAttempt: input.attempt,
        phone: maskPhone(input.phone),
      });

      // Only a retry can have a predecessor that reached VoxImplant; if the history cannot be read
      // we fail (and retry later) rather than risk ringing the customer twice.
      if (info.attempt > 1) {
        const existing = await findSession(callKey, info.scheduledTimestampMs);
        if (existing !== undefined) {
          log.warn({ callSessionHistoryId: existing }, 'an earlier try started this call; not calling again');
          return { callSessionHistoryId: existing, deduplicated: true };
        }
      }

      const token = signResultToken(
        {
          wf: input.workflowId,
          run: input.runId ?? info.runId,
          a: input.attempt,
          exp: Math.floor(now() / 1000) + input.tokenTtlSeconds,
        },
        cfg.resultSecret,
      );
      const customData: ScenarioCustomData = {
        phone: input.phone,
        ref: input.ref,
        name: input.name,
        token,
        resultUrl: input.resultUrl,
        claimUrl: input.claimUrl,
        attempt: input.attempt,
        callKey,
        ...(cfg.recordingUrl ? { recordingUrl: cfg.recordingUrl } : {}),
        ...(cfg.ttsText ? { ttsText: cfg.ttsText.replaceAll('{name}', input.name) } : {}),
        ...(cfg.callerId ? { callerId: cfg.callerId } : {}),
      };
      const answer = await call<StartScenariosAnswer>('StartScenarios', {
        rule_id: cfg.ruleId,
        script_custom_data: JSON.stringify(customData),
      });
      if (answer.result !== 1 || typeof answer.call_session_history_id !== 'number') {
        throw unavailable('VoxImplant StartScenarios: answer without call_session_history_id');
      }
      log.info({ callSessionHistoryId: answer.call_session_history_id }, 'robot call started');
      return { callSessionHistoryId: answer.call_session_history_id, deduplicated: false };
    },
  };
}

interface Authorization {
  params: Record<string, string>;
  headers: Record<string, string>;
}

function createAuthorizer(cfg: AppConfig['voximplant'], now: () => number): () => Authorization {
  if (cfg.credentialsFile) {
    const file = cfg.credentialsFile;
    let credentials: ServiceAccountCredentials | undefined;
    let cached: { token: string; iat: number } | undefined;
    return () => {
      credentials ??= readCredentials(file);
      const t = Math.floor(now() / 1000);
      if (!cached || t - cached.iat > JWT_REUSE_S || t < cached.iat) {
        cached = { token: signServiceJwt(credentials, t), iat: t };
      }
      return { params: {}, headers: { Authorization: `Bearer ${cached.token}` } };
    };
  }
  return () => {
    if (!cfg.accountId || !cfg.apiKey)
      throw nonRetryable('VoxImplant credentials are not configured', 'auth');
    return { params: { account_id: cfg.accountId, api_key: cfg.apiKey }, headers: {} };
  };
}

function readCredentials(file: string): ServiceAccountCredentials {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw nonRetryable(`VoxImplant credentials file unreadable: ${(err as Error).message}`, 'auth');
  }
  const c = parsed as Partial<ServiceAccountCredentials> | null;
  if (
    !c ||
    (typeof c.account_id !== 'number' && typeof c.account_id !== 'string') ||
    typeof c.key_id !== 'string' ||
    typeof c.private_key !== 'string'
  ) {
    throw nonRetryable('VoxImplant credentials file lacks account_id, key_id or private_key', 'auth');
  }
  return { account_id: c.account_id, key_id: c.key_id, private_key: c.private_key };
}

/** RS256 JWT as VoxImplant's own API clients build it: iss = account, kid = key id, 64 s life. */
export function signServiceJwt(credentials: ServiceAccountCredentials, iatSeconds: number): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = enc({ alg: 'RS256', typ: 'JWT', kid: credentials.key_id });
  const payload = enc({ iat: iatSeconds, iss: credentials.account_id, exp: iatSeconds + JWT_LIFETIME_S });
  let signature: string;
  try {
    signature = crypto
      .sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), credentials.private_key)
      .toString('base64url');
  } catch (err) {
    throw nonRetryable(`VoxImplant private key unusable: ${(err as Error).message}`, 'auth');
  }
  return `${header}.${payload}.${signature}`;
}

function isApiError(data: unknown): data is VoxApiError {
  if (typeof data !== 'object' || data === null || !('error' in data)) return false;
  const e = (data as { error: unknown }).error;
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'number';
}

function mapApiError(method: string, error: VoxApiError['error']): ApplicationFailure {
  const message = `VoxImplant ${method}: ${error.msg} (code ${error.code})`;
  if (ACCOUNT_ERROR_CODES.has(error.code)) return nonRetryable(message, 'auth');
  if (RATE_LIMIT_CODES.has(error.code) || error.code < FIRST_CLIENT_ERROR_CODE) return unavailable(message);
  return nonRetryable(message, 'request');
}

function nonRetryable(message: string, kind: 'auth' | 'request'): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    message,
    kind === 'auth' ? 'VoximplantAuthError' : 'VoximplantRequestError',
  );
}

function unavailable(message: string, nextRetryDelayMs?: number): ApplicationFailure {
  return ApplicationFailure.create({
    message,
    type: 'VoximplantUnavailable',
    nonRetryable: false,
    ...(nextRetryDelayMs !== undefined ? { nextRetryDelay: nextRetryDelayMs } : {}),
  });
}

function retryAfterMs(res: AxiosResponse<unknown>): number | undefined {
  const value = Number(res.headers['retry-after']);
  return Number.isFinite(value) && value > 0 ? value * 1000 : undefined;
}

// Never include the request URL or body: both can carry the API key.
function networkErrorText(err: unknown): string {
  if (isAxiosError(err)) return err.code ? `${err.code} ${err.message}` : err.message;
  return err instanceof Error ? err.message : String(err);
}

/** The format VoxImplant's history methods expect: `YYYY-MM-DD HH:mm:ss` in the given timezone (UTC here). */
function apiDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function currentActivityInfo(now: () => number): CallActivityInfo {
  try {
    const { attempt, scheduledTimestampMs, workflowExecution } = Context.current().info;
    return { attempt, scheduledTimestampMs, runId: workflowExecution?.runId };
  } catch {
    return { attempt: 1, scheduledTimestampMs: now() }; // not in an activity: no earlier try
  }
}

/** The callKey a session carries: its whole custom data, or the field of the JSON it holds. */
function sessionCallKey(customData: string | undefined): string | undefined {
  if (!customData?.startsWith('{')) return customData;
  try {
    const parsed = JSON.parse(customData) as { callKey?: unknown };
    return typeof parsed.callKey === 'string' ? parsed.callKey : undefined;
  } catch {
    return undefined;
  }
}
