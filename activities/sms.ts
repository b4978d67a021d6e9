// SMS to the customer, behind a small gateway interface (SMS.ru today; another gateway only has to
// implement SmsGateway and say, when it fails, whether the message certainly did not go out).
//
// An SMS cannot be recalled, so sendSms is at-most-once: before the request it records
// `{phase:'sending', key}` as its heartbeat; a retry that finds that marker for the same key does not
// send again and reports `possible_duplicate` (the workflow then alerts a person). Failures that
// prove nothing was sent replace the marker with `failed_before_send`, so their retry does send.
import type { AxiosInstance } from 'axios';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../config';
import { logger, maskPhone } from '../support/logger';
import {
  activityContext,
  createProviderHttp,
  HTTP_TIMEOUT_MS,
  provedNotSent,
  readAs,
  type HttpAnswer,
} from './http';

export interface SmsInput {
  idempotencyKey: string;
  phone: string;
  text: string;
}

export type SmsResult =
  { status: 'sent'; smsId: string } | { status: 'skipped'; reason: 'possible_duplicate' };

export interface SmsGateway {
  send(phone: string, text: string): Promise<{ smsId: string }>;
}

export type SmsGatewayErrorKind = 'auth' | 'rejected' | 'unavailable';

/**
 * Account-level failures: every SMS fails until a person acts (pays, fixes the key, gets the
 * sender name approved, waits for the day's limit), so they are alerted, not retried.
 */
export type SmsAccountErrorKind = 'auth' | 'no_money' | 'sender_not_approved' | 'daily_limit';

/** The ApplicationFailure type of an account error; its details hold `{ kind, code }`. */
export const SMS_ACCOUNT_ERROR = 'SmsAccountError';

export interface SmsAccountErrorDetails {
  kind: SmsAccountErrorKind;
  code?: number;
}

/** What a gateway throws. `notSent` is true only when the gateway's answer proves nothing went out. */
export class SmsGatewayError extends Error {
  constructor(
    message: string,
    readonly kind: SmsGatewayErrorKind,
    readonly notSent: boolean,
    readonly account?: SmsAccountErrorDetails,
  ) {
    super(message);
    this.name = 'SmsGatewayError';
  }
}

/** The account error an activity failure reports, if it is one. */
export function smsAccountErrorOf(err: unknown): SmsAccountErrorDetails | undefined {
  if (!(err instanceof ApplicationFailure) || err.type !== SMS_ACCOUNT_ERROR) return undefined;
  return readAs(AccountDetails, err.details?.[0]);
}
const AccountDetails = z.object({
  kind: z.enum(['auth', 'no_money', 'sender_not_approved', 'daily_limit']),
  code: z.number().optional(),
});

export type SmsHeartbeat = { phase: 'sending'; key: string } | { phase: 'failed_before_send'; key: string };

/** The slice of Temporal's activity context sendSms uses; injectable for tests. */
export interface SmsActivityRuntime {
  attempt: number;
  heartbeatDetails: unknown;
  heartbeat(details: SmsHeartbeat): void;
}

export interface SmsActivityOptions {
  /** Defaults to Temporal's activity context; undefined outside an activity. */
  runtime?: () => SmsActivityRuntime | undefined;
}

/**
 * Whether this attempt may send. A previous attempt that got as far as `sending` for this key may
 * have delivered the SMS, so a retry then must not send.
 */
export function decideSmsSend(key: string, attempt: number, heartbeatDetails: unknown): 'send' | 'skip' {
  if (attempt <= 1) return 'send';
  return readAs(SendingMarker, heartbeatDetails)?.key === key ? 'skip' : 'send';
}
const SendingMarker = z.object({ phase: z.literal('sending'), key: z.string() });

export function createSmsActivities(
  gateway: SmsGateway,
  opts: SmsActivityOptions = {},
): { sendSms(input: SmsInput): Promise<SmsResult> } {
  const runtime = opts.runtime ?? temporalRuntime;
  return {
    async sendSms(input: SmsInput): Promise<SmsResult> {
      const key = input.idempotencyKey;
      const rt = runtime();
      const log = logger.child({ activity: 'sendSms', key, phone: maskPhone(input.phone) });
      if (decideSmsSend(key, rt?.attempt ?? 1, rt?.heartbeatDetails) === 'skip') {
        log.warn({ attempt: rt?.attempt }, 'an earlier try may have sent this SMS; not sending again');
        return { status: 'skipped', reason: 'possible_duplicate' };
      }
      rt?.heartbeat({ phase: 'sending', key });
      try {
        const { smsId } = await gateway.send(input.phone, input.text);
        log.info({ smsId }, 'sms sent');
        return { status: 'sent', smsId };
      } catch (err) {
        if (err instanceof SmsGatewayError) {
          if (err.notSent) rt?.heartbeat({ phase: 'failed_before_send', key });
          log.warn({ kind: err.kind, notSent: err.notSent, err: err.message }, 'sms not sent');
          throw toFailure(err);
        }
        // Cancelled mid-request, or an unknown failure: the SMS may have gone out, so the
        // `sending` marker stays.
        if (err instanceof CancelledFailure) throw err;
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ err: message }, 'sms gateway failed; delivery unknown');
        throw ApplicationFailure.retryable(`SMS gateway failed: ${message}`, 'SmsUnavailable');
      }
    },
  };
}

