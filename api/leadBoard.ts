// The one aggregate behind the dashboard and the operators' console, per API process. Every open
// tab polls; what a poll costs Temporal must not grow with the tabs. So each piece (the recent
// leads, the console's queue, the task-queue backlogs) is read at most once per refresh interval,
// concurrent requests share the read in flight, a failed read is never kept (the next request
// tries again and, meanwhile, gets the last good one, whose `asOf` says how old it is), and what a
// page derives from a piece is computed once per piece and question.
import { LRUCache } from 'lru-cache';
import { temporal } from '@temporalio/proto';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { AppConfig } from '../config';
import { HttpError } from './http';
import { claimedAt } from '../support/callClaims';
import type { Clock } from '../support/clock';
import type { Logger } from '../support/logger';
import {
  CallAttemptsKey,
  LeadPartnerKey,
  LeadSiteKey,
  LeadStatusKey,
  ManualReasonKey,
  NextCallAtKey,
  OrderAmountKey,
} from '../workflows/searchAttributes';
import { getLeadStateQuery } from '../workflows/definitions';
import type { LeadState, LeadStatus } from '../workflows/types';

const DAY = 86_400_000;
/** The recent piece: enough for the default 30 days and a page's "last 30 local days" in any zone. */
export const RECENT_WINDOW_MS = 32 * DAY;
/** Leads one piece holds at most (newest first: the oldest are the ones left out). */
export const MAX_LEADS = 50_000;
/** Older periods kept at once; more distinct ones evict the least recently asked. */
const MAX_OLD_PERIODS = 4;
/** Derived answers kept (per piece, question and time zone). */
const MAX_VIEWS = 64;
/** Per-lead reads running at once during one refresh. */
const READ_CONCURRENCY = 8;
/** Rows per console section: a page a person can read, and a bound on the reads a refresh makes. */
export const QUEUE_LIMIT = 100;
/** How many matching leads one console refresh reads from visibility at most, to find the oldest. */
const MAX_LISTED = 20_000;
export const ACTIVE: LeadStatus[] = ['Calling', 'WaitingForResult', 'MissedCall', 'WaitingForWorkingHours'];

/** What the dashboard needs of a lead: its visibility row, nothing from its history. */
export interface LeadRow {
  workflowId: string;
  runId: string;
  /** epoch ms */
  startTime: number;
  status: string;
  partner?: string;
  site?: string;
  orderAmount: number;
  attempts: number;
  /** RUNNING, COMPLETED, … */
  execution: string;
}

export interface LeadsPiece {
  /** epoch ms of the read */
  asOf: number;
  /** every lead that started at or after this is in `rows` (unless `truncated`) */
  from: number;
  /** exclusive end, for an older period; the recent piece has none */
  to?: number;
  /** newest first */
  rows: LeadRow[];
  truncated: boolean;
}

export interface Backlog {
  asOf: number;
  crm: number | null;
  alerts: number | null;
}

/** A period's leads, and `key`, which names them and the read they come from (for `view`). */
export interface PeriodLeads {
  from: number;
  to: number;
  asOf: number;
  rows: LeadRow[];
  truncated: boolean;
  key: string;
}

/** A console row as visibility shows it, and the run's state when it could be read. */
export interface QueueEntry {
  wf: {
    workflowId: string;
    runId: string;
    startTime: number;
    status: string;
    reason?: string;
    attempts: number;
    nextCallAt?: number;
    partner?: string;
    site?: string;
    memo: { phone?: string; city?: string; partner?: string };
  };
  state?: Pick<LeadState, 'ref' | 'lastResult' | 'partner'>;
}

export interface QueuePiece {
  asOf: number;
  manual: QueueEntry[];
  active: QueueEntry[];
  truncated: boolean;
}

const memoString = (wf: WorkflowExecutionInfo, key: string): string | undefined => {
  const v = wf.memo?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
};

export function toLeadRow(wf: WorkflowExecutionInfo): LeadRow {
  const a = wf.typedSearchAttributes;
  return {
    workflowId: wf.workflowId,
    runId: wf.runId,
    startTime: wf.startTime.getTime(),
    status: a.get(LeadStatusKey) ?? 'New',
    ...(a.get(LeadPartnerKey) ? { partner: a.get(LeadPartnerKey) } : {}),
    ...(a.get(LeadSiteKey) ? { site: a.get(LeadSiteKey) } : {}),
    orderAmount: a.get(OrderAmountKey) ?? 0,
    attempts: a.get(CallAttemptsKey) ?? 0,
    execution: wf.status.name,
  };
}

