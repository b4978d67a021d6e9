// The dashboard's shared aggregate on a stand-in for Temporal's client and a virtual clock: what
// many concurrent readers cost, how often a piece is read again, what a failed read leaves behind,
// and which per-lead reads are made again (and which never).
import { WorkflowNotFoundError } from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { LeadBoard, MAX_LEADS } from '../api/leadBoard';
import type { AppConfig } from '../config';
import type { Logger } from '../support/logger';
import {
  CallAttemptsKey,
  LeadPartnerKey,
  LeadSiteKey,
  LeadStatusKey,
  OrderAmountKey,
} from '../workflows/searchAttributes';
import type { LeadState } from '../workflows/types';
import { VirtualClock } from './support/virtualClock';

const REFRESH = 5_000;
const T0 = Date.UTC(2026, 0, 5, 9);

interface FakeLead {
  id: string;
  start: number;
  status: string;
  execution?: 'RUNNING' | 'COMPLETED';
  attempts?: number;
  partner?: string;
  site?: string;
  amount?: number;
  state?: Partial<LeadState>;
}

/** A stand-in for the client: answers from `leads`, counts every call, fails while `failing`. */
function fakeTemporal() {
  const leads: FakeLead[] = [];
  const calls = { list: [] as string[], query: [] as string[], result: [] as string[], describeTaskQueue: 0 };
  const control = { failing: false };
  const info = (l: FakeLead): WorkflowExecutionInfo =>
    ({
      workflowId: l.id,
      runId: `run-${l.id}`,
      startTime: new Date(l.start),
      status: { name: l.execution ?? 'RUNNING' },
      memo: { phone: '7916***4567', city: '', partner: l.partner ?? '' },
      typedSearchAttributes: new TypedSearchAttributes([
        { key: LeadStatusKey, value: l.status },
        { key: CallAttemptsKey, value: l.attempts ?? 1 },
        ...(l.partner ? [{ key: LeadPartnerKey, value: l.partner }] : []),
        ...(l.site ? [{ key: LeadSiteKey, value: l.site }] : []),
        ...(l.amount !== undefined ? [{ key: OrderAmountKey, value: l.amount }] : []),
      ] as SearchAttributePair[]),
    }) as unknown as WorkflowExecutionInfo;
  const stateOf = (l: FakeLead): LeadState => ({
    ref: `ref-${l.id}`,
    status: 'Calling',
    attempts: l.attempts ?? 1,
    nightSmsSent: false,
    history: [
      { at: l.start, what: 'заявка принята (api)' },
      ...(l.attempts === 0 ? [] : [{ at: l.start + 2_000, what: 'звонок, попытка 1' }]),
    ],
    ...l.state,
  });
  const find = (id: string) => leads.find((l) => l.id === id)!;
  const client = {
    workflow: {
      list({ query }: { query: string }) {
        calls.list.push(query);
        return (async function* () {
          await Promise.resolve();
          if (control.failing) throw new Error('visibility unavailable');
          const since = /StartTime >= '([^']+)'/.exec(query)?.[1];
          const until = /StartTime < '([^']+)'/.exec(query)?.[1];
          const running = query.includes("ExecutionStatus = 'Running'");
          for (const l of [...leads].sort((a, b) => b.start - a.start)) {
            if (since && l.start < Date.parse(since)) continue;
            if (until && l.start >= Date.parse(until)) continue;
            if (running && (l.execution === 'COMPLETED' || !query.includes(`'${l.status}'`))) continue;
            yield info(l);
          }
        })();
      },
      getHandle(id: string) {
        return {
          // No attempt's claim is held in Temporal here (support/callClaims): only the history tells.
          async describe() {
            throw new WorkflowNotFoundError('no such workflow', id, undefined);
          },
          async query() {
            calls.query.push(id);
            return stateOf(find(id));
          },
          async result() {
            calls.result.push(id);
            return stateOf(find(id));
          },
        };
      },
    },
    workflowService: {
      async describeTaskQueue() {
        calls.describeTaskQueue += 1;
        return { stats: { approximateBacklogCount: 3 } };
      },
    },
  } as unknown as Client;
  return { client, leads, calls, control };
}

const config = {
  dashboard: { refreshMs: REFRESH },
  temporal: { namespace: 'default', taskQueue: 'leads', crmTaskQueue: 'crm' },
} as unknown as AppConfig;
const logger = { warn: () => undefined } as unknown as Logger;

