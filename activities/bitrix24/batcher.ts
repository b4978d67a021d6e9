// One queue per portal in the process: the CRM activities hand it their look-ups, lead adds and
// call notes, and it sends them as Bitrix24 `batch` requests (up to 50 commands each, one request
// against the portal's bucket), each request taken from the limit every worker process sharing
// DATA_DIR shares. It is pipelined: while one request is out, the next fills up, so in the steady
// state each request carries the adds of leads whose look-up came back empty in an earlier one,
// one IN look-up of the leads queued since, one partner look-up and the waiting notes.
//
// Idempotency is the one of the unbatched activities: a lead is added only after an IN look-up on
// its ORIGIN_ID found none, and a note's comment goes only after its status update came back
// (never in the same request: halt=0 would write the comment even when the update failed, and the
// retried note would then write it twice).
import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { z } from 'zod';
import { logger, maskPhone } from '../../support/logger';
import { systemClock, type Clock } from '../../support/clock';
import { sharedLimit, type SharedLimit } from '../../support/sharedLimit';
import { activityContext, HTTP_TIMEOUT_MS, readAs } from '../http';
import { keepAlive } from '../keepAlive';
import type { CallAttemptNote, CrmLeadInput, Partner, PartnerOutcome, RegisteredLead } from './activities';
import {
  bitrix24Failure,
  createBitrix24Client,
  ErrorBody,
  limitAnswerOf,
  NewId,
  type LimitAnswer,
  Rows,
  unavailable,
  type Bitrix24Client,
  type Bitrix24ClientOptions,
  type Bitrix24Config,
  type Params,
} from './client';

export const ORIGINATOR_ID = 'speed-to-lead';
/** Commands in one batch request: Bitrix24's maximum. */
export const BATCH_MAX = 50;
/** Leads in one IN look-up: as many as the next request has room to add, beside two look-ups. */
const LOOKUP_MAX = BATCH_MAX - 2;
/** Outside an activity (scripts, tests), how long an item may wait for its request. */
const DEFAULT_WAIT_MS = 30_000;
/** An item fails (retryably) this long before its activity would time out, so it says why. */
const DEADLINE_MARGIN_MS = 1_000;

export interface CrmMetrics {
  /** Leads queued in the batcher and not yet added. */
  crmLeadsWaiting?: { set(value: number): void };
  /** Seconds from intake to the CRM lead, observed when it is created. */
  intakeToCrmLead?: { observe(value: number): void };
}

export interface Bitrix24BatcherOptions extends Bitrix24ClientOptions {
  metrics?: CrmMetrics;
  /** The portal's request budget; by default the one shared under dataDir for this portal. */
  limit?: SharedLimit;
}

export interface Bitrix24Batcher {
  registerLead(input: CrmLeadInput): Promise<RegisteredLead>;
  /** One note; `progress` rides along in the heartbeats so a retried activity resumes after it. */
  recordNote(leadId: number, note: CallAttemptNote, progress: Params): Promise<void>;
  /** Leads queued and not yet added. */
  leadsWaiting(): number;
  /** Partner codes whose look-up is cached. */
  partnersCached(): number;
}

const log = logger.child({ component: 'bitrix24' });

interface Waiter<T> {
  ctx?: Context;
  /** On the batcher's clock. */
  deadline: number;
  details: Params;
  settle?: { resolve(value: T): void; reject(err: unknown): void };
}

interface LeadJob {
  ref: string;
  input: CrmLeadInput;
  /** The trimmed partner code; undefined without one. */
  code?: string;
  waiters: Set<Waiter<RegisteredLead>>;
  /** queued: needs its look-up; looking: look-up sent; ready: found none, to add; adding: add sent. */
  stage: 'queued' | 'looking' | 'ready' | 'adding';
  looked: boolean;
  existing?: number;
  partner?: PartnerOutcome;
}

