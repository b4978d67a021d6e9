// Workflow decisions on the Java time-skipping test server, with plain functions for activities
// (the shape of Temporal's own samples). Each test gets task queues and workers of its own; the
// server is started once per file. Time is the server's: it goes at the wall clock's pace while a
// test pokes the workflow, and jumps (firing timers) only when a test skips it or awaits a result.
import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import {
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { CallAttemptNote, CrmLeadInput, RegisteredLead } from '../../activities/bitrix24';
import type { SmsInput, SmsResult } from '../../activities/sms';
import type { CrmLeadLink, SellerAlert } from '../../activities/telegram';
import type { PlaceCallInput, PlaceCallResult } from '../../activities/voximplant';
import type { SealOutcome } from '../../support/callClaims';
import type { WakeSlot } from '../../support/wakeSlots';
import { parseWorkingSchedule } from '../../domain/workingHours';
import {
  claimCallUpdate,
  getLeadStateQuery,
  operatorActionUpdate,
  reportCallResultSignal,
  reportCallResultUpdate,
} from '../../workflows/definitions';
import type { processLead } from '../../workflows/processLead';
import type {
  CallReport,
  CallResult,
  LeadInput,
  LeadPolicy,
  LeadState,
  LeadStatus,
  OperatorAction,
} from '../../workflows/types';
import { startTimeSkippingServer, workflowBundle } from '../support/env';

const EventType = temporal.api.enums.v1.EventType;

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const HOURS = '09:00-21:00';

let serverTainted = false;

/**
 * Starts the time-skipping server before the file's tests and stops it after; returns a getter.
 * A test that had to terminate its run (it failed midway) gets the next test a fresh server: the
 * Java test server can keep its clock from skipping after a run is terminated with work in flight.
 * Each test reads the clock at its start: waiting for a result lets the server move its clock far
 * ahead (to its next deadline) once the run is over.
 */
/**
 * The time-skipping server for this test file (restarted when a test left it unusable), and a
 * zone where it is now noon, the middle of the working day.
 */
export function useTimeSkippingServer(): (() => TestWorkflowEnvironment) & { dayZone(): Promise<Zone> } {
  let env: TestWorkflowEnvironment | undefined;
  beforeAll(async () => {
    env = await startTimeSkippingServer();
  }, 60_000);
  beforeEach(async () => {
    if (!serverTainted) return;
    serverTainted = false;
    await env?.teardown();
    env = await startTimeSkippingServer();
  }, 60_000);
  afterAll(async () => {
    await env?.teardown();
  });
  const current = () => {
    if (!env) throw new Error('the test server is not running');
    return env;
  };
  return Object.assign(current, {
    dayZone: async () => zoneAtLocalHour(await current().currentTimeMs(), 12),
  });
}

// ---------------------------------------------------------------------------------------------
// Time zones: the server's clock is the real one at start, so each test picks the zone whose local
// time is what it needs. Etc/GMT zones have no DST, so local times are plain arithmetic here and
// the workflow's own time-zone code is checked against it.

export interface Zone {
  /** IANA name, e.g. Etc/GMT-5 (which is UTC+5). */
  name: string;
  offsetHours: number;
}

/** The zone where `now` falls in the hour `localHour` (0..23). */
export function zoneAtLocalHour(now: number, localHour: number): Zone {
  const utcHour = new Date(now).getUTCHours();
  let offset = (((localHour - utcHour) % 24) + 24) % 24;
  if (offset > 14) offset -= 24;
  const name = offset === 0 ? 'Etc/GMT' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`;
  return { name, offsetHours: offset };
}

/** Epoch ms of hh:mm local time in `zone`, `dayOffset` local days after the day of `now`. */
export function localTime(now: number, zone: Zone, hhmm: string, dayOffset = 0): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  const shift = zone.offsetHours * HOUR;
  const localMidnight = Math.floor((now + shift) / DAY) * DAY;
  return localMidnight + dayOffset * DAY + h * HOUR + m * MINUTE - shift;
}

// ---------------------------------------------------------------------------------------------
// The lead and its policy.

/** Each lead's task queues are its own (so each test's workers and stubs are its own). */
export function queuesOf(ref: string): { main: string; crm: string; call: string } {
  return { main: `wf-${ref}`, crm: `wf-${ref}-crm`, call: `wf-${ref}-call` };
}

export function policyOf(ref: string, overrides: Partial<LeadPolicy> = {}): LeadPolicy {
  const hours = overrides.workingHoursText ?? HOURS;
  return {
    workingSchedule: parseWorkingSchedule(hours),
    workingHoursText: hours,
    retryDelayMs: 30 * MINUTE,
    maxAttempts: 3,
    resultTimeoutMs: 10 * MINUTE,
    callTaskQueue: queuesOf(ref).call,
    crmTaskQueue: queuesOf(ref).crm,
    resultUrl: 'http://127.0.0.1:1/api/voximplant/result',
    claimUrl: 'http://127.0.0.1:1/api/voximplant/claim',
    manualHandlingTimeoutMs: DAY,
    texts: {
      nightSms: 'Здравствуйте, {name}! Перезвоним вам в рабочее время ({hours}).',
      confirmationSms: '{name}, ваш заказ принят.',
      voicemailSms: '{name}, мы вам звонили и не дозвонились.',
    },
    ...overrides,
  };
}

export function leadInput(
  zone: Zone,
  overrides: Partial<Omit<LeadInput, 'policy'>> & { policy?: Partial<LeadPolicy> } = {},
): LeadInput {
  const { policy, ...rest } = overrides;
  const ref = rest.ref ?? `ref-${randomUUID().slice(0, 8)}`;
  return {
    ref,
    name: 'Анна',
    phone: '79161234567',
    phoneCallable: true,
    timezone: zone.name,
    source: 'api',
    receivedAt: 0,
    warnings: [],
    ...rest,
    policy: policyOf(ref, policy),
  };
}

// ---------------------------------------------------------------------------------------------
// Stub activities: plain functions that record each call with the server's time of its schedule.

export interface ActivityCall<I = unknown> {
  name: string;
  /** The server's (skipped) time at which the workflow scheduled this attempt. */
  at: number;
  taskQueue: string;
  input: I;
}

type CallNotes = { leadId: number; notes: Array<Omit<CallAttemptNote, 'leadId'>> };

/** What a test makes an activity do instead of succeeding at once. */
export interface StubBehaviour {
  registerLead?: (input: Omit<CrmLeadInput, 'partner'>) => Promise<RegisteredLead>;
  recordCallAttempts?: (batch: CallNotes) => Promise<void>;
  placeRobotCall?: (input: PlaceCallInput) => Promise<PlaceCallResult>;
  sendSms?: (input: SmsInput) => Promise<SmsResult>;
  notifySellers?: (alert: SellerAlert) => Promise<{ messageId: number }>;
  notifySellersCrmLead?: (link: CrmLeadLink) => Promise<{ messageId: number }>;
  /** A local activity: the lead's place in the morning's queue (default: the first, at the opening). */
  takeWakeSlot?: (input: { windowStart: number }) => Promise<WakeSlot>;
}

/**
 * The attempts' claims as Temporal holds them (support/callClaims, whose own test runs it on a
 * real server): the first of a claim or the lead's seal wins an attempt; the same session is
 * granted again. The claim endpoint's own refusals (night, claimUntil) are the API's tests'.
 */
class ClaimBoard {
  private readonly won = new Map<number, { sessionId?: string; sealed?: boolean; at: number }>();
  constructor(readonly now: () => Promise<number>) {}

  /** The claim of a session that holds the attempt: its time and session. */
  holderOf(attempt: number): { at: number; sessionId?: string } | Record<string, never> {
    const held = this.won.get(attempt);
    if (!held || held.sealed) return {};
    return { at: held.at, ...(held.sessionId ? { sessionId: held.sessionId } : {}) };
  }

  async claim(attempt: number, sessionId?: string): Promise<{ claimed: true }> {
    const held = this.won.get(attempt);
    if (!held) {
      this.won.set(attempt, { sessionId, at: await this.now() });
      return { claimed: true };
    }
    if (held.sealed) throw new Error(`call attempt ${attempt} is not awaited`);
    if (sessionId !== undefined && held.sessionId === sessionId) return { claimed: true };
    throw new Error(`call attempt ${attempt} is already claimed`);
  }

  async seal(attempt: number): Promise<SealOutcome> {
    const held = this.won.get(attempt);
    if (!held) {
      this.won.set(attempt, { sealed: true, at: await this.now() });
      return { claimed: false };
    }
    if (held.sealed) return { claimed: false };
    return { claimed: true, at: held.at, ...(held.sessionId ? { sessionId: held.sessionId } : {}) };
  }
}

export const CRM_LEAD_ID = 4242;

export class Stubs {
  readonly calls: ActivityCall[] = [];
  private waiters: Array<() => void> = [];
  private gates = new Map<string, { wait: Promise<void>; open(): void }>();

  /** The claims of this lead's attempts: `claimCall` takes one as the claim endpoint would. */
  claims?: ClaimBoard;

  constructor(private readonly behaviour: StubBehaviour = {}) {}

  /** The board of `env`'s clock; the harness sets it before the lead starts. */
  useClock(now: () => Promise<number>): void {
    this.claims = new ClaimBoard(now);
  }

  /**
   * A named promise a stub can wait on until the test opens it (the harness opens every gate when
   * the test ends, so no stub is left hanging).
   */
  gate(name: string): { wait: Promise<void>; open(): void } {
    let g = this.gates.get(name);
    if (!g) {
      let open!: () => void;
      const wait = new Promise<void>((resolve) => (open = resolve));
      g = { wait, open };
      this.gates.set(name, g);
    }
    return g;
  }

  openGates(): void {
    for (const g of this.gates.values()) g.open();
  }

  /** Records the call, then runs the test's behaviour for it or the default. */
  private stub<I, O>(
    name: string,
    custom: ((input: I) => Promise<O>) | undefined,
    standard: (input: I) => O,
  ) {
    return async (input: I): Promise<O> => {
      const info = Context.current().info;
      // The server's clock when the workflow scheduled this attempt: workflow time, not wall time.
      this.calls.push({
        name,
        at: info.currentAttemptScheduledTimestampMs,
        taskQueue: info.taskQueue,
        input,
      });
      for (const wake of this.waiters.splice(0)) wake();
      return custom ? custom(input) : standard(input);
    };
  }

  get activities() {
    const b = this.behaviour;
    return {
      registerLead: this.stub('registerLead', b.registerLead, (input): RegisteredLead => ({
        leadId: CRM_LEAD_ID,
        created: true,
        partner: input.partnerCode
          ? { status: 'found', partner: { id: 7, title: 'Партнёр Семь', code: input.partnerCode } }
          : undefined,
      })),
      recordCallAttempts: this.stub<CallNotes, void>('recordCallAttempts', b.recordCallAttempts, () => {}),
      placeRobotCall: this.stub('placeRobotCall', b.placeRobotCall, (input) => ({
        callSessionHistoryId: 1000 + input.attempt,
        deduplicated: false,
      })),
      sendSms: this.stub('sendSms', b.sendSms, (): SmsResult => ({
        status: 'sent',
        smsId: `sms-${this.sms.length}`,
      })),
      notifySellers: this.stub('notifySellers', b.notifySellers, () => ({ messageId: this.alerts.length })),
      notifySellersCrmLead: this.stub('notifySellersCrmLead', b.notifySellersCrmLead, () => ({
        messageId: this.alerts.length,
      })),
      takeWakeSlot: this.stub('takeWakeSlot', b.takeWakeSlot, ({ windowStart }): WakeSlot => ({
        place: 0,
        wakeAt: windowStart,
      })),
      sealCallAttempt: async (input: {
        runId: string;
        attempt: number;
        holdMs: number;
        readOnly?: boolean;
      }) => {
        // A reported attempt is read, not sealed: it was dialled (as in activities/index.ts).
        const outcome: SealOutcome = input.readOnly
          ? {
              ...{ claimed: true as const, at: await this.claims!.now() },
              ...this.claims!.holderOf(input.attempt),
            }
          : await this.claims!.seal(input.attempt);
        this.calls.push({ name: 'sealCallAttempt', at: -1, taskQueue: 'local', input });
        for (const wake of this.waiters.splice(0)) wake();
        return outcome;
      },
    };
  }

  of<I = unknown>(name: string): Array<ActivityCall<I>> {
    return this.calls.filter((c) => c.name === name) as Array<ActivityCall<I>>;
  }

  /** Robot calls placed, in order. */
  get robotCalls(): Array<ActivityCall<PlaceCallInput>> {
    return this.of<PlaceCallInput>('placeRobotCall');
  }

  get sms(): Array<ActivityCall<SmsInput>> {
    return this.of<SmsInput>('sendSms');
  }

  get alerts(): Array<ActivityCall<SellerAlert>> {
    return this.of<SellerAlert>('notifySellers');
  }

  /** The sellers' alerts of one kind, in order (a manual-handling alert may overtake the new-lead one). */
  alertsOf(kind: SellerAlert['kind']): SellerAlert[] {
    return this.alerts.map((a) => a.input).filter((a) => a.kind === kind);
  }

  /** Which SMS went out, in order: night, confirmation, voicemail (the idempotency key's end). */
  get smsKinds(): string[] {
    return this.sms.map((c) => c.input.idempotencyKey.split('/').pop()!);
  }

  /** Every note written to the CRM lead, in order. */
  get crmNotes(): Array<{ leadId: number; comment: string; statusId?: string }> {
    return this.of<CallNotes>('recordCallAttempts').flatMap((c) =>
      c.input.notes.map((n) => ({ leadId: c.input.leadId, ...n })),
    );
  }

  /** Resolves once `name` has been called `count` times. */
  async waitForCalls(name: string, count: number): Promise<void> {
    while (this.of(name).length < count) await new Promise<void>((wake) => this.waiters.push(wake));
  }
}

// ---------------------------------------------------------------------------------------------
// Running a lead.

export type LeadHandle = WorkflowHandleWithFirstExecutionRunId<typeof processLead>;

export interface LeadRun {
  env: TestWorkflowEnvironment;
  handle: LeadHandle;
  stubs: Stubs;
  input: LeadInput;
}

/**
 * Starts `processLead` for `input` and runs `body` while three workers run, wired as the service
 * wires them: the workflow, alerts and SMS on the main queue, Bitrix24 on the CRM queue, the robot
 * call on the call queue (an activity on a wrong queue would never run). The workers stop after,
 * and the run is terminated if `body` left it open.
 */
export async function withLead<T>(
  env: TestWorkflowEnvironment,
  stubs: Stubs,
  input: LeadInput,
  body: (run: LeadRun) => Promise<T>,
): Promise<T> {
  const mainQueue = queuesOf(input.ref).main;
  const connection = env.nativeConnection;
  const namespace = env.namespace ?? 'default';
  const {
    registerLead,
    recordCallAttempts,
    placeRobotCall,
    sendSms,
    notifySellers,
    notifySellersCrmLead,
    takeWakeSlot,
    sealCallAttempt,
  } = stubs.activities;
  stubs.useClock(() => env.currentTimeMs());
  const [main, crm, call] = await Promise.all([
    Worker.create({
      connection,
      namespace,
      taskQueue: mainQueue,
      ...workflowBundle(),
      // A lead's first call runs on its own queue (eager), later ones on the call queue.
      activities: {
        sendSms,
        notifySellers,
        notifySellersCrmLead,
        takeWakeSlot,
        sealCallAttempt,
        placeRobotCall,
      },
    }),
    Worker.create({
      connection,
      namespace,
      taskQueue: input.policy.crmTaskQueue,
      activities: { registerLead, recordCallAttempts },
    }),
    Worker.create({
      connection,
      namespace,
      taskQueue: input.policy.callTaskQueue,
      activities: { placeRobotCall },
    }),
  ]);
  return crm.runUntil(() =>
    call.runUntil(() =>
      main.runUntil(async () => {
        const handle = await env.client.workflow.start<typeof processLead>('processLead', {
          taskQueue: mainQueue,
          workflowId: `lead-${input.ref}`,
          args: [input],
        });
        try {
          return await body({ env, handle, stubs, input });
        } finally {
          await closeRun(handle, stubs);
        }
      }),
    ),
  );
}

/**
 * Terminates a run the test left open (one that failed midway) and has the next test start on a
 * fresh server (see useTimeSkippingServer). Tests that pass end their runs themselves.
 */
async function closeRun(handle: LeadHandle, stubs: Stubs): Promise<void> {
  stubs.openGates();
  if ((await handle.describe()).status.name !== 'RUNNING') return;
  serverTainted = true;
  await handle.terminate('the test is over').catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// Poking the workflow the way the API does.

export function state(handle: LeadHandle): Promise<LeadState> {
  return handle.query(getLeadStateQuery);
}

/** Polls the lead's state until `ok` holds; no timer is skipped to meanwhile. */
export async function waitForState(
  handle: LeadHandle,
  ok: (s: LeadState) => boolean,
  what = 'the expected state',
): Promise<LeadState> {
  let last: LeadState | undefined;
  for (let i = 0; i < 2_000; i++) {
    last = await state(handle);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never reached ${what}; last state: ${JSON.stringify(last)}`);
}

