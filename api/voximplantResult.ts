// The scenario's claim before it dials and its report after the call. The signed token names the
// workflow run and the attempt. A claim is decided by Temporal alone (support/callClaims: the first
// start of the attempt's claim id wins), so the dial never waits for the lead's workflow task; the
// lead seals the attempt when it stops waiting for it. A report, and the claim of an attempt placed
// by an older release (its token has no `du`), go to the workflow as updates, whose validators
// decide whether that attempt is still awaited; a stale or repeated one changes nothing and gets
// 409. The report of an attempt placed by 1.9.0 or later (its token says `rs`) is a signal, taken
// by Temporal at once whatever the lead's backlog: a burst of short calls once left hundreds of
// reports answered 503 until the scenario gave up on them. The lead ignores one it does not await;
// a repeat that reaches the same process gets 409.
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import {
  ServiceError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { status } from '@grpc/grpc-js';
import { HttpError, parseOr400, type AppDeps } from './http';
import { verifyResultToken, type ResultTokenClaims } from '../domain/resultToken';
import { claimCallUpdate, reportCallResultSignal, reportCallResultUpdate } from '../workflows/definitions';
import { claimAttempt } from '../support/callClaims';
import { CALL_RESULTS, type CallReport, type CallResult } from '../workflows/types';

const reportSchema = z.object({
  token: z.string().max(2048).optional(),
  result: z.enum(CALL_RESULTS as [CallResult, ...CallResult[]]),
  code: z.coerce.number().int().min(0).max(999).optional().nullable(),
  duration: z.coerce.number().min(0).max(86_400).optional().nullable(),
});

const claimSchema = z.object({
  token: z.string().max(2048).optional(),
  // VoxEngine's session id is a number; null when the scenario could not read it.
  sessionId: z
    .union([z.string().max(100), z.number()])
    .optional()
    .nullable(),
});

/**
 * How long a claim or report waits for the workflow's answer before it is answered 503. scenario.js
 * gives each request 5 s and asks again on a 5xx; a workflow behind a backlog may take minutes to
 * take an update, and the client would wait for it as long, so every try would leave one more
 * request waiting here (a morning run held 15,155 claims and 600 MB of heap so). The update itself
 * stays with Temporal: a claim's retry joins it by its id, a report's retry is judged after it.
 */
export const UPDATE_ANSWER_WITHIN_MS = 4_000;

/** The server refused the target itself (no such run, a closed one): the attempt is not awaited. */
function isRejectedByServer(err: unknown): boolean {
  const code = (err as { cause?: { code?: number } })?.cause?.code ?? (err as { code?: number })?.code;
  return (
    err instanceof ServiceError &&
    [status.INVALID_ARGUMENT, status.NOT_FOUND, status.FAILED_PRECONDITION].includes(code as number)
  );
}

/** The token's run and attempt, or 401. */
function attemptOf(req: Request, secret: string): ResultTokenClaims {
  const body = req.body as Record<string, unknown> | undefined;
  const token = body?.token ?? req.get('authorization')?.replace(/^Bearer\s+/i, '');
  const check = verifyResultToken(token, secret);
  if (!check.ok) throw new HttpError(401, `result token ${check.reason.replace('_', ' ')}`);
  return check.claims;
}

/**
 * Sends the scenario's update to the attempt's run; 409 when the workflow refuses it. An `updateId`
 * names what is asked (this attempt's claim by this session), so a request the scenario repeats
 * because the answer was slow joins the update already under way, or gets the outcome of the one
 * already taken, instead of queueing one more: a busy service would otherwise pile the repeats
 * of a patient claim onto the workflow until Temporal refuses its updates (10 in flight).
 */
async function updateAttempt<Args extends [unknown, ...unknown[]]>(
  client: Client,
  { wf, run, a }: ResultTokenClaims,
  update: UpdateDefinition<unknown, Args>,
  args: Args,
  updateId: string | undefined,
  refusal: string,
): Promise<void> {
  try {
    await client.withDeadline(Date.now() + UPDATE_ANSWER_WITHIN_MS, () =>
      client.workflow.getHandle(wf, run).executeUpdate(update, { args, updateId }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new HttpError(409, err.cause?.message ?? `call attempt ${a} ${refusal}`);
    }
    if (err instanceof WorkflowNotFoundError || isRejectedByServer(err)) {
      throw new HttpError(409, `call attempt ${a} ${refusal}`);
    }
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || err instanceof ServiceError) {
      // Temporal is overloaded or unreachable: the scenario retries on a 5xx.
      throw new HttpError(503, 'Temporal cannot take this right now; retry shortly');
    }
    throw err;
  }
}

/**
 * How many signalled reports a process remembers, so a repeat gets 409 (an hour's worth at 3/s);
 * one older than its token is refused as expired anyway.
 */
const REMEMBERED_REPORTS = 10_000;

/**
 * Sends the report as a signal to the attempt's run; 409 for a run that is closed, or for a report
 * of this attempt already taken here.
 */
function reportSender(client: Client) {
  /** Attempts whose report this process took, oldest first. */
  const taken = new Set<string>();
  return async ({ wf, run, a }: ResultTokenClaims, report: CallReport): Promise<void> => {
    const key = `${wf}/${run ?? ''}/${a}`;
    if (taken.has(key)) throw new HttpError(409, `call attempt ${a} is not awaited: its report was taken`);
    // Held while the signal is on its way, so a repeat sent meanwhile is refused too.
    taken.add(key);
    if (taken.size > REMEMBERED_REPORTS) taken.delete(taken.values().next().value!);
    try {
      await client.withDeadline(Date.now() + UPDATE_ANSWER_WITHIN_MS, () =>
        client.workflow.getHandle(wf, run).signal(reportCallResultSignal, report),
      );
    } catch (err) {
      taken.delete(key);
      if (err instanceof WorkflowNotFoundError || isRejectedByServer(err)) {
        throw new HttpError(409, `call attempt ${a} is not awaited`);
      }
      if (err instanceof ServiceError) {
        throw new HttpError(503, 'Temporal cannot take this right now; retry shortly');
      }
      throw err;
    }
  };
}

export function voximplantRoutes({ client, config, logger, metrics }: AppDeps): Router {
  const router = Router();
  const sendReport = reportSender(client);
  const json = express.json({ limit: '8kb', type: () => true });

  router.post('/api/voximplant/claim', json, async (req, res) => {
    const attempt = attemptOf(req, config.voximplant.resultSecret);
    const parsed = parseOr400(claimSchema, req.body, 'malformed claim');
    const sessionId = parsed.sessionId == null ? undefined : String(parsed.sessionId);
    if (attempt.du !== undefined && attempt.run) await claimByTemporal(attempt, attempt.run, sessionId);
    else
      await updateAttempt(
        client,
        attempt,
        claimCallUpdate,
        [{ attempt: attempt.a, sessionId }],
        // A claim that names no session is never merged with another: each is judged on its own.
        sessionId === undefined ? undefined : `claim-${attempt.a}-${sessionId}`,
        'is not awaited',
      );
    // Beside stl_calls_placed_total: calls placed and never claimed were never dialled (a scenario
    // that cannot reach PUBLIC_URL), which the lead itself shows only after its last attempt.
    metrics.callClaimsGranted.inc();
    logger.info({ workflowId: attempt.wf, attempt: attempt.a, sessionId }, 'call claimed');
    res.json({ status: 'claimed' });
  });

  async function claimByTemporal(attempt: ResultTokenClaims, runId: string, sessionId?: string) {
    const now = Date.now();
    // A busy service answers late, and the scenario asks for minutes: a claim after the customer's
    // window closed rings nobody at night, and one after claimUntil would leave the call no time
    // to report before the lead stops waiting. Either attempt then ends unclaimed and is retried.
    if (now >= attempt.du!) {
      throw new HttpError(409, 'outside working hours in the customer’s time zone: no calls at night');
    }
    if (attempt.cu !== undefined && now > attempt.cu) {
      throw new HttpError(409, `call attempt ${attempt.a} is no longer awaited (claimUntil passed)`);
    }
    let answer;
    try {
      answer = await client.withDeadline(now + UPDATE_ANSWER_WITHIN_MS, () =>
        claimAttempt(
          client,
          { runId, attempt: attempt.a, holdMs: attempt.exp * 1000 - now + 60_000 },
          sessionId,
        ),
      );
    } catch (err) {
      if (err instanceof ServiceError) {
        throw new HttpError(503, 'Temporal cannot take this right now; retry shortly');
      }
      throw err;
    }
    if (answer === 'claimed_by_another')
      throw new HttpError(409, `call attempt ${attempt.a} is already claimed`);
    if (answer === 'sealed') throw new HttpError(409, `call attempt ${attempt.a} is not awaited`);
  }

  router.post('/api/voximplant/result', json, async (req, res) => {
    const attempt = attemptOf(req, config.voximplant.resultSecret);
    const parsed = parseOr400(reportSchema, req.body, 'malformed call report');
    const report = {
      attempt: attempt.a,
      result: parsed.result,
      code: parsed.code ?? undefined,
      duration: parsed.duration ?? undefined,
    };
    if (attempt.rs) await sendReport(attempt, report);
    // A repeated report is judged again (409 once one is taken, as the contract says): the
    // scenario tries five times at most, well under Temporal's 10 updates in flight.
    else await updateAttempt(client, attempt, reportCallResultUpdate, [report], undefined, 'is not awaited');
    metrics.callResults.inc({ result: report.result });
    logger.info(
      { workflowId: attempt.wf, attempt: attempt.a, result: report.result, code: report.code },
      'call report',
    );
    res.json({ status: 'accepted' });
  });
  return router;
}
