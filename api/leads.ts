// Lead status and operator actions. The state comes from the lead's workflow itself (a query while
// it runs, its result once closed), so the API keeps no state of its own.
import express, { Router, type Request, type RequestHandler } from 'express';
import { z } from 'zod';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { HttpError, parseOr400, requireContentType, type AppDeps } from './http';
import { isPossibleRef } from './intake';
import { describeLead, leadWorkflowId } from './leadIds';
import { claimHoldMs, sealForOperatorStop } from '../support/callClaims';
import { getLeadStateQuery, operatorActionUpdate } from '../workflows/definitions';
import type { LeadState, OperatorAction } from '../workflows/types';

const actionBody = z
  .object({
    by: z.string().trim().max(100).optional(),
    note: z.string().trim().max(1000).optional(),
  })
  .strict();

export async function readLead(
  client: Client,
  ref: string,
  phoneIdKey: string,
): Promise<
  { workflowId: string; execution: string; notCalledReason?: string; state?: LeadState } | undefined
> {
  if (!isPossibleRef(ref)) return undefined;
  const found = await describeLead(client, ref, phoneIdKey);
  if (!found) return undefined;
  const { workflowId, description } = found;
  const handle = client.workflow.getHandle(workflowId);
  const execution = description.status.name;
  // The intake notes in the memo why a lead it started is not called (see api/intake.ts).
  const notCalled = description.memo?.notCalled;
  const base = {
    workflowId,
    execution,
    ...(typeof notCalled === 'string' ? { notCalledReason: notCalled } : {}),
  };
  if (execution === 'RUNNING') return { ...base, state: await handle.query(getLeadStateQuery) };
  if (execution === 'COMPLETED') return { ...base, state: (await handle.result()) as LeadState };
  return base;
}

/** Lead status and the operator actions; `requireOperator` guards every one of them. */
export function leadRoutes({ client, config }: AppDeps, requireOperator: RequestHandler): Router {
  const router = Router();
  router.get('/api/leads/:ref', requireOperator, async (req: Request<{ ref: string }>, res) => {
    const lead = await readLead(client, req.params.ref, config.phoneIdKey);
    if (!lead) throw new HttpError(404, `no lead with ref ${req.params.ref.slice(0, 128)}`);
    res.json({
      ref: req.params.ref,
      workflowId: lead.workflowId,
      status: lead.state?.status ?? lead.execution,
      execution: lead.execution,
      ...(lead.notCalledReason ? { notCalledReason: lead.notCalledReason } : {}),
      ...lead.state,
    });
  });

  const actions: Record<string, OperatorAction['action']> = {
    'call-now': 'call_now',
    handled: 'handled',
    cancel: 'cancel',
  };
  for (const [pathPart, action] of Object.entries(actions)) {
    router.post(
      `/api/leads/:ref/${pathPart}`,
      requireOperator,
      (req, _res, next) =>
        req.headers['content-length'] === '0' || !req.headers['content-type']
          ? next()
          : requireContentType(['application/json'])(req, _res, next),
      express.json({ limit: '16kb' }),
      async (req: Request<{ ref: string }>, res) => {
        const body = parseOr400(actionBody, req.body ?? {}, 'invalid action');
        if (!isPossibleRef(req.params.ref)) throw new HttpError(404, 'no lead with that ref');
        // A lead 1.6 started runs under its legacy id: act on it where it is.
        const workflowId =
          (await describeLead(client, req.params.ref, config.phoneIdKey))?.workflowId ??
          leadWorkflowId(req.params.ref, config.phoneIdKey);
        const handle = client.workflow.getHandle(workflowId);
        if (action !== 'call_now') await sealForOperatorStop(client, workflowId, claimHoldMs(config));
        try {
          const state = await handle.executeUpdate(operatorActionUpdate, {
            args: [{ action, ...body }],
          });
          res.json({ ...state, ref: req.params.ref, workflowId });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            // Unknown ref → 404; a closed lead is found by describe and is a 409.
            const lead = await readLead(client, req.params.ref, config.phoneIdKey);
            if (!lead) throw new HttpError(404, `no lead with ref ${req.params.ref.slice(0, 128)}`);
            throw new HttpError(409, `the lead is ${lead.state?.status ?? lead.execution}: nothing to do`);
          }
          if (err instanceof WorkflowUpdateFailedError) {
            throw new HttpError(409, err.cause?.message ?? err.message);
          }
          throw err;
        }
      },
    );
  }
  return router;
}