export function waitForStatus(handle: LeadHandle, status: LeadStatus): Promise<LeadState> {
  return waitForState(handle, (s) => s.status === status, status);
}

/** Waits until attempt `n` has been placed and its report is awaited. */
export function waitForRinging(handle: LeadHandle, n: number): Promise<LeadState> {
  return waitForState(
    handle,
    (s) => s.status === 'WaitingForResult' && s.attempts === n,
    `attempt ${n} waiting for its result`,
  );
}

/** The scenario's report, as the result endpoint sends it. */
export function reportResult(
  handle: LeadHandle,
  attempt: number,
  result: CallResult,
  extra: Partial<CallReport> = {},
): Promise<{ accepted: true }> {
  return handle.executeUpdate(reportCallResultUpdate, {
    args: [{ attempt, result, duration: 12, ...extra }],
  });
}

/** The report of an attempt placed by 1.9.0 or later (its token says `rs`), as the result endpoint sends it. */
export function reportResultBySignal(
  handle: LeadHandle,
  attempt: number,
  result: CallResult,
  extra: Partial<CallReport> = {},
): Promise<void> {
  return handle.signal(reportCallResultSignal, { attempt, result, duration: 12, ...extra });
}

/** The scenario's claim of an attempt before it dials, decided as Temporal decides it (no task of the lead). */
export function claimCall(stubs: Stubs, attempt: number, sessionId?: string): Promise<{ claimed: true }> {
  return stubs.claims!.claim(attempt, sessionId);
}