interface NoteJob {
  leadId: number;
  note: CallAttemptNote;
  waiter: Waiter<void>;
  stage: 'update' | 'comment';
  sent: boolean;
}

/** A list command's page beyond the first, for the values not seen yet. */
interface Continuation {
  kind: 'lead' | 'partner';
  values: string[];
  start: number;
}

interface Command {
  method: string;
  params: Params;
  done(result: unknown, next: number | undefined): void;
  fail(err: unknown): void;
  /** Puts the items back as they were before this request was built. */
  requeue(): void;
  waiters(): Waiter<never>[];
}

const BatchAnswer = z.object({
  result: z.object({
    result: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]),
    result_error: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
    result_next: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
    result_time: z.union([z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
  }),
});
/** PHP answers an empty map as []. */
const asMap = (v: Record<string, unknown> | unknown[] | undefined): Record<string, unknown> =>
  Array.isArray(v) ? Object.fromEntries(v.map((x, i) => [String(i), x])) : (v ?? {});

// Per process, per portal (and per clock: a test's virtual clock gets a batcher of its own).
const batchers = new WeakMap<Clock, Map<string, Bitrix24Batcher & { adopt(m?: CrmMetrics): void }>>();
export function sharedBitrix24Batcher(cfg: Bitrix24Config, opts: Bitrix24BatcherOptions): Bitrix24Batcher {
  const clock = opts.clock ?? systemClock;
  const key = JSON.stringify([
    baseOf(cfg),
    opts.dataDir,
    cfg.partnerEntity,
    cfg.partnerField,
    cfg.partnerCacheTtlMs,
    cfg.requestsPerSecond,
    cfg.burst,
  ]);
  let byKey = batchers.get(clock);
  if (!byKey) batchers.set(clock, (byKey = new Map()));
  let batcher = byKey.get(key);
  if (!batcher) byKey.set(key, (batcher = createBitrix24Batcher(cfg, opts)));
  batcher.adopt(opts.metrics);
  return batcher;
}

function baseOf(cfg: Bitrix24Config): string {
  return cfg.auth.kind === 'webhook' ? cfg.auth.webhookUrl : `${cfg.auth.portalUrl}rest/`;
}

/** The name of a portal's budget in `${dataDir}/limits/`. */
export function limitNameOf(cfg: Bitrix24Config): string {
  return `bitrix24-${new URL(baseOf(cfg)).host.replace(/[^a-z0-9.-]+/gi, '_')}`;
}

