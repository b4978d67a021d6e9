// SMS to the customer, behind a small gateway interface (SMS.ru today; another gateway only has to
// implement SmsGateway and say, when it fails, whether the message certainly did not go out).
//
// An SMS cannot be recalled, so sendSms is at-most-once: before the request it records
// `{phase:'sending', key}` as its heartbeat; a retry that finds that marker for the same key does not
// send again and reports `possible_duplicate` (the workflow then alerts a person). Failures that
// prove nothing was sent replace the marker with `failed_before_send`, so their retry does send.
import axios, { isAxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { logger, maskPhone } from '../support/logger';

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

/** What a gateway throws. `notSent` is true only when the gateway's answer proves nothing went out. */
export class SmsGatewayError extends Error {
  constructor(
    message: string,
    readonly kind: SmsGatewayErrorKind,
    readonly notSent: boolean,
  ) {
    super(message);
    this.name = 'SmsGatewayError';
  }
}

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
  if (typeof heartbeatDetails !== 'object' || heartbeatDetails === null) return 'send';
  const marker = heartbeatDetails as Partial<SmsHeartbeat>;
  return marker.phase === 'sending' && marker.key === key ? 'skip' : 'send';
}

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
        // Unknown failure: the SMS may have gone out, so the `sending` marker stays.
        const message = err instanceof Error ? err.message : String(err);
        log.warn({ err: message }, 'sms gateway failed; delivery unknown');
        throw ApplicationFailure.retryable(`SMS gateway failed: ${message}`, 'SmsUnavailable');
      }
    },
  };
}

function toFailure(err: SmsGatewayError): ApplicationFailure {
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
  let ctx: Context;
  try {
    ctx = Context.current();
  } catch {
    return undefined; // not inside an activity: nothing to record, no earlier try
  }
  return {
    attempt: ctx.info.attempt,
    heartbeatDetails: ctx.info.heartbeatDetails as unknown,
    heartbeat: (details) => ctx.heartbeat(details),
  };
}

// ---------------------------------------------------------------------------------------------
// SMS.ru (https://sms.ru/api/send)

interface SmsRuPerNumber {
  status: string;
  status_code: number | string;
  status_text?: string;
  sms_id?: string;
}

interface SmsRuAnswer {
  status: string;
  status_code: number | string;
  status_text?: string;
  sms?: Record<string, SmsRuPerNumber>;
  balance?: number;
}

// Top-level codes. 200/300/301/302: the api_id (or account) is wrong.
const SMSRU_AUTH_CODES = new Set([200, 300, 301, 302]);
// 220 "service temporarily unavailable" and 500 "server error": the answer itself says try later.
const SMSRU_TEMPORARY_CODES = new Set([220, 500]);

// Errors raised before a byte of the request reached the gateway.
const NOT_CONNECTED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

export function createSmsRuGateway(cfg: AppConfig['sms'], opts: { http?: AxiosInstance } = {}): SmsGateway {
  const http = opts.http ?? axios.create({ timeout: 15_000 });
  return {
    async send(phone: string, text: string): Promise<{ smsId: string }> {
      const body = new URLSearchParams({ api_id: cfg.apiId, to: phone, msg: text, json: '1' });
      if (cfg.sender) body.set('from', cfg.sender);
      let res: AxiosResponse<unknown>;
      try {
        res = await http.post(`${cfg.apiUrl}/sms/send`, body.toString(), {
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
          validateStatus: () => true,
        });
      } catch (err) {
        const code = isAxiosError(err) ? err.code : undefined;
        // A timeout or a reset connection may come after SMS.ru accepted the message.
        throw new SmsGatewayError(
          `SMS.ru unreachable: ${code ?? ''} ${(err as Error).message}`.replace(/\s+/g, ' '),
          'unavailable',
          code !== undefined && NOT_CONNECTED_CODES.has(code),
        );
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
      const data = res.data;
      if (!isSmsRuAnswer(data)) {
        throw new SmsGatewayError(`SMS.ru: unreadable answer (HTTP ${res.status})`, 'unavailable', false);
      }
      if (data.status !== 'OK') {
        const code = Number(data.status_code);
        const message = `SMS.ru: ${data.status_text ?? 'error'} (code ${code})`;
        if (SMSRU_AUTH_CODES.has(code)) throw new SmsGatewayError(message, 'auth', true);
        if (SMSRU_TEMPORARY_CODES.has(code)) throw new SmsGatewayError(message, 'unavailable', true);
        throw new SmsGatewayError(message, 'rejected', true);
      }
      const entries = Object.values(data.sms ?? {});
      const entry = data.sms?.[phone] ?? (entries.length === 1 ? entries[0] : undefined);
      if (!entry)
        throw new SmsGatewayError('SMS.ru: answer has no status for the number', 'unavailable', false);
      if (entry.status !== 'OK' || !entry.sms_id) {
        // Per-number codes: 202 bad number, 207 no route, 209 stop list, 230-233 per-number limits
        // (231/232 also mean the same text already went to this number).
        throw new SmsGatewayError(
          `SMS.ru rejected the number: ${entry.status_text ?? 'error'} (code ${entry.status_code})`,
          'rejected',
          true,
        );
      }
      return { smsId: entry.sms_id };
    },
  };
}

function isSmsRuAnswer(data: unknown): data is SmsRuAnswer {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Partial<SmsRuAnswer>;
  return typeof d.status === 'string' && Number.isFinite(Number(d.status_code));
}
