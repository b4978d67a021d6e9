// The data behind the dashboard's charts, one operator route per chart. Counts come from
// visibility (one row per lead workflow, its LeadStatus), so a retried activity or a replayed
// workflow cannot count twice. The time to the first call is read from each lead's own history
// (intake event vs. the first claimed call attempt), which a replay rebuilds identically.
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { temporal } from '@temporalio/proto';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { HttpError, parseOr400, type AppDeps } from './http';
import { mapBounded } from './operators';
import { LeadPartnerKey, LeadSiteKey, LeadStatusKey } from '../workflows/searchAttributes';
import { getLeadStateQuery } from '../workflows/definitions';
import type { LeadState } from '../workflows/types';

const MAX_LEADS = 50_000;
/** Leads whose history is read for the time to first call: the newest of the period. */
export const FIRST_CALL_SAMPLE = 300;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Hourly series cover at most this much (the end of the period). */
const HOURLY_SPAN = 7 * DAY;
export const REACHED = ['Answered', 'Voicemail'];
const FIRST_CALL_EVENT = /^звонок, попытка /;

const period = z.object({
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  /** The operator's time zone: days are their calendar days. */
  tz: z
    .string()
    .max(64)
    .refine((tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return true;
      } catch {
        return false;
      }
    }, 'unknown time zone')
    .optional(),
});

interface Period {
  from: Date;
  to: Date;
  tz: string;
}

function readPeriod(raw: unknown): Period {
  const p = parseOr400(period, raw, 'invalid period');
  const to = p.to ? new Date(p.to) : new Date(Date.now() + 60_000);
  const from = p.from ? new Date(p.from) : new Date(to.getTime() - 30 * DAY);
  if (from >= to) throw new HttpError(400, '"from" must be before "to"');
  return { from, to, tz: p.tz ?? 'UTC' };
}

async function leadsIn(client: Client, { from, to }: Period): Promise<WorkflowExecutionInfo[]> {
  const q = `WorkflowType = 'processLead' AND StartTime >= '${from.toISOString()}' AND StartTime < '${to.toISOString()}'`;
  const out: WorkflowExecutionInfo[] = [];
  for await (const wf of client.workflow.list({ query: q })) {
    if (out.length >= MAX_LEADS) break;
    out.push(wf);
  }
  return out;
}

/** `YYYY-MM-DD` of `at` in `tz`. */
function dayIn(at: Date, tz: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
}

/** Every calendar day of the period in `tz`, in order. */
function daysOf({ from, to, tz }: Period): string[] {
  const days: string[] = [];
  for (let t = from.getTime(); t < to.getTime(); t += HOUR) {
    const d = dayIn(new Date(t), tz);
    if (days[days.length - 1] !== d) days.push(d);
  }
  const last = dayIn(new Date(to.getTime() - 1), tz);
  if (days[days.length - 1] !== last) days.push(last);
  return days;
}

const statusOf = (wf: WorkflowExecutionInfo) => wf.typedSearchAttributes.get(LeadStatusKey) ?? 'New';

export interface SeriesByOutcome {
  /** bucket starts (epoch seconds) for hours, `YYYY-MM-DD` for days */
  buckets: Array<number | string>;
  byOutcome: Record<string, number[]>;
}

export function leadsOverTime(leads: WorkflowExecutionInfo[], p: Period) {
  const outcomes = [...new Set(leads.map(statusOf))].sort();
  const hourFrom = Math.floor(Math.max(p.from.getTime(), p.to.getTime() - HOURLY_SPAN) / HOUR) * HOUR;
  const hours: number[] = [];
  for (let t = hourFrom; t < p.to.getTime(); t += HOUR) hours.push(t / 1000);
  const days = daysOf(p);
  const hourly: SeriesByOutcome = { buckets: hours, byOutcome: {} };
  const daily: SeriesByOutcome = { buckets: days, byOutcome: {} };
  for (const o of outcomes) {
    hourly.byOutcome[o] = hours.map(() => 0);
    daily.byOutcome[o] = days.map(() => 0);
  }
  for (const wf of leads) {
    const o = statusOf(wf);
    const h = Math.floor((wf.startTime.getTime() - hourFrom) / HOUR);
    if (h >= 0 && h < hours.length) hourly.byOutcome[o]![h]! += 1;
    const d = days.indexOf(dayIn(wf.startTime, p.tz));
    if (d >= 0) daily.byOutcome[o]![d]! += 1;
  }
  return { from: p.from.toISOString(), to: p.to.toISOString(), tz: p.tz, hourly, daily };
}