/** A batcher of its own (tests simulating two processes); the activities use the shared one. */
export function createBitrix24Batcher(
  cfg: Bitrix24Config,
  opts: Bitrix24BatcherOptions,
): Bitrix24Batcher & { adopt(m?: CrmMetrics): void } {
  const clock = opts.clock ?? systemClock;
  const client: Bitrix24Client = createBitrix24Client(cfg, opts);
  const limit =
    opts.limit ??
    sharedLimit({
      name: limitNameOf(cfg),
      dir: opts.dataDir,
      policy: { kind: 'bucket', perSecond: cfg.requestsPerSecond, burst: cfg.burst },
      clock,
    });
  let metrics = opts.metrics;
  const contact = cfg.partnerEntity === 'contact';
  const partnerSelect = contact
    ? ['ID', 'NAME', 'LAST_NAME', cfg.partnerField]
    : ['ID', 'TITLE', cfg.partnerField];

  const leads = new Map<string, LeadJob>();
  const notes: NoteJob[] = [];
  const continuations: Continuation[] = [];
  /** Partner codes whose look-up is sent or continues on a later page. */
  const partnersLooking = new Set<string>();
  const partnerCache = new Map<string, { lookup: PartnerLookupResult; until: number }>();
  const activityStarts = new WeakMap<Context, number>();
  let wake: (() => void) | undefined;
  /** Until when Bitrix24 said OPERATION_TIME_LIMIT (epoch ms on the clock). */
  let heldUntil = 0;
  let running = false;

  type PartnerLookupResult = Extract<PartnerOutcome, { status: 'found' | 'not_found' }>;

  const report = () => metrics?.crmLeadsWaiting?.set(leads.size);
  const kick = () => {
    const w = wake;
    wake = undefined;
    w?.();
    if (!running) {
      running = true;
      // The loop serves every activity: it must not run inside (and be cancelled with) the one
      // that happened to start it.
      asyncLocalStorage.exit(() => void loop());
    }
  };

  // Past an OPERATION_TIME_LIMIT answer, an item that could not wait for the reset is not queued:
  // Temporal retries it after the reset instead (see operatingTimeLimit).
  function waiterFor<T>(details: Params): Waiter<T> {
    const ctx = activityContext();
    const now = clock.now();
    let deadline = now + DEFAULT_WAIT_MS;
    if (ctx) {
      // The attempt's start as this process saw it: Temporal's own timestamps are those of the
      // schedule (which includes the wait in the task queue) and of another machine's clock.
      let started = activityStarts.get(ctx);
      if (started === undefined) activityStarts.set(ctx, (started = now));
      const timeout = ctx.info.startToCloseTimeoutMs;
      if (timeout > 0) deadline = started + timeout - Math.min(DEADLINE_MARGIN_MS, timeout / 10);
    }
    return { ctx, deadline, details };
  }

  /** Waits for the waiter's outcome; cancelling its activity takes it out of the queue. */
  function wait<T>(w: Waiter<T>, onCancel: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      w.settle = { resolve, reject };
      w.ctx?.cancelled.catch((err: unknown) => {
        if (!w.settle) return;
        onCancel();
        settle(w, { err: err instanceof CancelledFailure ? err : new CancelledFailure('cancelled') });
      });
      if (w.ctx) keepAlive(w.ctx, w.details, clock.now());
    });
  }

  function settle<T>(w: Waiter<T>, outcome: { value: T } | { err: unknown }): void {
    const s = w.settle;
    if (!s) return;
    w.settle = undefined;
    if ('err' in outcome) s.reject(outcome.err);
    else s.resolve(outcome.value);
  }

  // ---- leads ----------------------------------------------------------------------------------

  function dropLead(job: LeadJob): void {
    if (leads.get(job.ref) === job) leads.delete(job.ref);
    report();
  }

  function failLead(job: LeadJob, err: unknown): void {
    for (const w of job.waiters) settle(w, { err });
    job.waiters.clear();
    dropLead(job);
  }

  function finishLead(job: LeadJob, lead: { leadId: number; created: boolean }): void {
    const result: RegisteredLead = job.partner ? { ...lead, partner: job.partner } : lead;
    for (const w of job.waiters) settle(w, { value: result });
    job.waiters.clear();
    dropLead(job);
  }

  /** After a look-up answered: found, to add, or still waiting for the partner. */
  function advance(job: LeadJob): void {
    if (!job.looked || (job.code !== undefined && !job.partner)) return;
    if (job.existing !== undefined) return finishLead(job, { leadId: job.existing, created: false });
    if (job.waiters.size === 0) return dropLead(job);
    job.stage = 'ready';
  }

  function cachedPartner(code: string): PartnerLookupResult | undefined {
    const hit = partnerCache.get(code);
    if (hit && hit.until > clock.now()) return hit.lookup;
    if (hit) partnerCache.delete(code);
    return undefined;
  }

  function resolvePartner(code: string, outcome: PartnerOutcome): void {
    partnersLooking.delete(code);
    if (outcome.status !== 'lookup_failed' && cfg.partnerCacheTtlMs > 0) {
      // Kept in the order the entries expire (one TTL for all), so the expired ones are dropped from
      // the front: the cache holds the codes seen within the TTL, however many distinct codes come.
      const now = clock.now();
      for (const [cached, { until }] of partnerCache) {
        if (until > now) break;
        partnerCache.delete(cached);
      }
      partnerCache.delete(code);
      partnerCache.set(code, { lookup: outcome, until: now + cfg.partnerCacheTtlMs });
    }
    for (const job of leads.values()) {
      if (job.code === code && !job.partner && job.stage !== 'queued') {
        job.partner = outcome;
        advance(job);
      }
    }
  }

  function leadLookupCommand(jobs: LeadJob[], start: number): Command {
    const refs = jobs.map((j) => j.ref);
    for (const j of jobs) j.stage = 'looking';
    return {
      method: 'crm.lead.list',
      params: {
        filter: { ORIGINATOR_ID, '@ORIGIN_ID': refs },
        select: ['ID', 'ORIGIN_ID'],
        order: { ID: 'ASC' },
        ...(start > 0 ? { start } : {}),
      },
      done(result, next) {
        const rows = Rows.safeParse(result);
        if (!rows.success) return this.fail(unexpected('crm.lead.list'));
        const seen = new Set<string>();
        for (const row of rows.data) {
          const ref = String(row.ORIGIN_ID ?? '');
          const job = leads.get(ref);
          if (!seen.has(ref) && job && jobs.includes(job)) {
            seen.add(ref);
            job.existing = Number(row.ID);
          }
        }
        const unseen = jobs.filter((j) => !seen.has(j.ref) && leads.get(j.ref) === j);
        if (next !== undefined && unseen.length > 0) {
          // Older duplicates filled the page: the rest of these refs may be on the next one.
          continuations.push({ kind: 'lead', values: unseen.map((j) => j.ref), start: next });
        }
        for (const job of jobs) {
          if (leads.get(job.ref) !== job) continue;
          if (seen.has(job.ref) || next === undefined || !unseen.includes(job)) {
            job.looked = true;
            advance(job);
          }
        }
      },
      fail(err) {
        for (const job of jobs) if (leads.get(job.ref) === job) failLead(job, err);
      },
      requeue() {
        if (start > 0) continuations.push({ kind: 'lead', values: refs, start });
        else for (const job of jobs) if (leads.get(job.ref) === job) job.stage = 'queued';
      },
      waiters: () => jobs.flatMap((j) => [...j.waiters]) as Waiter<never>[],
    };
  }

  function partnerLookupCommand(codes: string[], start: number): Command {
    for (const code of codes) partnersLooking.add(code);
    const waitingJobs = () =>
      [...leads.values()].filter((j) => j.code && codes.includes(j.code) && !j.partner);
    return {
      method: contact ? 'crm.contact.list' : 'crm.company.list',
      params: {
        filter: { [`@${cfg.partnerField}`]: codes },
        select: partnerSelect,
        order: { ID: 'ASC' },
        ...(start > 0 ? { start } : {}),
      },
      done(result, next) {
        const rows = Rows.safeParse(result);
        if (!rows.success) return this.fail(unexpected(this.method));
        // Bitrix24 may match a code regardless of case: each row goes to the codes it stands for.
        const asked = new Map<string, string[]>();
        for (const code of codes)
          asked.set(code.toLowerCase(), [...(asked.get(code.toLowerCase()) ?? []), code]);
        const found = new Map<string, Partner>();
        const count = new Map<string, number>();
        for (const row of rows.data) {
          const key = String(row[cfg.partnerField] ?? '')
            .trim()
            .toLowerCase();
          count.set(key, (count.get(key) ?? 0) + 1);
          const title = contact
            ? [row.NAME, row.LAST_NAME].filter((p) => typeof p === 'string' && p !== '').join(' ')
            : String(row.TITLE ?? '');
          for (const code of asked.get(key) ?? []) {
            if (!found.has(code)) found.set(code, { id: Number(row.ID), title, code });
          }
        }
        for (const n of count.values()) {
          if (n > 1) log.warn({ count: n }, 'several partners share one code; using the oldest');
        }
        const unseen = codes.filter((c) => !found.has(c));
        if (next !== undefined && unseen.length > 0) {
          continuations.push({ kind: 'partner', values: unseen, start: next });
        }
        for (const [code, partner] of found) resolvePartner(code, { status: 'found', partner });
        if (next === undefined) for (const code of unseen) resolvePartner(code, { status: 'not_found' });
      },
      fail(err) {
        // A refusal (bad token, no rights, a wrong field name) will not pass on retry: the lead
        // goes in without its partner and a person is told. Anything else fails the lead, retried whole.
        for (const code of codes) partnersLooking.delete(code);
        if (err instanceof ApplicationFailure && err.nonRetryable && err.type !== 'Bitrix24Overloaded') {
          for (const code of codes) resolvePartner(code, { status: 'lookup_failed', reason: err.message });
          return;
        }
        for (const job of waitingJobs()) failLead(job, err);
      },
      requeue() {
        if (start > 0) continuations.push({ kind: 'partner', values: codes, start });
        else for (const code of codes) partnersLooking.delete(code);
        // Jobs still without a partner go back with their own look-up.
        if (start === 0) for (const job of waitingJobs()) if (job.stage === 'looking') job.stage = 'queued';
      },
      waiters: () => waitingJobs().flatMap((j) => [...j.waiters]) as Waiter<never>[],
    };
  }

  function addCommand(job: LeadJob): Command {
    job.stage = 'adding';
    const input = job.input;
    const phone = input.phone.replace(/\D/g, '');
    const partner = job.partner?.status === 'found' ? job.partner.partner : undefined;
    return {
      method: 'crm.lead.add',
      params: {
        fields: {
          TITLE: `Заявка с сайта: ${input.name}`,
          NAME: input.name,
          PHONE: [{ VALUE: `+${phone}`, VALUE_TYPE: 'WORK' }],
          ADDRESS_CITY: input.city,
          SOURCE_ID: 'WEB',
          SOURCE_DESCRIPTION: input.site,
          UTM_SOURCE: input.partnerCode,
          COMPANY_ID: partner?.id,
          OPPORTUNITY: input.orderAmount,
          CURRENCY_ID: 'RUB',
          COMMENTS: input.comment,
          ORIGINATOR_ID,
          ORIGIN_ID: input.ref,
        },
        params: { REGISTER_SONET_EVENT: 'Y' },
      },
      done(result) {
        const id = NewId.safeParse(result);
        if (!id.success) return this.fail(unexpected('crm.lead.add'));
        log.info({ leadId: id.data, phone: maskPhone(phone) }, 'bitrix24 lead created');
        if (input.receivedAt !== undefined) {
          metrics?.intakeToCrmLead?.observe(Math.max(0, Date.now() - input.receivedAt) / 1000);
        }
        finishLead(job, { leadId: id.data, created: true });
      },
      fail: (err) => failLead(job, err),
      requeue() {
        if (leads.get(job.ref) === job) job.stage = 'ready';
      },
      waiters: () => [...job.waiters] as Waiter<never>[],
    };
  }

  // ---- notes ----------------------------------------------------------------------------------

  function dropNote(job: NoteJob): void {
    const i = notes.indexOf(job);
    if (i >= 0) notes.splice(i, 1);
  }

  function noteCommand(job: NoteJob): Command {
    job.sent = true;
    const update = job.stage === 'update';
    return {
      method: update ? 'crm.lead.update' : 'crm.timeline.comment.add',
      params: update
        ? { id: job.leadId, fields: { STATUS_ID: job.note.statusId } }
        : { fields: { ENTITY_ID: job.leadId, ENTITY_TYPE: 'lead', COMMENT: job.note.comment } },
      done(result) {
        const ok = update ? z.union([z.boolean(), z.literal('true')]) : NewId;
        if (!ok.safeParse(result).success) return this.fail(unexpected(this.method));
        if (!job.waiter.settle) return dropNote(job); // cancelled meanwhile: the retry resumes
        job.sent = false;
        if (update) job.stage = 'comment';
        else {
          dropNote(job);
          settle(job.waiter, { value: undefined });
        }
      },
      fail(err) {
        dropNote(job);
        settle(job.waiter, { err });
      },
      requeue() {
        job.sent = false;
      },
      waiters: () => [job.waiter] as Waiter<never>[],
    };
  }

  // ---- the request loop -----------------------------------------------------------------------

  const hasWork = () =>
    continuations.length > 0 ||
    notes.some((n) => !n.sent) ||
    [...leads.values()].some((j) => j.stage === 'queued' || j.stage === 'ready');

  /** Fails (retryably) whatever waited past its activity's time; `before` for a known wait. */
  function expire(before = clock.now(), err?: (w: Waiter<never>) => unknown): void {
    const late = (w: Waiter<unknown>) => w.settle && w.deadline <= before;
    const why = (w: Waiter<never>) =>
      err?.(w) ?? unavailable('Bitrix24: no request slot for this item before its activity runs out of time');
    for (const job of [...leads.values()]) {
      if (job.stage === 'looking' || job.stage === 'adding') continue;
      for (const w of [...job.waiters]) {
        if (!late(w)) continue;
        settle(w, { err: why(w as Waiter<never>) });
        job.waiters.delete(w);
      }
      if (job.waiters.size === 0) dropLead(job);
    }
    for (const job of [...notes]) {
      if (job.sent || !late(job.waiter)) continue;
      settle(job.waiter, { err: why(job.waiter as Waiter<never>) });
      dropNote(job);
    }
  }

  /** Tells Temporal the waiting activities are alive (and lets a cancellation reach them). */
  function heartbeatWaiting(): void {
    const now = clock.now();
    for (const job of leads.values())
      for (const w of job.waiters) if (w.ctx) keepAlive(w.ctx, w.details, now);
    for (const job of notes) if (job.waiter.ctx) keepAlive(job.waiter.ctx, job.waiter.details, now);
  }

  function build(): Command[] {
    const cmds: Command[] = [];
    for (const c of continuations.splice(0)) {
      if (c.kind === 'lead') {
        const jobs = c.values.map((ref) => leads.get(ref)).filter((j): j is LeadJob => !!j);
        if (jobs.length > 0) cmds.push(leadLookupCommand(jobs, c.start));
      } else cmds.push(partnerLookupCommand(c.values, c.start));
    }
    const all = [...leads.values()];
    for (const job of all) {
      if (cmds.length >= BATCH_MAX - 2) break;
      if (job.stage !== 'ready') continue;
      // An add must be answered (or given up on) before its activity times out: otherwise the
      // retry, maybe on another worker, could look the ref up before this add lands and add again.
      const latest = Math.max(...[...job.waiters].map((w) => w.deadline));
      if (latest - clock.now() < HTTP_TIMEOUT_MS.bitrix24) {
        failLead(job, unavailable('Bitrix24 crm.lead.add: too little of the activity left to add the lead'));
        continue;
      }
      cmds.push(addCommand(job));
    }
    for (const job of notes) {
      if (cmds.length >= BATCH_MAX - 2) break;
      if (!job.sent) cmds.push(noteCommand(job));
    }
    const room = BATCH_MAX - cmds.length;
    const queued = all.filter((j) => j.stage === 'queued').slice(0, room >= 2 ? LOOKUP_MAX : 0);
    if (queued.length === 0) return cmds;
    const codes = new Set<string>();
    for (const job of queued) {
      if (job.code === undefined || job.partner) continue;
      const hit = cachedPartner(job.code);
      if (hit) job.partner = hit;
      else if (!partnersLooking.has(job.code)) codes.add(job.code);
    }
    cmds.push(leadLookupCommand(queued, 0));
    if (codes.size > 0) cmds.push(partnerLookupCommand([...codes], 0));
    return cmds;
  }

  async function loop(): Promise<void> {
    for (;;) {
      expire();
      if (!hasWork()) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      heartbeatWaiting();
      try {
        await limit.take();
      } catch (err) {
        // The budget's lock could not be had (another process stuck on it): try again shortly.
        log.warn({ err: (err as Error).message }, 'bitrix24 request budget unavailable');
        await clock.sleep(Math.ceil(1000 / cfg.requestsPerSecond));
        continue;
      }
      // Whatever the activities queued while we waited for the slot goes along.
      await new Promise((resolve) => setImmediate(resolve));
      expire();
      const cmds = build();
      if (cmds.length === 0) continue;
      try {
        await send(cmds);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'bitrix24 batch loop');
        for (const c of cmds) c.fail(err);
      }
      report();
    }
  }

  async function send(cmds: Command[]): Promise<void> {
    const keys = cmds.map((c, i) => `${c.method.split('.').at(-1)}${i}`);
    const cmd = Object.fromEntries(cmds.map((c, i) => [keys[i], `${c.method}?${toQuery(c.params)}`]));
    const beaten = new Set<Waiter<never>>();
    for (const c of cmds) {
      for (const w of c.waiters()) {
        if (beaten.has(w)) continue;
        beaten.add(w);
        w.details = { ...w.details, bitrix24: c.method };
        if (w.ctx) keepAlive(w.ctx, w.details, clock.now());
      }
    }
    let res;
    try {
      // The first send took its slot in loop(); an OAuth resend after a refresh takes another.
      let first = true;
      const pace = async () => {
        if (!first) await limit.take();
        first = false;
      };
      res = await client.post('batch', { halt: 0, cmd }, pace);
    } catch (err) {
      for (const c of cmds) c.fail(err);
      return;
    }
    const limited = limitAnswerOf(res.data);
    if (limited) return holdFor(limited, cmds);
    const error = readAs(ErrorBody, res.data);
    if (error) {
      const failure = bitrix24Failure('batch', error, res.status);
      for (const c of cmds) c.fail(failure);
      return;
    }
    const answer = res.status >= 200 && res.status < 300 ? readAs(BatchAnswer, res.data) : undefined;
    if (!answer) {
      const failure = unexpectedBatch(res.status);
      for (const c of cmds) c.fail(failure);
      return;
    }
    const results = asMap(answer.result.result);
    const errors = asMap(answer.result.result_error);
    const nexts = asMap(answer.result.result_next);
    const times = asMap(answer.result.result_time);
    const held: Command[] = [];
    let hold: LimitAnswer | undefined;
    cmds.forEach((c, i) => {
      const key = keys[i]!;
      const e = readAs(ErrorBody, errors[key]);
      // A command refused for a limit did nothing: it goes again, after the limit, not failed.
      const limit = e && limitAnswerOf({ ...e, time: times[key] });
      if (limit) {
        held.push(c);
        if (!hold || (limit.kind === 'operating_time' && (limit.resetAt ?? Infinity) > resetOf(hold)))
          hold = limit;
        return;
      }
      if (e) return c.fail(bitrix24Failure(c.method, e));
      if (!(key in results)) return c.fail(unexpected(c.method));
      const next = Number(nexts[key]);
      c.done(results[key], Number.isInteger(next) && next > 0 ? next : undefined);
    });
    if (hold) await holdFor(hold, held);
  }

  const resetOf = (l: LimitAnswer) => (l.kind === 'operating_time' ? (l.resetAt ?? Infinity) : 0);

  /** Bitrix24 said "not now" to these commands: they go back in the queue, sent after the pause. */
  async function holdFor(limited: LimitAnswer, cmds: Command[]): Promise<void> {
    if (limited.kind === 'query_limit') {
      // The bucket is full (another host, or a budget out of step): one drain step, then again.
      await limit.holdUntil(clock.now() + Math.ceil(1000 / cfg.requestsPerSecond));
      for (const c of cmds) c.requeue();
      return;
    }
    const resetAt = limited.resetAt ?? clock.now() + 60_000;
    heldUntil = Math.max(heldUntil, resetAt);
    await limit.holdUntil(resetAt);
    for (const c of cmds) c.requeue();
    // Whatever cannot wait that long is retried by Temporal after the reset instead.
    expire(resetAt, () => operatingTimeLimit(resetAt - clock.now()));
  }

  return {
    adopt(m) {
      if (m) metrics = m;
    },
    leadsWaiting: () => leads.size,
    partnersCached: () => partnerCache.size,

    registerLead(input) {
      const code = input.partnerCode?.trim();
      const w = waiterFor<RegisteredLead>({ bitrix24: 'crm.lead.list' });
      if (heldUntil > w.deadline) return Promise.reject(operatingTimeLimit(heldUntil - clock.now()));
      let job = leads.get(input.ref);
      if (!job) {
        // A lead whose earlier attempt is still queued or out (same ref) shares its outcome.
        job = { ref: input.ref, input, code, waiters: new Set(), stage: 'queued', looked: false };
        if (code === '') {
          job.code = undefined;
          job.partner = { status: 'not_found' };
        }
        leads.set(input.ref, job);
        report();
      }
      const j = job;
      j.waiters.add(w);
      const result = wait(w, () => {
        j.waiters.delete(w);
        if (j.waiters.size === 0 && j.stage !== 'looking' && j.stage !== 'adding') dropLead(j);
      });
      kick();
      return result;
    },

    recordNote(leadId, note, progress) {
      const w = waiterFor<void>({ ...progress });
      if (heldUntil > w.deadline) return Promise.reject(operatingTimeLimit(heldUntil - clock.now()));
      const job: NoteJob = {
        leadId,
        note,
        waiter: w,
        stage: note.statusId ? 'update' : 'comment',
        sent: false,
      };
      notes.push(job);
      const result = wait(w, () => {
        if (!job.sent) dropNote(job);
      });
      kick();
      return result;
    },
  };
}