function toQueueRow(wf: WorkflowExecutionInfo): QueueEntry['wf'] {
  const a = wf.typedSearchAttributes;
  return {
    workflowId: wf.workflowId,
    runId: wf.runId,
    startTime: wf.startTime.getTime(),
    status: a.get(LeadStatusKey) ?? 'New',
    ...(a.get(ManualReasonKey) ? { reason: a.get(ManualReasonKey) } : {}),
    attempts: a.get(CallAttemptsKey) ?? 0,
    ...(a.get(NextCallAtKey) ? { nextCallAt: a.get(NextCallAtKey)!.getTime() } : {}),
    ...(a.get(LeadPartnerKey) ? { partner: a.get(LeadPartnerKey) } : {}),
    ...(a.get(LeadSiteKey) ? { site: a.get(LeadSiteKey) } : {}),
    memo: {
      ...(memoString(wf, 'phone') ? { phone: memoString(wf, 'phone') } : {}),
      ...(memoString(wf, 'city') ? { city: memoString(wf, 'city') } : {}),
      ...(memoString(wf, 'partner') ? { partner: memoString(wf, 'partner') } : {}),
    },
  };
}

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

const quote = (d: number) => `'${new Date(d).toISOString()}'`;

/** Seconds from intake to the first call attempt, from the lead's history; undefined before its first call. */
export function secondsToFirstCall(state: LeadState): number | undefined {
  const intake = state.history[0];
  const call = state.history.find((e) => /^звонок, попытка /.test(e.what));
  if (!intake || !call) return undefined;
  return Math.max(0, (call.at - intake.at) / 1000);
}

export interface LeadBoardOptions {
  client: Client;
  config: AppConfig;
  logger: Logger;
  clock: Clock;
}

export class LeadBoard {
  readonly refreshMs: number;
  private readonly client: Client;
  private readonly config: AppConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly recent: LRUCache<'recent', LeadsPiece>;
  private readonly older: LRUCache<string, LeadsPiece, { from: number; to: number }>;
  private readonly queuePiece: LRUCache<'queue', QueuePiece>;
  private readonly backlogPiece: LRUCache<'backlog', Backlog>;
  private readonly views: LRUCache<string, Promise<unknown>>;
  /**
   * A run's time to its first call, read from its history once: a closed run's never changes, nor
   * does a called one's; a run not called yet is asked again after an interval.
   */
  private readonly firstCalls: LRUCache<string, { seconds: number | null }, LeadRow>;
  /** The older-period scan running now, the next one waits for. */
  private olderReads: Promise<unknown> = Promise.resolve();
  /** Why a piece with no good read to fall back on failed, for its readers. */
  private readonly failures = new Map<string, unknown>();
  /** A console row's state, per run and per what visibility shows of it: a change asks again. */
  private readonly rowStates: LRUCache<string, NonNullable<QueueEntry['state']>, QueueEntry['wf']>;

  constructor({ client, config, logger, clock }: LeadBoardOptions) {
    this.client = client;
    this.config = config;
    this.logger = logger;
    this.clock = clock;
    this.refreshMs = config.dashboard.refreshMs;
    const perf = { now: () => clock.now() };
    const shared = {
      ttl: this.refreshMs,
      // The clock is read on every check: a cached reading would outlive a virtual clock's step.
      ttlResolution: 0,
      perf,
      // A failed read answers with the last good piece (its asOf tells) and is retried next time.
      allowStaleOnFetchRejection: true,
    } as const;
    this.recent = new LRUCache({
      ...shared,
      max: 1,
      fetchMethod: () => this.refresh('recent', () => this.readRecent()),
    });
    this.older = new LRUCache({
      ...shared,
      max: MAX_OLD_PERIODS,
      // Their keys are the caller's choice: one such scan at a time, however many are asked for.
      fetchMethod: (key, _stale, { context }) =>
        this.oneAtATime(() => this.refresh(`period|${key}`, () => this.readLeads(context.from, context.to))),
    });
    this.queuePiece = new LRUCache({
      ...shared,
      max: 1,
      fetchMethod: () => this.refresh('queue', () => this.readQueue()),
    });
    this.backlogPiece = new LRUCache({
      ...shared,
      max: 1,
      fetchMethod: () => this.refresh('backlog', () => this.readBacklog()),
    });
    this.views = new LRUCache({ max: MAX_VIEWS });
    this.firstCalls = new LRUCache({
      // Ten periods' samples of the newest 300.
      max: 3_000,
      perf,
      ttlResolution: 0,
      fetchMethod: (_key, _stale, { context, options }) => this.readFirstCall(context, options),
    });
    this.rowStates = new LRUCache({
      max: 4 * QUEUE_LIMIT,
      perf,
      ttlResolution: 0,
      fetchMethod: (_key, _stale, { context, options }) => this.readRowState(context, options),
    });
  }

