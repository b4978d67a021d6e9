// The operators' console: the leads that need a person now and the leads being called or asleep
// until morning. The list comes from visibility (the search attributes and memo the workflow
// keeps), read once per refresh interval for every open console (api/leadBoard.ts); only the ref,
// the last call result and the partner's CRM title come from the lead itself, read once per run
// and again only when what visibility shows of it changes.
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import type { AppDeps } from './http';
import type { LeadBoard, QueueEntry } from './leadBoard';

export interface QueueRow {
  workflowId: string;
  runId: string;
  /** The lead's ref, for the action routes; absent when its state could not be read. */
  ref?: string;
  status: string;
  reason?: string;
  attempts: number;
  lastResult?: string;
  nextCallAt?: string;
  partner?: string;
  site?: string;
  phone?: string;
  city?: string;
  receivedAt: string;
  webUrl: string;
}

export interface OperatorQueue {
  manual: QueueRow[];
  active: QueueRow[];
  truncated: boolean;
  /** when visibility was read (the same as `asOf`) */
  at: string;
  asOf: string;
}

export function workflowWebUrl(uiUrl: string, namespace: string, workflowId: string, runId: string): string {
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

function toRow({ wf, state }: QueueEntry, uiUrl: string, namespace: string): QueueRow {
  const partner = state?.partner?.status === 'found' ? state.partner.title : (wf.partner ?? wf.memo.partner);
  return {
    workflowId: wf.workflowId,
    runId: wf.runId,
    ...(state ? { ref: state.ref } : {}),
    status: wf.status,
    ...(wf.reason ? { reason: wf.reason } : {}),
    attempts: wf.attempts,
    ...(state?.lastResult ? { lastResult: state.lastResult } : {}),
    ...(wf.nextCallAt ? { nextCallAt: new Date(wf.nextCallAt).toISOString() } : {}),
    ...(partner ? { partner } : {}),
    ...(wf.site ? { site: wf.site } : {}),
    ...(wf.memo.phone ? { phone: wf.memo.phone } : {}),
    ...(wf.memo.city ? { city: wf.memo.city } : {}),
    receivedAt: new Date(wf.startTime).toISOString(),
    webUrl: workflowWebUrl(uiUrl, namespace, wf.workflowId, wf.runId),
  };
}

export async function buildQueue(board: LeadBoard, uiUrl: string, namespace: string): Promise<OperatorQueue> {
  const piece = await board.queue();
  return board.view(`queue|${piece.asOf}`, () => {
    const asOf = new Date(piece.asOf).toISOString();
    return {
      manual: piece.manual.map((e) => toRow(e, uiUrl, namespace)),
      active: piece.active.map((e) => toRow(e, uiUrl, namespace)),
      truncated: piece.truncated,
      at: asOf,
      asOf,
    };
  });
}

export function operatorRoutes(
  { config }: AppDeps,
  board: LeadBoard,
  requireOperator: RequestHandler,
  requireOperatorPage: RequestHandler,
): Router {
  const router = Router();
  router.get('/api/operators/queue', requireOperator, async (_req, res) => {
    res
      .set('cache-control', 'no-store')
      .json(await buildQueue(board, config.temporal.uiUrl, config.temporal.namespace));
  });
  router.get('/operators', requireOperatorPage, (_req, res) => {
    res.set('cache-control', 'no-store').sendFile(path.join(__dirname, 'pages', 'operators.html'));
  });
  return router;
}