function operatingTimeLimit(waitMs: number): ApplicationFailure {
  return ApplicationFailure.create({
    message: 'Bitrix24 batch: OPERATION_TIME_LIMIT until the operating time resets',
    type: 'Bitrix24Unavailable',
    nextRetryDelay: Math.max(1, waitMs),
  });
}

function unexpected(method: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`Bitrix24 ${method}: unexpected answer`, 'Bitrix24RequestError');
}

function unexpectedBatch(status: number): ApplicationFailure {
  const msg = `Bitrix24 batch: unexpected answer [HTTP ${status}]`;
  return status >= 500 || status === 429
    ? unavailable(msg)
    : ApplicationFailure.nonRetryable(msg, 'Bitrix24RequestError');
}

/**
 * Params as the query string of one batch command, the way PHP's http_build_query writes them
 * (`filter[@ORIGIN_ID][]=a`, `fields[PHONE][0][VALUE]=…`); Bitrix24 reads it with parse_str.
 */
export function toQuery(params: Params): string {
  const parts: string[] = [];
  const add = (key: string, value: unknown): void => {
    if (value === undefined) return;
    if (value === null) return void parts.push(`${key}=`);
    if (Array.isArray(value)) {
      const scalars = value.every((v) => typeof v !== 'object' || v === null);
      value.forEach((v, i) => add(`${key}[${scalars ? '' : i}]`, v));
      return;
    }
    if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) add(`${key}[${encodeURIComponent(k)}]`, v);
      return;
    }
    parts.push(`${key}=${encodeURIComponent(String(value as string | number | boolean))}`);
  };
  for (const [k, v] of Object.entries(params)) add(encodeURIComponent(k), v);
  return parts.join('&');
}
