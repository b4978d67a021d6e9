// The data behind the dashboard's charts, one operator route per chart. Counts come from
// visibility (one row per lead workflow, its LeadStatus), so a retried activity or a replayed
// workflow cannot count twice; the rows are the shared read of api/leadBoard.ts. The time to the
// first call is the one figure visibility does not hold: it is read from each lead's own history
// (intake event vs. the first claimed call attempt), once per lead once it is known.
import path from 'node:path';
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { LRUCache } from 'lru-cache';
import { parseOr400 } from './http';
import type { LeadBoard, LeadRow, PeriodLeads } from './leadBoard';

export { secondsToFirstCall } from './leadBoard';

/** Leads whose history is read for the time to first call: the newest of the period. */
export const FIRST_CALL_SAMPLE = 300;
const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Hourly series cover at most this much (the end of the period). */
const HOURLY_SPAN = 7 * DAY;
export const REACHED = ['Answered', 'Voicemail'];

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

function readPeriod(raw: unknown): { asked: { from?: Date; to?: Date }; tz: string } {
  const p = parseOr400(period, raw, 'invalid period');
  return {
    asked: { ...(p.from ? { from: new Date(p.from) } : {}), ...(p.to ? { to: new Date(p.to) } : {}) },
    tz: p.tz ?? 'UTC',
  };
}

// Intl takes a zone in any letter case: bounded, so variants of one name cannot grow it.
const formats = new LRUCache<string, Intl.DateTimeFormat>({ max: 64 });
/** One formatter per zone, not one per lead. */
function dayFormat(tz: string): Intl.DateTimeFormat {
  let f = formats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    formats.set(tz, f);
  }
  return f;
}

/** `YYYY-MM-DD` of `at` in `tz`. */
function dayIn(at: Date | number, tz: string): string {
  return dayFormat(tz).format(at);
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

export interface SeriesByOutcome {
  /** bucket starts (epoch seconds) for hours, `YYYY-MM-DD` for days */
  buckets: Array<number | string>;
  byOutcome: Record<string, number[]>;
}

export function leadsOverTime(leads: LeadRow[], p: Period) {
  const outcomes = [...new Set(leads.map((l) => l.status))].sort();
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
  const dayIndex = new Map(days.map((d, i) => [d, i]));
  for (const lead of leads) {
    const o = lead.status;
    const h = Math.floor((lead.startTime - hourFrom) / HOUR);
    if (h >= 0 && h < hours.length) hourly.byOutcome[o]![h]! += 1;
    const d = dayIndex.get(dayIn(lead.startTime, p.tz)) ?? -1;
    if (d >= 0) daily.byOutcome[o]![d]! += 1;
  }
  return { from: p.from.toISOString(), to: p.to.toISOString(), tz: p.tz, hourly, daily };
}

function percentile(sorted: number[], q: number): number {
  // Nearest rank: a value some lead really had.
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;
}

/** `seconds` answers the time to first call of each lead it is given (undefined: none). */
export async function firstCallTimes(
  leads: LeadRow[],
  p: Period,
  seconds: (sample: LeadRow[]) => Promise<Array<number | undefined>>,
) {
  const sample = [...leads].sort((a, b) => b.startTime - a.startTime).slice(0, FIRST_CALL_SAMPLE);
  const times = await seconds(sample);
  const days = daysOf(p);
  const perDay = days.map(() => [] as number[]);
  sample.forEach((lead, i) => {
    const s = times[i];
    const d = days.indexOf(dayIn(lead.startTime, p.tz));
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

export function reachedShare(leads: LeadRow[], p: Omit<Period, 'tz'>) {
  const group = (keyOf: (lead: LeadRow) => string): ReachedGroup[] => {
    const m = new Map<string, { leads: number; reached: number }>();
    for (const lead of leads) {
      const k = keyOf(lead);
      const g = m.get(k) ?? { leads: 0, reached: 0 };
      g.leads += 1;
      if (REACHED.includes(lead.status)) g.reached += 1;
      m.set(k, g);
    }
    return [...m.entries()]
      .map(([key, g]) => ({ key, ...g, share: Math.round((g.reached / g.leads) * 1000) / 1000 }))
      .sort((a, b) => b.leads - a.leads || a.key.localeCompare(b.key));
  };
  return {
    from: p.from.toISOString(),
    to: p.to.toISOString(),
    partners: group((lead) => lead.partner ?? '(без партнёра)'),
    sites: group((lead) => lead.site ?? '(не указан)'),
  };
}

export function dashboardChartRoutes(board: LeadBoard, requireOperator: RequestHandler): Router {
  const router = Router();
  /** The period's leads from the shared read, and the answer computed once per read, period and zone. */
  const chart =
    <T>(name: string, compute: (leads: PeriodLeads, p: Period) => T | Promise<T>): RequestHandler =>
    async (req, res) => {
      const { asked, tz } = readPeriod(req.query);
      const leads = await board.leads(asked);
      const p = { from: new Date(leads.from), to: new Date(leads.to), tz };
      const body = await board.view(`${name}|${leads.key}|${tz}`, () => compute(leads, p));
      res.json({ ...body, asOf: new Date(leads.asOf).toISOString() });
    };
  router.get(
    '/api/dashboard/leads-over-time',
    requireOperator,
    chart('leads-over-time', (leads, p) => leadsOverTime(leads.rows, p)),
  );
  router.get(
    '/api/dashboard/first-call',
    requireOperator,
    chart('first-call', (leads, p) =>
      firstCallTimes(leads.rows, p, (sample) => board.firstCallSeconds(sample)),
    ),
  );
  router.get(
    '/api/dashboard/reached',
    requireOperator,
    chart('reached', (leads, p) => reachedShare(leads.rows, p)),
  );
  router.get('/api/dashboard/backlog', requireOperator, async (_req, res) => {
    const { asOf, crm, alerts } = await board.backlog();
    const at = new Date(asOf).toISOString();
    res.json({ at, crm, alerts, asOf: at });
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
