// The scenario's report. The signed token names the workflow run and the attempt; the workflow's
// update validator decides whether that attempt is still awaited, so a stale or repeated report
// changes nothing and gets 409.
import express, { Router } from 'express';
import { z } from 'zod';
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { status } from '@grpc/grpc-js';
import { HttpError, parseOr400, type AppDeps } from './http';
import { verifyResultToken } from '../domain/resultToken';
import { reportCallResultUpdate } from '../workflows/definitions';
import { CALL_RESULTS, type CallResult } from '../workflows/types';

const reportSchema = z.object({
  token: z.string().max(2048).optional(),
  result: z.enum(CALL_RESULTS as [CallResult, ...CallResult[]]),
  code: z.coerce.number().int().min(0).max(999).optional().nullable(),
  duration: z.coerce.number().min(0).max(86_400).optional().nullable(),
});

/** The server refused the target itself (no such run, a closed one): the attempt is not awaited. */
function isRejectedByServer(err: unknown): boolean {
  const code = (err as { cause?: { code?: number } })?.cause?.code ?? (err as { code?: number })?.code;
  return (
    err instanceof ServiceError &&
    [status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION].includes(code as number)
  );
}

export function voximplantRoutes({ client, config, logger, metrics }: AppDeps): Router {
  const router = Router();
  router.post(
    '/api/voximplant/result',
    express.json({ limit: '8kb', type: () => true }),
    async (req, res) => {
      const body = req.body as Record<string, unknown> | undefined;
      const token = body?.token ?? req.get('authorization')?.replace(/^Bearer\s+/i, '');
      const check = verifyResultToken(token, config.voximplant.resultSecret);
      if (!check.ok) throw new HttpError(401, `result token ${check.reason.replace('_', ' ')}`);
      const parsed = parseOr400(reportSchema, body, 'malformed call report');
      const { wf, run, a } = check.claims;
      const report = {
        attempt: a,
        result: parsed.result,
        code: parsed.code ?? undefined,
        duration: parsed.duration ?? undefined,
      };
      try {
        await client.workflow.getHandle(wf, run).executeUpdate(reportCallResultUpdate, { args: [report] });
      } catch (err) {
        if (
          err instanceof WorkflowUpdateFailedError ||
          err instanceof WorkflowNotFoundError ||
          isRejectedByServer(err)
        ) {
          throw new HttpError(409, `call attempt ${a} is not awaited`);
        }
        if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || err instanceof ServiceError) {
          // Temporal is overloaded or unreachable: the scenario retries its report on a 5xx.
          throw new HttpError(503, 'the report could not be delivered right now; retry shortly');
        }
        throw err;
      }
      metrics.callResults.inc({ result: report.result });
      logger.info({ workflowId: wf, attempt: a, result: report.result, code: report.code }, 'call report');
      res.json({ status: 'accepted' });
    },
  );
  return router;
}