function setUp() {
  const temporal = fakeTemporal();
  const clock = new VirtualClock(T0);
  const board = new LeadBoard({ client: temporal.client, config, logger, clock });
  return { ...temporal, clock, board };
}

const dashboards = (calls: { list: string[] }) => calls.list.filter((q) => !q.includes('ExecutionStatus'));
const queues = (calls: { list: string[] }) => calls.list.filter((q) => q.includes('ExecutionStatus'));

test('forty concurrent readers cost one read of each piece; the next read comes only after the interval', async () => {
  const { board, leads, calls, clock } = setUp();
  leads.push(
    { id: 'a', start: T0 - 60_000, status: 'Answered', partner: 'p1', site: 's1', amount: 1000 },
    { id: 'b', start: T0 - 30_000, status: 'ManualHandling', site: 's1', amount: 2500.5 },
  );
  const answers = await Promise.all([
    ...Array.from({ length: 20 }, () => board.leads()),
    ...Array.from({ length: 20 }, () => board.queue()),
  ]);
  expect(dashboards(calls)).toHaveLength(1);
  expect(queues(calls)).toHaveLength(1);
  expect(answers.slice(0, 20).map((a) => ('rows' in a ? a.rows.length : -1))).toEqual(Array(20).fill(2));
  // The console's row needed its ref once; the per-lead reads are not repeated per reader.
  expect(calls.query).toEqual(['b']);

  leads.push({ id: 'c', start: T0 + 1_000, status: 'Calling', site: 's2' });
  // "At most every interval": a piece exactly an interval old is still served.
  await clock.advance(REFRESH);
  expect((await board.leads()).rows.map((r) => r.workflowId)).toEqual(['b', 'a']);
  expect(dashboards(calls)).toHaveLength(1);

  await clock.advance(1);
  const fresh = await board.leads();
  expect(fresh.rows.map((r) => r.workflowId)).toEqual(['c', 'b', 'a']);
  expect(fresh.asOf).toBe(T0 + REFRESH + 1);
  expect(dashboards(calls)).toHaveLength(2);
});

test('a failed read is not kept: readers get the last good piece with its time, and the next reader tries again', async () => {
  const { board, leads, calls, clock, control } = setUp();
  // Nothing read yet: a failure is the readers' error.
  control.failing = true;
  await expect(board.leads()).rejects.toThrow('visibility unavailable');
  control.failing = false;
  leads.push({ id: 'a', start: T0 - 1_000, status: 'Answered' });
  const good = await board.leads();
  expect(good.asOf).toBe(T0);

  leads.push({ id: 'b', start: T0 + 1_000, status: 'Answered' });
  await clock.advance(REFRESH + 1);
  control.failing = true;
  const during = await Promise.all([board.leads(), board.leads(), board.leads()]);
  expect(during.map((d) => [d.asOf, d.rows.length])).toEqual(Array(3).fill([T0, 1]));
  const before = dashboards(calls).length;
  control.failing = false;
  // Same instant: the failure did not count as a refresh.
  const after = await board.leads();
  expect([after.asOf, after.rows.length]).toEqual([T0 + REFRESH + 1, 2]);
  expect(dashboards(calls)).toHaveLength(before + 1);
});

test('periods within the recent read cost nothing more; older ones are shared per period and bounded', async () => {
  const { board, leads, calls } = setUp();
  const day = 86_400_000;
  leads.push(
    { id: 'new', start: T0 - day, status: 'Answered', site: 's' },
    { id: 'old', start: T0 - 100 * day, status: 'Answered', site: 's' },
  );
  const week = await board.leads({ from: new Date(T0 - 7 * day), to: new Date(T0 + day) });
  expect(week.rows.map((r) => r.workflowId)).toEqual(['new']);
  expect(dashboards(calls)).toHaveLength(1);

  const older = { from: new Date(T0 - 120 * day), to: new Date(T0 - 90 * day) };
  const answers = await Promise.all(Array.from({ length: 10 }, () => board.leads(older)));
  expect(answers.map((a) => a.rows.map((r) => r.workflowId))).toEqual(Array(10).fill(['old']));
  expect(dashboards(calls)).toHaveLength(2);

  // Many distinct older periods: each read once, the least recently asked dropped.
  for (let i = 0; i < 6; i += 1) {
    await board.leads({ from: new Date(T0 - (200 + i) * day), to: new Date(T0 - 90 * day) });
  }
  expect(dashboards(calls)).toHaveLength(8);
  await board.leads(older);
  expect(dashboards(calls)).toHaveLength(9);

  await expect(board.leads({ from: new Date(T0), to: new Date(T0) })).rejects.toMatchObject({ status: 400 });
});