function percentile(sorted: number[], q: number): number {
  // Nearest rank: a value some lead really had.
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** Seconds from intake to the first call attempt, from the lead's history; undefined before its first call. */
export function secondsToFirstCall(state: LeadState): number | undefined {
  const intake = state.history[0];
  const call = state.history.find((e) => FIRST_CALL_EVENT.test(e.what));
  if (!intake || !call) return undefined;
  return Math.max(0, (call.at - intake.at) / 1000);
}

async function stateOf(client: Client, wf: WorkflowExecutionInfo): Promise<LeadState | undefined> {
  const handle = client.workflow.getHandle(wf.workflowId, wf.runId);
  try {
    if (wf.status.name === 'RUNNING') return await handle.query(getLeadStateQuery);
    if (wf.status.name === 'COMPLETED') return (await handle.result()) as LeadState;
  } catch {
    // Closed between list and query, or its history is gone: not counted.
  }
  return undefined;
}

export async function firstCallTimes(client: Client, leads: WorkflowExecutionInfo[], p: Period) {
  const sample = [...leads]
    .sort((a, b) => b.startTime.getTime() - a.startTime.getTime())
    .slice(0, FIRST_CALL_SAMPLE);
  const states = await mapBounded(sample, 8, (wf) => stateOf(client, wf));
  const days = daysOf(p);
  const perDay = days.map(() => [] as number[]);
  sample.forEach((wf, i) => {
    const s = states[i] && secondsToFirstCall(states[i]);
    const d = days.indexOf(dayIn(wf.startTime, p.tz));
    if (s !== undefined && d >= 0) perDay[d]!.push(s);
  });
  const sorted = perDay.map((v) => v.sort((a, b) => a - b));
  return {
    from: p.from.toISOString(),
    to: p.to.toISOString(),
    tz: p.tz,
    days,
    calls: sorted.map((v) => v.length),
    p50: sorted.map((v) => (v.length ? percentile(v, 0.5) : null)),
    p90: sorted.map((v) => (v.length ? percentile(v, 0.9) : null)),
    sampled: sample.length < leads.length,
  };
}

export interface ReachedGroup {
  key: string;
  leads: number;
  reached: number;
  /** reached / leads, 0..1 */
  share: number;
}

export function reachedShare(leads: WorkflowExecutionInfo[], p: Period) {
  const group = (keyOf: (wf: WorkflowExecutionInfo) => string): ReachedGroup[] => {
    const m = new Map<string, { leads: number; reached: number }>();
    for (const wf of leads) {
      const k = keyOf(wf);
      const g = m.get(k) ?? { leads: 0, reached: 0 };
      g.leads += 1;
      if (REACHED.includes(statusOf(wf))) g.reached += 1;
      m.set(k, g);
    }
    return [...m.entries()]
      .map(([key, g]) => ({ key, ...g, share: Math.round((g.reached / g.leads) * 1000) / 1000 }))
      .sort((a, b) => b.leads - a.leads || a.key.localeCompare(b.key));
  };
  return {
    from: p.from.toISOString(),
    to: p.to.toISOString(),
    partners: group((wf) => wf.typedSearchAttributes.get(LeadPartnerKey) ?? '(без партнёра)'),
    sites: group((wf) => wf.typedSearchAttributes.get(LeadSiteKey) ?? '(не указан)'),
  };
}

/** Activity tasks waiting in a task queue, as the server estimates them. */
async function activityBacklog(client: Client, namespace: string, taskQueue: string): Promise<number | null> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace,
      taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      reportStats: true,
    });
    const count = res.stats?.approximateBacklogCount ?? res.taskQueueStatus?.backlogCountHint;
    return count === null || count === undefined ? 0 : Number(count);
  } catch {
    return null;
  }
}

export function dashboardChartRoutes({ client, config }: AppDeps, requireOperator: RequestHandler): Router {
  const router = Router();
  const { namespace } = config.temporal;
  router.get('/api/dashboard/leads-over-time', requireOperator, async (req, res) => {
    const p = readPeriod(req.query);
    res.json(leadsOverTime(await leadsIn(client, p), p));
  });
  router.get('/api/dashboard/first-call', requireOperator, async (req, res) => {
    const p = readPeriod(req.query);
    res.json(await firstCallTimes(client, await leadsIn(client, p), p));
  });
  router.get('/api/dashboard/reached', requireOperator, async (req, res) => {
    const p = readPeriod(req.query);
    res.json(reachedShare(await leadsIn(client, p), p));
  });
  router.get('/api/dashboard/backlog', requireOperator, async (_req, res) => {
    // CRM work (Bitrix24) has its own queue; seller alerts and SMS share the lead queue.
    const [crm, alerts] = await Promise.all([
      activityBacklog(client, namespace, config.temporal.crmTaskQueue),
      activityBacklog(client, namespace, config.temporal.taskQueue),
    ]);
    res.json({ at: new Date().toISOString(), crm, alerts });
  });
  return router;
}

/** The charting library, served from the installed package: no CDN behind a shop's firewall. */
export function chartLibraryRoutes(): Router {
  const router = Router();
  const dist = path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
  for (const file of ['uPlot.iife.min.js', 'uPlot.min.css']) {
    router.get(`/vendor/${file}`, (_req, res) => {
      res.set('cache-control', 'public, max-age=86400').sendFile(path.join(dist, file));
    });
  }
  return router;
}
