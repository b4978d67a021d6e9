// VoxImplant Management API adapter: starts the robot-call scenario for one call attempt.
// A call rings a customer and costs money, so a retried activity must never start a second
// session for the same attempt: every session carries a unique callKey, and a retry first asks the
// call history whether that key already has a session.
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { AxiosInstance } from 'axios';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../config';
import { fillTemplate, plausibleName } from '../domain/customerText';
import { lengthProblem } from '../domain/phone';
import { signResultToken } from '../domain/resultToken';
import { logger, maskPhone } from '../support/logger';
import { activityContext, createProviderHttp, HTTP_TIMEOUT_MS, readAs, type HttpAnswer } from './http';

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
  /**
   * The end of the customer's working window (epoch ms): given, the attempt's claim is decided by
   * Temporal alone (support/callClaims), refused after this; absent (a lead started before), by the
   * lead's workflow.
   */
  dialUntil?: number;
  /**
   * The attempt's report goes to the lead as a signal, which Temporal takes without waiting for the
   * lead's workflow task; absent (a lead whose code predates the signal), as an update.
   */
  reportBySignal?: boolean;
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
  /** the customer's name when it is a plausible one (domain/customerText), else '' */
  name: string;
  token: string;
  resultUrl: string;
  claimUrl: string;
  /** epoch ms: until when the scenario asks again for a claim the service has not answered */
  claimUntil: number;
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
const ServiceAccountCredentials = z.object({
  account_id: z.union([z.number(), z.string()]),
  key_id: z.string(),
  private_key: z.string(),
});
type ServiceAccountCredentials = z.output<typeof ServiceAccountCredentials>;

const VoxApiError = z.object({ error: z.object({ code: z.number(), msg: z.string() }) });
const StartScenariosAnswer = z.object({ result: z.literal(1), call_session_history_id: z.number() });
const CallHistoryAnswer = z.object({
  result: z.array(
    z.object({
      call_session_history_id: z.number(),
      // Set once the session has ended; a session in progress has neither.
      finish_reason: z.string().nullish(),
      custom_data: z
        .string()
        .nullish()
        .transform((v) => v ?? undefined),
    }),
  ),
});
/** The part of the scenario's custom data a session keeps when the scenario does not replace it. */
const SessionCustomData = z.object({ callKey: z.string() });

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
const JWT_CLOCK_SKEW_S = 30;
const HISTORY_WINDOW_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 10 * 60 * 1000;

/**
 * Names a call attempt in the session's custom data, which holds at most 200 bytes: a hash, since
 * a long Cyrillic ref alone would not fit.
 */
export function callKeyOf(workflowId: string, attempt: number, runId?: string): string {
  const attemptName = runId ? `${workflowId}#${attempt}#${runId}` : `${workflowId}#${attempt}`;
  return `stl1-${crypto.createHash('sha256').update(attemptName).digest('base64url')}`;
}

