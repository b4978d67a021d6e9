// Lead status and operator actions. The state comes from the lead's workflow itself (a query while
// it runs, its result once closed), so the API keeps no state of its own.
import express, { Router, type Request } from 'express';
import { z } from 'zod';
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import { HttpError, parseOr400, requireContentType, type AppDeps } from './http';
import { isPossibleRef, leadWorkflowId } from './intake';
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
): Promise<{ workflowId: string; execution: string; state?: LeadState } | undefined> {
  if (!isPossibleRef(ref)) return undefined;
  const workflowId = leadWorkflowId(ref);
  const handle = client.workflow.getHandle(workflowId);
  let description: WorkflowExecutionDescription;
  try {
    description = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
  const execution = description.status.name;
  if (execution === 'RUNNING') return { workflowId, execution, state: await handle.query(getLeadStateQuery) };
  if (execution === 'COMPLETED')
    return { workflowId, execution, state: (await handle.result()) as LeadState };
  return { workflowId, execution };
}

export function leadRoutes({ client }: AppDeps): Router {
  const router = Router();
  router.get('/api/leads/:ref', async (req: Request<{ ref: string }>, res) => {
    const lead = await readLead(client, req.params.ref);
    if (!lead) throw new HttpError(404, `no lead with ref ${req.params.ref.slice(0, 128)}`);
    res.json({
      ref: req.params.ref,
      workflowId: lead.workflowId,
      status: lead.state?.status ?? lead.execution,
      execution: lead.execution,
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
      (req, _res, next) =>
        req.headers['content-length'] === '0' || !req.headers['content-type']
          ? next()
          : requireContentType(['application/json'])(req, _res, next),
      express.json({ limit: '16kb' }),
      async (req: Request<{ ref: string }>, res) => {
        const body = parseOr400(actionBody, req.body ?? {}, 'invalid action');
        if (!isPossibleRef(req.params.ref)) throw new HttpError(404, 'no lead with that ref');
        const workflowId = leadWorkflowId(req.params.ref);
        const handle = client.workflow.getHandle(workflowId);
        try {
          const state = await handle.executeUpdate(operatorActionUpdate, {
            args: [{ action, ...body }],
          });
          res.json({ ...state, ref: req.params.ref, workflowId });
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) {
            // Unknown ref → 404; a closed lead is found by describe and is a 409.
            const lead = await readLead(client, req.params.ref);
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