function toFailure(err: SmsGatewayError): ApplicationFailure {
  if (err.account) {
    return ApplicationFailure.create({
      message: err.message,
      type: SMS_ACCOUNT_ERROR,
      nonRetryable: true,
      details: [err.account],
    });
  }
  switch (err.kind) {
    case 'auth':
      return ApplicationFailure.nonRetryable(err.message, 'SmsAuthError');
    case 'rejected':
      return ApplicationFailure.nonRetryable(err.message, 'SmsRejected');
    case 'unavailable':
      return ApplicationFailure.retryable(err.message, 'SmsUnavailable');
  }
}

function temporalRuntime(): SmsActivityRuntime | undefined {
  const ctx = activityContext();
  if (!ctx) return undefined; // not inside an activity: nothing to record, no earlier try
  return {
    attempt: ctx.info.attempt,
    heartbeatDetails: ctx.info.heartbeatDetails as unknown,
    heartbeat: (details) => ctx.heartbeat(details),
  };
}

// ---------------------------------------------------------------------------------------------
// SMS.ru (https://sms.ru/api/send)

const SmsRuPerNumber = z.object({
  status: z.string(),
  status_code: z.union([z.number(), z.string()]),
  status_text: z.string().optional(),
  sms_id: z.string().optional(),
});
const SmsRuAnswer = z.object({
  status: z.string(),
  status_code: z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number),
  status_text: z.string().optional(),
  sms: z.record(z.string(), SmsRuPerNumber).optional(),
  balance: z.number().optional(),
});

// Account codes, at the top of the answer or (201, 204, 206) for each number. 200/300/301/302:
// the api_id (or account) is wrong.
const SMSRU_ACCOUNT_CODES = new Map<number, SmsAccountErrorKind>([
  [200, 'auth'],
  [300, 'auth'],
  [301, 'auth'],
  [302, 'auth'],
  [201, 'no_money'],
  [204, 'sender_not_approved'],
  [206, 'daily_limit'],
]);
const accountError = (message: string, code: number): SmsGatewayError | undefined => {
  const kind = SMSRU_ACCOUNT_CODES.get(code);
  return kind && new SmsGatewayError(message, kind === 'auth' ? 'auth' : 'rejected', true, { kind, code });
};
// 220 "service temporarily unavailable" and 500 "server error": the answer itself says try later.
const SMSRU_TEMPORARY_CODES = new Set([220, 500]);

export function createSmsRuGateway(cfg: AppConfig['sms'], opts: { http?: AxiosInstance } = {}): SmsGateway {
  const request = createProviderHttp({
    provider: 'SMS.ru',
    unavailableType: 'SmsUnavailable',
    timeoutMs: HTTP_TIMEOUT_MS.smsru,
    http: opts.http,
  });
  return {
    async send(phone: string, text: string): Promise<{ smsId: string }> {
      const body = new URLSearchParams({ api_id: cfg.apiId, to: phone, msg: text, json: '1' });
      if (cfg.sender) body.set('from', cfg.sender);
      let res: HttpAnswer;
      try {
        res = await request({
          method: 'POST',
          url: `${cfg.apiUrl}/sms/send`,
          what: 'sms/send',
          body: body.toString(),
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        });
      } catch (err) {
        if (!(err instanceof ApplicationFailure)) throw err; // cancelled: delivery unknown, marker stays
        // A timeout or a reset connection may come after SMS.ru accepted the message.
        throw new SmsGatewayError(err.message, 'unavailable', provedNotSent(err));
      }
      if (res.status === 429) throw new SmsGatewayError('SMS.ru: HTTP 429', 'unavailable', true);
      if (res.status >= 500) {
        // 502/503 come from SMS.ru's front server when the application behind it is not answering;
        // a 500 or 504 may come after the message was queued.
        throw new SmsGatewayError(
          `SMS.ru: HTTP ${res.status}`,
          'unavailable',
          res.status === 502 || res.status === 503,
        );
      }
      if (res.status >= 400) throw new SmsGatewayError(`SMS.ru: HTTP ${res.status}`, 'rejected', true);
      const data = readAs(SmsRuAnswer, res.data);
      if (!data) {
        throw new SmsGatewayError(`SMS.ru: unreadable answer (HTTP ${res.status})`, 'unavailable', false);
      }
      if (data.status !== 'OK') {
        const message = `SMS.ru: ${data.status_text ?? 'error'} (code ${data.status_code})`;
        const account = accountError(message, data.status_code);
        if (account) throw account;
        if (SMSRU_TEMPORARY_CODES.has(data.status_code))
          throw new SmsGatewayError(message, 'unavailable', true);
        throw new SmsGatewayError(message, 'rejected', true);
      }
      const entries = Object.values(data.sms ?? {});
      const entry = data.sms?.[phone] ?? (entries.length === 1 ? entries[0] : undefined);
      if (!entry)
        throw new SmsGatewayError('SMS.ru: answer has no status for the number', 'unavailable', false);
      if (entry.status !== 'OK' || !entry.sms_id) {
        // Per-number codes: 202 bad number, 207 no route, 209 stop list, 230-233 per-number limits
        // (231/232 also mean the same text already went to this number).
        const message = `SMS.ru rejected the number: ${entry.status_text ?? 'error'} (code ${entry.status_code})`;
        throw (
          accountError(message, Number(entry.status_code)) ?? new SmsGatewayError(message, 'rejected', true)
        );
      }
      return { smsId: entry.sms_id };
    },
  };
}
