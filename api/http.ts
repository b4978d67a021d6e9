// What every route shares: the dependencies it is built from, the error it throws for a 4xx/5xx,
// and how a zod failure becomes a 400. The app and its routes import this; never each other.
import type { NextFunction, Request, Response } from 'express';
import type { Client } from '@temporalio/client';
import type { z } from 'zod';
import type { AppConfig } from '../config';
import type { Logger } from '../support/logger';
import type { Metrics } from '../support/metrics';
import type { Clock } from '../support/clock';

export interface AppDeps {
  client: Client;
  config: AppConfig;
  logger: Logger;
  metrics: Metrics;
  /** Readiness beyond "Temporal answers": e.g. the in-process worker is polling. */
  isWorkerReady?: () => boolean;
  /** Extra Prometheus text appended to /metrics (the Temporal SDK's own metrics). */
  extraMetrics?: () => Promise<string>;
  /** When the dashboard's shared data is due again (default: the system clock); tests step it. */
  clock?: Clock;
}

/** Answered as `{error: message, ...body}` with `status` by the app's error handler. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** One entry of a 400's `details`, as the contract names it. */
export interface FieldProblem {
  field: string;
  message: string;
}

export type ZodIssue = z.core.$ZodIssue;

/** The `details` of a 400: one entry per issue, the body itself when an issue has no path. */
export function fieldProblems(
  error: z.ZodError,
  describe: (issue: ZodIssue) => string = (issue) => issue.message,
): FieldProblem[] {
  return error.issues.map((issue) => ({ field: issue.path.join('.') || 'body', message: describe(issue) }));
}

/** `schema`'s output for `value`, or a 400 `{error: message, details}` naming every bad field. */
export function parseOr400<S extends z.ZodType>(
  schema: S,
  value: unknown,
  message: string,
  describe?: (issue: ZodIssue) => string,
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError(400, message, { details: fieldProblems(parsed.error, describe) });
  return parsed.data;
}

export function requireContentType(types: string[]) {
  return (req: Request, _res: Response, next: NextFunction) => {
    if (!req.is(types)) {
      next(new HttpError(415, `unsupported content type; send one of: ${types.join(', ')}`));
      return;
    }
    next();
  };
}
