// The operators' console: the leads that need a person now and the leads being called or asleep
// until morning. The list comes from visibility (the search attributes the workflow keeps); only
// the rows shown are asked for their state (ref, last result), a bounded number of queries.
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { AppDeps } from './http';
import {
  CallAttemptsKey,
  LeadPartnerKey,
  LeadSiteKey,
  LeadStatusKey,
  ManualReasonKey,
  NextCallAtKey,
} from '../workflows/searchAttributes';
import { getLeadStateQuery } from '../workflows/definitions';
import type { LeadState, LeadStatus } from '../workflows/types';

/** Rows per section: a page a person can read, and a bound on the state queries one refresh makes. */
export const QUEUE_LIMIT = 100;
const QUERY_CONCURRENCY = 8;
/** How many matching leads one refresh reads from visibility at most, to find the oldest. */
const MAX_LISTED = 10_000;

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
  at: string;
}

const ACTIVE: LeadStatus[] = ['Calling', 'WaitingForResult', 'MissedCall', 'WaitingForWorkingHours'];

/** Runs `fn` over `items`, at most `limit` at a time, keeping their order. */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function listOldestFirst(
  client: Client,
  query: string,
): Promise<{ rows: WorkflowExecutionInfo[]; truncated: boolean }> {
  // Visibility stores list newest first and not every store orders by a custom key: read all that
  // match (a bounded set in any working shop), keep the oldest.
  const all: WorkflowExecutionInfo[] = [];
  for await (const wf of client.workflow.list({ query })) {
    all.push(wf);
    if (all.length >= MAX_LISTED) break;
  }
  all.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
  return { rows: all.slice(0, QUEUE_LIMIT), truncated: all.length > QUEUE_LIMIT };
}

function memoString(wf: WorkflowExecutionInfo, key: string): string | undefined {
  const v = wf.memo?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function workflowWebUrl(uiUrl: string, namespace: string, workflowId: string, runId: string): string {
  return `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}/${encodeURIComponent(runId)}/history`;
}

export async function buildQueue(client: Client, uiUrl: string, namespace: string): Promise<OperatorQueue> {
  const base = `WorkflowType = 'processLead' AND ExecutionStatus = 'Running'`;
  const [manual, active] = await Promise.all([
    listOldestFirst(client, `${base} AND LeadStatus = 'ManualHandling'`),
    listOldestFirst(client, `${base} AND LeadStatus IN (${ACTIVE.map((s) => `'${s}'`).join(', ')})`),
  ]);
  const toRow = async (wf: WorkflowExecutionInfo): Promise<QueueRow> => {
    const attrs = wf.typedSearchAttributes;
    let state: LeadState | undefined;
    try {
      state = await client.workflow.getHandle(wf.workflowId, wf.runId).query(getLeadStateQuery);
    } catch {
      // Closed since the list was read, or its worker is down: the row still shows what visibility knows.
    }
    const nextCallAt = attrs.get(NextCallAtKey);
    const partner =
      state?.partner?.status === 'found'
        ? state.partner.title
        : (attrs.get(LeadPartnerKey) ?? memoString(wf, 'partner'));
    return {
      workflowId: wf.workflowId,
      runId: wf.runId,
      ...(state ? { ref: state.ref } : {}),
      status: attrs.get(LeadStatusKey) ?? 'New',
      ...(attrs.get(ManualReasonKey) ? { reason: attrs.get(ManualReasonKey) } : {}),
      attempts: attrs.get(CallAttemptsKey) ?? 0,
      ...(state?.lastResult ? { lastResult: state.lastResult } : {}),
      ...(nextCallAt ? { nextCallAt: nextCallAt.toISOString() } : {}),
      ...(partner ? { partner } : {}),
      ...(attrs.get(LeadSiteKey) ? { site: attrs.get(LeadSiteKey) } : {}),
      ...(memoString(wf, 'phone') ? { phone: memoString(wf, 'phone') } : {}),
      ...(memoString(wf, 'city') ? { city: memoString(wf, 'city') } : {}),
      receivedAt: wf.startTime.toISOString(),
      webUrl: workflowWebUrl(uiUrl, namespace, wf.workflowId, wf.runId),
    };
  };
  return {
    manual: await mapBounded(manual.rows, QUERY_CONCURRENCY, toRow),
    active: await mapBounded(active.rows, QUERY_CONCURRENCY, toRow),
    truncated: manual.truncated || active.truncated,
    at: new Date().toISOString(),
  };
}

export function operatorRoutes(
  { client, config }: AppDeps,
  requireOperator: RequestHandler,
  requireOperatorPage: RequestHandler,
): Router {
  const router = Router();
  router.get('/api/operators/queue', requireOperator, async (_req, res) => {
    res
      .set('cache-control', 'no-store')
      .json(await buildQueue(client, config.temporal.uiUrl, config.temporal.namespace));
  });
  router.get('/operators', requireOperatorPage, (_req, res) => {
    res.set('cache-control', 'no-store').sendFile(path.join(__dirname, 'pages', 'operators.html'));
  });
  return router;
}