  /**
   * The leads of a period: from the recent piece when it covers the period, else from a shared
   * older one. A bound not given is taken from the read (`to` a minute after it, `from` 30 days
   * before `to`); neither given is the default period, which ends at the read.
   */
  async leads(asked: { from?: Date; to?: Date } = {}): Promise<PeriodLeads> {
    if (asked.from && asked.to && asked.from >= asked.to)
      throw new HttpError(400, '"from" must be before "to"');
    const recent = await this.must('recent', this.recent.fetch('recent'));
    const to = asked.to?.getTime() ?? recent.asOf + 60_000;
    const from = asked.from?.getTime() ?? to - 30 * DAY;
    if (from >= to) throw new HttpError(400, '"from" must be before "to"');
    if (!asked.from && !asked.to) {
      // The piece holds nothing later than its read.
      const rows = recent.rows.filter((r) => r.startTime >= from);
      return {
        from,
        to,
        asOf: recent.asOf,
        rows,
        truncated: recent.truncated,
        key: `${recent.asOf}|default`,
      };
    }
    const piece =
      from >= recent.from
        ? recent
        : await this.must(
            `period|${from}|${to}`,
            this.older.fetch(`${from}|${to}`, { context: { from, to } }),
          );
    const rows = piece.rows.filter((r) => r.startTime >= from && r.startTime < to);
    // Truncation dropped the oldest: a period that reaches past the oldest kept row misses some.
    const oldestKept = piece.rows.at(-1)?.startTime ?? Infinity;
    const truncated = piece.truncated && from < oldestKept;
    return { from, to, asOf: piece.asOf, rows, truncated, key: `${piece.asOf}|${piece.from}|${from}|${to}` };
  }

  queue(): Promise<QueuePiece> {
    return this.must('queue', this.queuePiece.fetch('queue'));
  }

  backlog(): Promise<Backlog> {
    return this.must('backlog', this.backlogPiece.fetch('backlog'));
  }

  /** `compute` once per key; keys carry the piece's asOf, so a new piece is a new answer. */
  view<T>(key: string, compute: () => T | Promise<T>): Promise<T> {
    const hit = this.views.get(key);
    if (hit) return hit as Promise<T>;
    const answer = Promise.resolve().then(compute);
    this.views.set(key, answer);
    answer.catch(() => {
      if (this.views.get(key) === answer) this.views.delete(key);
    });
    return answer;
  }

  /** The time to the first call of each of `rows` (undefined: not called, or not readable). */
  async firstCallSeconds(rows: LeadRow[]): Promise<Array<number | undefined>> {
    return mapBounded(rows, READ_CONCURRENCY, async (row) => {
      // Visibility already tells those never called, and those whose state cannot be read.
      if (row.attempts === 0 || (row.execution !== 'RUNNING' && row.execution !== 'COMPLETED')) {
        return undefined;
      }
      const got = await this.firstCalls.fetch(row.runId, { context: row }).catch(() => undefined);
      return got?.seconds ?? undefined;
    });
  }

  private oneAtATime<T>(read: () => Promise<T>): Promise<T> {
    const next = this.olderReads.then(read, read);
    this.olderReads = next.catch(() => undefined);
    return next;
  }

  /** The piece, or (no good read yet and this one failed) its read's error. */
  private async must<T>(what: string, fetched: Promise<T | undefined>): Promise<T> {
    const piece = await fetched;
    if (piece !== undefined) return piece;
    throw this.failures.get(what) ?? new Error('the dashboard data could not be read');
  }

  private async refresh<T>(what: string, read: () => Promise<T>): Promise<T> {
    try {
      const piece = await read();
      this.failures.delete(what);
      return piece;
    } catch (err) {
      this.failures.set(what, err);
      // Older periods are keys a caller chooses: keep only the latest few failures.
      if (this.failures.size > 16) this.failures.delete(this.failures.keys().next().value!);
      this.logger.warn({ err: String(err), what }, 'dashboard refresh failed: serving the last good one');
      throw err;
    }
  }

  private async readRecent(): Promise<LeadsPiece> {
    const asOf = this.clock.now();
    const from = asOf - RECENT_WINDOW_MS;
    return { ...(await this.listLeads(`StartTime >= ${quote(from)}`)), asOf, from };
  }

  private async readLeads(from: number, to: number): Promise<LeadsPiece> {
    const asOf = this.clock.now();
    const listed = await this.listLeads(`StartTime >= ${quote(from)} AND StartTime < ${quote(to)}`);
    return { ...listed, asOf, from, to };
  }