/** The claim of an attempt placed before 1.7.0 (its token has no `du`): an update of the lead. */
export function claimCallByUpdate(
  handle: LeadHandle,
  attempt: number,
  sessionId?: string,
): Promise<{ claimed: true }> {
  return handle.executeUpdate(claimCallUpdate, { args: [{ attempt, sessionId }] });
}

/** An operator's action, as the API sends it; resolves with the state the update answers. */
export function operatorAction(handle: LeadHandle, action: OperatorAction): Promise<LeadState> {
  return handle.executeUpdate(operatorActionUpdate, { args: [action] });
}

/** Sends the action and resolves once the validator has accepted it (the handler may still wait). */
export async function operatorActionAccepted(handle: LeadHandle, action: OperatorAction) {
  return handle.startUpdate(operatorActionUpdate, {
    args: [action],
    waitForStage: WorkflowUpdateStage.ACCEPTED,
  });
}

/** The message an update's validator refused with; fails the test if the update was accepted. */
export async function refusal(update: Promise<unknown>): Promise<string> {
  try {
    await update;
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) return err.cause?.message ?? err.message;
    // A claim refused as Temporal refuses it (ClaimBoard): the claim endpoint's 409 message.
    if (err instanceof Error && /^call attempt \d+ /.test(err.message)) return err.message;
    throw err;
  }
  throw new Error('the update was accepted');
}