export function createVoximplantActivities(
  cfg: AppConfig['voximplant'],
  opts: VoximplantActivityOptions = {},
): { placeRobotCall(input: PlaceCallInput): Promise<PlaceCallResult> } {
  const request = createProviderHttp({
    provider: 'VoxImplant',
    unavailableType: 'VoximplantUnavailable',
    timeoutMs: HTTP_TIMEOUT_MS.voximplant,
    http: opts.http,
  });
  const now = opts.now ?? Date.now;
  const activityInfo = opts.activityInfo ?? (() => currentActivityInfo(now));
  const authorize = createAuthorizer(cfg, now);

  async function call<S extends z.ZodType>(
    method: string,
    params: Record<string, string>,
    answer: S,
  ): Promise<z.output<S>> {
    const auth = authorize();
    const body = new URLSearchParams({ ...auth.params, ...params });
    // The body carries the API key: failures name the method only (createProviderHttp's rule).
    const res = await request({
      method: 'POST',
      url: `${cfg.apiUrl}/${method}`,
      what: method,
      body: body.toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...auth.headers },
    });
    if (res.status === 429) {
      throw unavailable(`VoxImplant ${method}: rate limited (HTTP 429)`, retryAfterMs(res));
    }
    const apiError = readAs(VoxApiError, res.data);
    if (apiError) throw mapApiError(method, apiError.error);
    if (res.status >= 500) throw unavailable(`VoxImplant ${method}: HTTP ${res.status}`);
    if (res.status >= 400) {
      const auth = res.status === 401 || res.status === 403;
      throw nonRetryable(`VoxImplant ${method}: HTTP ${res.status}`, auth ? 'auth' : 'request');
    }
    // An answer we cannot read may still mean the call started; the retry's history check covers it.
    const parsed = readAs(answer, res.data);
    if (parsed === undefined)
      throw unavailable(`VoxImplant ${method}: unreadable answer (HTTP ${res.status})`);
    return parsed;
  }

  async function history(params: Record<string, string>) {
    const answer = await call(
      'GetCallHistory',
      { timezone: 'Etc/GMT', desc_order: 'true', ...params },
      CallHistoryAnswer,
    );
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
    const inProgress = (session: { finish_reason?: string | null }) => !session.finish_reason;
    if (exact[0] && inProgress(exact[0])) return exact[0].call_session_history_id;
    // The filter matches a session's custom data exactly, and a scenario that does not replace it
    // with the callKey leaves the whole JSON there; so also look through the sessions started
    // since this activity was first scheduled.
    const recent = await history({
      from_date: apiDate(firstScheduledMs - CLOCK_SKEW_MS),
      to_date: toDate,
      count: '1000',
      with_total_count: 'false',
    });
    return recent.find((session) => inProgress(session) && sessionCallKey(session.custom_data) === callKey)
      ?.call_session_history_id;
  }

  return {
    async placeRobotCall(input: PlaceCallInput): Promise<PlaceCallResult> {
      const problem = lengthProblem(input.phone);
      if (problem) {
        throw nonRetryable(`phone not dialable (${problem}): ${input.phone.length} characters`, 'request');
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

      // Only a retry can have a predecessor that reached VoxImplant. The scenario's claim is what
      // keeps a second session from dialling (the service grants one per attempt); the history is
      // the second check: a session of this attempt still in progress means no new one is needed.
      // One that ended may never have dialled (its claim could not reach us), so it does not count.
      // If the history cannot be read we fail and retry later.
      if (info.attempt > 1) {
        const existing = await findSession(callKey, info.scheduledTimestampMs);
        if (existing !== undefined) {
          log.warn({ callSessionHistoryId: existing }, 'an earlier try started this call; not calling again');
          return { callSessionHistoryId: existing, deduplicated: true };
        }
      }

      const claimUntil = now() + cfg.claimPatienceMs;
      const token = signResultToken(
        {
          wf: input.workflowId,
          run: input.runId ?? info.runId,
          a: input.attempt,
          exp: Math.floor(now() / 1000) + input.tokenTtlSeconds,
          ...(input.dialUntil !== undefined ? { du: input.dialUntil, cu: claimUntil } : {}),
          ...(input.reportBySignal ? { rs: 1 as const } : {}),
        },
        cfg.resultSecret,
      );
      // The scenario says the name (its default text) or the TTS text given here: only a plausible
      // name reaches the customer's ear, never a stranger's sentence typed into the name field.
      const name = plausibleName(input.name);
      const customData: ScenarioCustomData = {
        phone: input.phone,
        ref: input.ref,
        name: name ?? '',
        token,
        resultUrl: input.resultUrl,
        claimUrl: input.claimUrl,
        claimUntil,
        attempt: input.attempt,
        callKey,
        ...(cfg.recordingUrl ? { recordingUrl: cfg.recordingUrl } : {}),
        ...(cfg.ttsText ? { ttsText: fillTemplate(cfg.ttsText, name) } : {}),
        ...(cfg.callerId ? { callerId: cfg.callerId } : {}),
      };
      const answer = await call(
        'StartScenarios',
        { rule_id: cfg.ruleId, script_custom_data: JSON.stringify(customData) },
        StartScenariosAnswer,
      );
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
  const credentials = readAs(ServiceAccountCredentials, parsed);
  if (!credentials) {
    throw nonRetryable('VoxImplant credentials file lacks account_id, key_id or private_key', 'auth');
  }
  return credentials;
}

/** RS256 JWT as VoxImplant's own API clients build it: iss = account, kid = key id, 64 s life. */
export function signServiceJwt(credentials: ServiceAccountCredentials, iatSeconds: number): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const header = enc({ alg: 'RS256', typ: 'JWT', kid: credentials.key_id });
  // Issued a little in the past, so a VoxImplant clock behind ours does not see a token from the future.
  const iat = iatSeconds - JWT_CLOCK_SKEW_S;
  const payload = enc({ iat, iss: credentials.account_id, exp: iatSeconds + JWT_LIFETIME_S });
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

function mapApiError(method: string, error: z.output<typeof VoxApiError>['error']): ApplicationFailure {
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

function retryAfterMs(res: HttpAnswer): number | undefined {
  const value = Number(res.header('retry-after'));
  return Number.isFinite(value) && value > 0 ? value * 1000 : undefined;
}

/** The format VoxImplant's history methods expect: `YYYY-MM-DD HH:mm:ss` in the given timezone (UTC here). */
function apiDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}

function currentActivityInfo(now: () => number): CallActivityInfo {
  const info = activityContext()?.info;
  if (!info) return { attempt: 1, scheduledTimestampMs: now() }; // not in an activity: no earlier try
  return {
    attempt: info.attempt,
    scheduledTimestampMs: info.scheduledTimestampMs,
    runId: info.workflowExecution?.runId,
  };
}

/** The callKey a session carries: its whole custom data, or the field of the JSON it holds. */
function sessionCallKey(customData: string | undefined): string | undefined {
  if (!customData?.startsWith('{')) return customData;
  try {
    return readAs(SessionCustomData, JSON.parse(customData))?.callKey;
  } catch {
    return undefined;
  }
}