test('one piece holds at most MAX_LEADS leads, and says so', async () => {
  const { board, leads } = setUp();
  for (let i = 0; i <= MAX_LEADS; i += 1)
    leads.push({ id: `l${i}`, start: T0 - 1_000 - i, status: 'Answered' });
  const all = await board.leads();
  expect(all.rows).toHaveLength(MAX_LEADS);
  expect(all.truncated).toBe(true);
});

test('the time to the first call is read once per lead once known; a lead not called yet is asked again after an interval', async () => {
  const { board, leads, calls, clock } = setUp();
  leads.push(
    { id: 'done', start: T0 - 50_000, status: 'Answered', execution: 'COMPLETED' },
    { id: 'called', start: T0 - 40_000, status: 'Calling' },
    {
      id: 'ringing',
      start: T0 - 30_000,
      status: 'Calling',
      state: { history: [{ at: T0 - 30_000, what: 'x' }] },
    },
    { id: 'night', start: T0 - 20_000, status: 'WaitingForWorkingHours', attempts: 0 },
    { id: 'junk', start: T0 - 10_000, status: 'PhoneNotDialable', attempts: 0 },
  );
  const { rows } = await board.leads();
  const first = await Promise.all(Array.from({ length: 5 }, () => board.firstCallSeconds(rows)));
  expect(first[0]).toEqual([undefined, undefined, undefined, 2, 2]);
  // Never called (as visibility says) is not asked at all; the rest once, however many readers.
  expect(calls.query.sort()).toEqual(['called', 'ringing']);
  expect(calls.result).toEqual(['done']);

  await board.firstCallSeconds(rows);
  expect(calls.query).toHaveLength(2);
  await clock.advance(REFRESH + 1);
  await board.firstCallSeconds(rows);
  expect(calls.query.sort()).toEqual(['called', 'ringing', 'ringing']);
  expect(calls.result).toEqual(['done']);
});

test('a console row’s state is read again only when what visibility shows of it changes', async () => {
  const { board, leads, calls, clock } = setUp();
  const lead: FakeLead = {
    id: 'm',
    start: T0 - 1_000,
    status: 'ManualHandling',
    attempts: 2,
    state: { lastResult: 'no_answer' },
  };
  leads.push(lead, {
    id: 'p',
    start: T0 - 500,
    status: 'Calling',
    partner: 'code7',
    // Its CRM lookup has not answered yet: the title comes later, without a visible change.
    state: { partner: undefined },
  });
  const q1 = await board.queue();
  expect(q1.manual.map((e) => e.state)).toEqual([{ ref: 'ref-m', lastResult: 'no_answer' }]);
  expect(calls.query.sort()).toEqual(['m', 'p']);

  await clock.advance(REFRESH + 1);
  leads[1]!.state = { partner: { status: 'found', id: 7, title: 'Мебель' } };
  const q2 = await board.queue();
  expect(q2.active[0]!.state?.partner).toEqual({ status: 'found', id: 7, title: 'Мебель' });
  expect(calls.query.sort()).toEqual(['m', 'p', 'p']);

  await clock.advance(REFRESH + 1);
  await board.queue();
  expect(calls.query).toHaveLength(3);

  // An operator's "call again": status and attempts change, so its row is read again.
  Object.assign(lead, { status: 'Calling', attempts: 3, state: { lastResult: 'busy' } });
  await clock.advance(REFRESH + 1);
  const q4 = await board.queue();
  expect(q4.active.map((e) => e.state?.lastResult)).toEqual(['busy', undefined]);
  expect(calls.query.filter((id) => id === 'm')).toHaveLength(2);
});

test('the backlogs are read once per interval', async () => {
  const { board, calls, clock } = setUp();
  const all = await Promise.all(Array.from({ length: 20 }, () => board.backlog()));
  expect(all[0]).toEqual({ asOf: T0, crm: 3, alerts: 3 });
  expect(calls.describeTaskQueue).toBe(2);
  await clock.advance(REFRESH + 1);
  await board.backlog();
  expect(calls.describeTaskQueue).toBe(4);
});