// ---------------------------------------------------------------------------------------------
// History.

export interface TimerStarted {
  /** The workflow's clock in the task that started it (what `Date.now()` read there). */
  startedAt: number;
  durationMs: number;
  firesAt: number;
}

/** Every timer the workflow started, in order, with its exact duration. */
export async function timersStarted(handle: LeadHandle): Promise<TimerStarted[]> {
  const { events } = await handle.fetchHistory();
  const timers: TimerStarted[] = [];
  let clock = 0;
  for (const e of events ?? []) {
    // Workflow code reads the start time of its workflow task as the current time.
    if (e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) clock = tsToMs(e.eventTime);
    if (e.eventType === EventType.EVENT_TYPE_TIMER_STARTED) {
      const durationMs = tsToMs(e.timerStartedEventAttributes!.startToFireTimeout);
      timers.push({ startedAt: clock, durationMs, firesAt: clock + durationMs });
    }
  }
  return timers;
}

/** The timers of at least a minute: the call process's own (the update handler's wait is seconds). */
export async function processTimers(handle: LeadHandle): Promise<TimerStarted[]> {
  return (await timersStarted(handle)).filter((t) => t.durationMs >= MINUTE);
}

/**
 * Waits until the call process has started a timer that `ok` accepts and returns the latest such
 * timer. The state a query shows can be ahead of the history: the timer's event is written when
 * the workflow task that started it completes.
 */
export async function waitForTimer(
  handle: LeadHandle,
  ok: (t: TimerStarted) => boolean,
  what = 'the expected timer',
): Promise<TimerStarted> {
  let timers: TimerStarted[] = [];
  for (let i = 0; i < 500; i++) {
    timers = await processTimers(handle);
    const found = timers.filter(ok).at(-1);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never started ${what}; timers: ${JSON.stringify(timers)}`);
}

/** Skips the server's clock forward by `ms` (timers due meanwhile fire). */
export async function skip(env: TestWorkflowEnvironment, ms: number): Promise<void> {
  await env.sleep(ms);
}

/** Skips the server's clock to `at` (nothing to do if it is already past). */
export async function skipTo(env: TestWorkflowEnvironment, at: number): Promise<void> {
  const now = await env.currentTimeMs();
  if (at > now) await env.sleep(at - now);
}

/** The lead's own history lines (LeadState.history), text only. */
export function historyLines(s: LeadState): string[] {
  return s.history.map((h) => h.what);
}