  private async listLeads(where: string): Promise<{ rows: LeadRow[]; truncated: boolean }> {
    const rows: LeadRow[] = [];
    let truncated = false;
    for await (const wf of this.client.workflow.list({
      query: `WorkflowType = 'processLead' AND ${where}`,
    })) {
      if (rows.length >= MAX_LEADS) {
        truncated = true;
        break;
      }
      rows.push(toLeadRow(wf));
    }
    // Visibility lists newest first on every store we know; sorting makes it so on any other.
    rows.sort((a, b) => b.startTime - a.startTime);
    return { rows, truncated };
  }

  private async readQueue(): Promise<QueuePiece> {
    const asOf = this.clock.now();
    const statuses = ['ManualHandling', ...ACTIVE].map((s) => `'${s}'`).join(', ');
    const query = `WorkflowType = 'processLead' AND ExecutionStatus = 'Running' AND LeadStatus IN (${statuses})`;
    // Not every store orders by start time ascending: read all that match (a bounded set in any
    // working shop), keep the oldest of each section.
    const all: QueueEntry['wf'][] = [];
    let truncated = false;
    for await (const wf of this.client.workflow.list({ query })) {
      if (all.length >= MAX_LISTED) {
        truncated = true;
        break;
      }
      all.push(toQueueRow(wf));
    }
    all.sort((a, b) => a.startTime - b.startTime);
    const manual = all.filter((r) => r.status === 'ManualHandling');
    const active = all.filter((r) => r.status !== 'ManualHandling');
    truncated ||= manual.length > QUEUE_LIMIT || active.length > QUEUE_LIMIT;
    const withState = (rows: QueueEntry['wf'][]) =>
      mapBounded(rows.slice(0, QUEUE_LIMIT), READ_CONCURRENCY, async (wf): Promise<QueueEntry> => {
        const state = await this.rowStates.fetch(rowKey(wf), { context: wf }).catch(() => undefined);
        return state ? { wf, state } : { wf };
      });
    return { asOf, manual: await withState(manual), active: await withState(active), truncated };
  }

  private async readBacklog(): Promise<Backlog> {
    const asOf = this.clock.now();
    // CRM work (Bitrix24) has its own queue; seller alerts and SMS share the lead queue.
    const [crm, alerts] = await Promise.all([
      this.activityBacklog(this.config.temporal.crmTaskQueue),
      this.activityBacklog(this.config.temporal.taskQueue),
    ]);
    return { asOf, crm, alerts };
  }

  /** Activity tasks waiting in a task queue, as the server estimates them. */
  private async activityBacklog(taskQueue: string): Promise<number | null> {
    try {
      const res = await this.client.workflowService.describeTaskQueue({
        namespace: this.config.temporal.namespace,
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

  private async readFirstCall(row: LeadRow, options: { ttl?: number }): Promise<{ seconds: number | null }> {
    const handle = this.client.workflow.getHandle(row.workflowId, row.runId);
    const state =
      row.execution === 'RUNNING'
        ? await handle.query(getLeadStateQuery)
        : ((await handle.result()) as LeadState);
    let seconds = secondsToFirstCall(state);
    // A lead hears of its attempt's claim when the attempt ends: one ringing now is found by its
    // claim in Temporal (the earlier attempts were not claimed, or its history would say so).
    if (seconds === undefined && row.execution === 'RUNNING' && state.attempts > 0 && state.history[0]) {
      // Unreadable is unknown for now: asked again after an interval, like a lead not called yet.
      const at = await claimedAt(this.client, row.runId, state.attempts).catch(() => undefined);
      if (at !== undefined) seconds = Math.max(0, (at - state.history[0].at) / 1000);
    }
    // Running and not called yet: ask again after an interval; otherwise it is settled for good.
    options.ttl = seconds === undefined && row.execution === 'RUNNING' ? this.refreshMs : 0;
    return { seconds: seconds ?? null };
  }

  private async readRowState(
    wf: QueueEntry['wf'],
    options: { ttl?: number },
  ): Promise<NonNullable<QueueEntry['state']>> {
    const state = await this.client.workflow.getHandle(wf.workflowId, wf.runId).query(getLeadStateQuery);
    // The last result changes only with the status or attempts (part of the key); the partner's
    // title arrives from the CRM without either, so a row still waiting for it asks again.
    const partnerPending = state.partner === undefined && (wf.partner ?? wf.memo.partner) !== undefined;
    options.ttl = partnerPending ? this.refreshMs : 0;
    return {
      ref: state.ref,
      ...(state.lastResult ? { lastResult: state.lastResult } : {}),
      ...(state.partner ? { partner: state.partner } : {}),
    };
  }
}

/** What visibility shows of a console row: its state is read again when any of it changes. */
function rowKey(wf: QueueEntry['wf']): string {
  return [wf.runId, wf.status, wf.attempts, wf.nextCallAt ?? '', wf.reason ?? ''].join('|');
}
