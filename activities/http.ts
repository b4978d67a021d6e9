// How the four adapters talk HTTP. A request has a timeout shorter than its activity's
// start-to-close timeout and is aborted when the activity is cancelled; a transport failure
// becomes a retryable ApplicationFailure whose message names the provider's method and the error
// code, never the URL (a webhook URL, a bot token in a path and an api_id in a query are
// credentials); answers are read through zod schemas. What a status or a body means stays with
// each adapter: that is where the providers differ.
import axios, { isAxiosError, isCancel, type AxiosInstance } from 'axios';
import { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { z } from 'zod';

/**
 * Per-request timeouts. Each is shorter than the start-to-close timeout of every activity making
 * the request (tests/activityTimeouts.test.ts holds them to that), so a hung provider fails the
 * request, not the whole attempt, and the failure says which provider hung.
 */
export const HTTP_TIMEOUT_MS = {
  bitrix24: 10_000,
  voximplant: 5_000,
  smsru: 10_000,
  telegram: 10_000,
} as const;

export interface HttpRequest {
  method: 'GET' | 'POST';
  url: string;
  /** Names the request in failures (a REST method, "sendMessage"); never the URL. */
  what: string;
  params?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface HttpAnswer {
  status: number;
  data: unknown;
  header(name: string): string | undefined;
}

export interface ProviderHttpOptions {
  /** Starts every failure message, e.g. "Bitrix24". */
  provider: string;
  /** The ApplicationFailure type of an outage a retry may outlive, e.g. "Bitrix24Unavailable". */
  unavailableType: string;
  timeoutMs: number;
  /** An instance of one's own (tests: a short timeout); its timeout then applies. */
  http?: AxiosInstance;
}

/** `details[0]` of a transport failure: true only when the request certainly never left. */
export interface TransportFailureDetails {
  notSent: boolean;
}

// Errors raised before a byte of the request reached the provider.
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

export type ProviderHttp = (request: HttpRequest) => Promise<HttpAnswer>;

export function createProviderHttp(opts: ProviderHttpOptions): ProviderHttp {
  const http = opts.http ?? axios.create({ timeout: opts.timeoutMs });
  return async (req) => {
    const signal = activityContext()?.cancellationSignal;
    try {
      const res = await http.request<unknown>({
        method: req.method,
        url: req.url,
        params: req.params,
        data: req.body,
        headers: req.headers,
        validateStatus: () => true,
        signal,
      });
      return {
        status: res.status,
        data: res.data,
        header: (name) => {
          const value: unknown = res.headers[name.toLowerCase()];
          return typeof value === 'string' ? value : undefined;
        },
      };
    } catch (err) {
      if (isCancel(err) || signal?.aborted) {
        throw new CancelledFailure(`${opts.provider} ${req.what} cancelled`);
      }
      const code = isAxiosError(err) ? err.code : undefined;
      const timedOut = code === 'ECONNABORTED' || code === 'ETIMEDOUT';
      const details: TransportFailureDetails = {
        notSent: code !== undefined && NOT_CONNECTED_CODES.has(code),
      };
      throw ApplicationFailure.create({
        message: `${opts.provider} ${req.what}: ${timedOut ? 'no answer in time' : 'network error'} ${code ?? (err instanceof Error ? err.name : 'unknown')}`,
        type: opts.unavailableType,
        nonRetryable: false,
        details: [details],
      });
    }
  };
}

/** The answer as `schema` reads it, or undefined when it has another shape. */
export function readAs<S extends z.ZodType>(schema: S, data: unknown): z.output<S> | undefined {
  const parsed = schema.safeParse(data);
  return parsed.success ? parsed.data : undefined;
}

/** Whether a transport failure from createProviderHttp proves the request never left. */
export function provedNotSent(err: unknown): boolean {
  if (!(err instanceof ApplicationFailure)) return false;
  const details = err.details?.[0] as Partial<TransportFailureDetails> | undefined;
  return details?.notSent === true;
}

/** Temporal's activity context, or undefined when an adapter is called outside an activity (tests, scripts). */
export function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}
