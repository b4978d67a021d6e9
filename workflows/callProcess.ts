// The robot-call process of a lead: quiet hours in the customer's zone, one VoxImplant call per
// attempt, the scenario's report awaited with a timeout, retries for missed calls, SMS, and manual
// handling. It runs inside the lead's workflow, which wires its handlers to `accept`, `act` and the
// CRM hooks; the call's state has one owner, this process, and the lead workflow reads it.
// Deterministic: time comes from the workflow clock, every side effect from an activity.
import { ActivityFailure, ApplicationFailure, condition, log } from '@temporalio/workflow';
import { fillTemplate } from '../domain/customerText';
import { currentOrNextWindow, isWorkingTime, nextWorkingTime } from '../domain/workingHours';
import { activity, sealCallAttempt, takeWakeSlot } from './activityOptions';
import { createCrmNoteQueue } from './crmNotes';
import { follows, follows1_2_0, RELEASE_1_3_0, RELEASE_1_5_0, RELEASE_1_7_0 } from './patches';
import {
  FINAL_STATUSES,
  type CallClaim,
  type CallReport,
  type CallResult,
  type CallState,
  type LeadInput,
  type LeadStatus,
  type ManualReason,
  type OperatorAction,
} from './types';

const MISSED: readonly CallResult[] = ['busy', 'no_answer', 'unavailable', 'failed'];

const notifySellers = activity('notifySellers');
const sendSms = activity('sendSms');

export interface CallProcessHooks {
  workflowId: string;
  runId: string;
  /** The call's state changed: the owner shows it (search attributes). */
  changed(): void;
  /** An event for the lead's history (at `at`, else now). */
  record(what: string, at?: number): void;
}

export interface CallProcess {
  readonly state: Readonly<CallState>;
  /** Resolves when the process has ended and its CRM notes are written. */
  run(): Promise<void>;
  /** The scenario's report for the awaited attempt (an update handler). */
  accept(report: CallReport): { accepted: true };
  /** Throws unless `report` is for the attempt being awaited (the update's validator). */
  validateReport(report: CallReport): void;
  /** The scenario's claim of the attempt it is about to dial (an update handler). */
  claim(claim: CallClaim): { claimed: true };
  /** Throws unless the attempt is awaited, unclaimed and not stopped (the update's validator). */
  validateClaim(claim: CallClaim): void;
  /**
   * Throws the reason an operator's action cannot be taken now (the update's validator). An action
   * it lets through is always taken: every wait of the process ends on it.
   */
  validateAction(action: OperatorAction): void;
  /** An operator's decision, validated; resolves once the process has taken it (bounded). */
  act(action: OperatorAction): Promise<void>;
  crmLeadCreated(leadId: number): void;
  crmLeadFailed(): void;
}

export function createCallProcess(input: LeadInput, hooks: CallProcessHooks): CallProcess {
  const { policy } = input;
  const { workflowId, runId } = hooks;
  const placeRobotCall = activity('placeRobotCall', policy.callTaskQueue);
  const crmNotes = createCrmNoteQueue(policy.crmTaskQueue);

  const state: CallState = { status: 'New', attempts: 0, nightSmsSent: false };
  let crmLeadId: number | undefined;
  let awaitedAttempt: number | undefined;
  let claimed: CallClaim | undefined;
  let report: CallReport | undefined;
  let pendingAction: OperatorAction | undefined;
  /** Set once the outcome is decided: from then on no operator action can change it. */
  let closed = false;

  const stopRequested = () => pendingAction?.action === 'cancel' || pendingAction?.action === 'handled';
  function takeAction(): OperatorAction | undefined {
    const action = pendingAction;
    pendingAction = undefined;
    state.pendingAction = undefined;
    return action;
  }

  function progress(next: LeadStatus, event?: string): void {
    state.status = next;
    if (event) hooks.record(event);
    hooks.changed();
  }

  async function sendSmsOnce(kind: 'night' | 'confirmation' | 'voicemail', text: string): Promise<void> {
    try {
      const res = await sendSms({
        idempotencyKey: `${workflowId}/${runId}/${kind}`,
        phone: input.phone,
        text,
      });
      if (res.status === 'skipped')
        await flagForPerson('sms_uncertain', `SMS (${kind}) may not have been sent`);
    } catch (err) {
      // The customer was promised a text and did not get it (the gateway refused it, the account is
      // out of money, retries ran out): a person calls or texts instead.
      log.warn('SMS failed', { kind, error: String(err) });
      const what = `SMS (${kind}) не отправлено: ${failureMessage(err)}`;
      hooks.record(what);
      await flagForPerson('sms_failed', what);
    }
  }

  async function alertManual(reason: ManualReason, detail: string): Promise<void> {
    try {
      await notifySellers({
        kind: 'manual_handling',
        ref: input.ref,
        workflowId,
        name: input.name,
        phone: input.phone,
        city: input.city,
        partner: input.partnerCode,
        site: input.site,
        orderAmount: input.orderAmount,
        crmLeadId,
        reason: `${reason}: ${detail}`,
        actions: true,
      });
    } catch (err) {
      log.error('could not alert sellers', { error: String(err) });
    }
  }

  // A notice that does not stop the call process (an uncertain SMS): flagged, alerted, goes on.
  async function flagForPerson(reason: ManualReason, detail: string): Promise<void> {
    state.manualReason = reason;
    hooks.changed();
    crmNotes.add(`Нужна ручная обработка: ${detail}`);
    await alertManual(reason, detail);
  }

  /** Waits for a person's decision; undefined when nobody acted in time. */
  async function awaitOperator(reason: ManualReason, detail: string): Promise<OperatorAction | undefined> {
    state.manualReason = reason;
    state.nextCallAt = undefined;
    progress('ManualHandling', detail);
    crmNotes.add(`Нужна ручная обработка: ${detail}`, 'IN_PROCESS');
    crmNotes.flush();
    // An operator who already stopped the lead needs no alert about it.
    if (!stopRequested()) await alertManual(reason, detail);
    await condition(() => pendingAction !== undefined, policy.manualHandlingTimeoutMs);
    const action = takeAction();
    if (action?.action === 'call_now') state.manualReason = undefined;
    return action;
  }

  /** The outcome is decided: shown at once, so no operator action is accepted against it. */
  function finish(final: LeadStatus, comment: string): void {
    closed = true;
    state.nextCallAt = undefined;
    crmNotes.add(comment, final === 'WrongNumber' ? 'JUNK' : undefined);
    // From 1.2.0 the notes go now, beside the last SMS rather than after it: the lead closes a
    // workflow task sooner.
    if (follows1_2_0()) crmNotes.flush();
    progress(final, comment);
  }

  function finishAfterManual(action: OperatorAction | undefined): void {
    if (action?.action === 'cancel') finish('Cancelled', `Отменено${by(action)}`);
    else if (action?.action === 'handled') finish('Handled', `Обработано вручную${by(action)}`);
    else finish('ManualHandling', 'Никто не обработал заявку вовремя');
  }

  /**
   * When this lead wakes for the window opening at `windowStart` (1.3.0 on): at its place in the
   * morning's queue, so the leads asleep for one window wake in the order they fell asleep, at the
   * morning's pace (MORNING_LEADS_PER_SECOND), not all at the opening. Without a place (DATA_DIR
   * unwritable), or past the window's end (a queue longer than the window), at the opening.
   */
  async function wakeTimeFor(windowStart: number): Promise<number> {
    try {
      const { wakeAt } = await takeWakeSlot({ windowStart });
      if (wakeAt >= windowStart && isWorkingTime(wakeAt, input.timezone, policy.workingSchedule))
        return wakeAt;
    } catch (err) {
      log.warn('no place in the morning queue: the lead wakes at the opening', { error: String(err) });
    }
    return windowStart;
  }

  // The customer's name only when it reads as one: a stranger's text in the name field is never
  // texted to the number it names.
  const fill = (template: string) => fillTemplate(template, input.name, { hours: policy.workingHoursText });

  /**
   * Whether the attempt just waited for was dialled: its claim was granted, by the lead's own
   * update (an attempt placed before 1.7.0) or by Temporal (then the lead seals it now, so no claim
   * after this is granted, and learns so whether one came first). A seal that could not be made
   * counts as dialled: a doubt never rings the customer twice.
   */
  async function wasDialled(attempt: number, reported: boolean): Promise<boolean> {
    const claimedByUpdate = claimed?.attempt === attempt;
    if (!follows(RELEASE_1_7_0)) return claimedByUpdate;
    let sealed;
    try {
      // A reported attempt was dialled (a session reports only after its claim): its claim is only
      // read, for its time; any other is sealed.
      sealed = await sealCallAttempt({
        runId,
        attempt,
        holdMs: policy.resultTimeoutMs + 3_600_000,
        ...(reported ? { readOnly: true } : {}),
      });
    } catch (err) {
      log.error('could not seal the call attempt: taken as dialled', { attempt, error: String(err) });
      return true;
    }
    if (sealed.claimed && !claimedByUpdate) {
      hooks.record(
        `звонок, попытка ${attempt}${sealed.sessionId ? ` (сессия ${sealed.sessionId})` : ''}`,
        sealed.at,
      );
    }
    return claimedByUpdate || sealed.claimed;
  }

  /** Runs the calls until the outcome is decided. */
  async function callUntilDecided(): Promise<void> {
    for (;;) {
      const action = takeAction();
      if (action?.action === 'cancel' || action?.action === 'handled') return finishAfterManual(action);

      const now = Date.now();
      if (!isWorkingTime(now, input.timezone, policy.workingSchedule)) {
        if (!state.nightSmsSent) {
          state.nightSmsSent = true;
          await sendSmsOnce('night', fill(policy.texts.nightSms));
        }
        state.nextCallAt = nextWorkingTime(now, input.timezone, policy.workingSchedule);
        progress('WaitingForWorkingHours');
        crmNotes.flush();
        // One timer to the window's opening, or to this lead's place after it (the SMS took some
        // time), not a polling loop; an operator may stop the lead meanwhile. NextCallAt shows the
        // opening: the lead is due then, its place only orders it among the others. The timer
        // counts from this task's clock read before the place is taken (the local activity moves
        // the clock on): it starts when the task completes, so it fires on time or just after.
        const sleptAt = Date.now();
        const wakeAt = follows(RELEASE_1_3_0) ? await wakeTimeFor(state.nextCallAt) : state.nextCallAt;
        await condition(stopRequested, Math.max(1, wakeAt - sleptAt));
        continue;
      }

      state.attempts += 1;
      state.nextCallAt = undefined;
      report = undefined;
      awaitedAttempt = state.attempts;
      progress('Calling');
      try {
        await placeRobotCall({
          workflowId,
          runId,
          ref: input.ref,
          attempt: state.attempts,
          name: input.name,
          phone: input.phone,
          resultUrl: policy.resultUrl,
          claimUrl: policy.claimUrl,
          tokenTtlSeconds: Math.ceil((policy.resultTimeoutMs + 3_600_000) / 1000),
          receivedAt: input.receivedAt,
          // The claim of this attempt is then Temporal's to decide, refused after the window's end.
          dialUntil: currentOrNextWindow(now, input.timezone, policy.workingSchedule).end,
          // The report comes as a signal (an activity's input is not part of its identity on
          // replay: a history that scheduled the call without it replays unchanged).
          reportBySignal: true,
        });
      } catch (err) {
        awaitedAttempt = undefined;
        const decision = await awaitOperator('call_provider_rejected', `VoxImplant: ${failureMessage(err)}`);
        if (decision?.action === 'call_now') continue;
        return finishAfterManual(decision);
      }
      progress('WaitingForResult');
      // The customer's phone may be ringing; an operator's cancel or "handled" wins over the report.
      await condition(() => report !== undefined || stopRequested(), policy.resultTimeoutMs);
      awaitedAttempt = undefined;
      const r = report as CallReport | undefined;
      // The clock of the task that ends the wait, read before the seal moves it on: a retry's timer
      // counts from here and starts when the task completes, so it fires on time or just after.
      const waitEndedAt = Date.now();
      const dialled = await wasDialled(state.attempts, r !== undefined);
      if (r) {
        state.lastResult = r.result;
        crmNotes.add(
          `Попытка ${state.attempts}: ${r.result}${r.code ? ` (код ${r.code})` : ''}, ${r.duration ?? 0} с`,
        );
      }
      if (stopRequested()) continue;
      // No claim granted for this attempt: its scenario never dialled (it dials only after a 200 on
      // its claim: a crashed session, a claim lost on the way or answered too late by a busy
      // service, or refused after the window closed), so nobody was rung and the lead is tried
      // again at once instead of waiting for a person; at night the loop puts it to sleep first.
      // The attempts still count, so a scenario that never claims ends with a person after
      // CALL_MAX_ATTEMPTS of them.
      if (!r && !dialled && follows(RELEASE_1_5_0)) {
        const what = `Попытка ${state.attempts}: звонка не было (сценарий не получил разрешения позвонить)`;
        log.warn('the call scenario never claimed its attempt: nobody was rung', { attempt: state.attempts });
        crmNotes.add(what);
        hooks.record(what);
        if (state.attempts < policy.maxAttempts) continue;
        const decision = await awaitOperator(
          'no_call_result',
          `звонка не было (попытка ${state.attempts}, сценарий не получил разрешения позвонить), попытки исчерпаны`,
        );
        if (decision?.action === 'call_now') continue;
        return finishAfterManual(decision);
      }
      if (!r) {
        crmNotes.add(`Попытка ${state.attempts}: нет отчёта о звонке`);
        const decision = await awaitOperator(
          'no_call_result',
          `нет отчёта о звонке (попытка ${state.attempts})`,
        );
        if (decision?.action === 'call_now') continue;
        return finishAfterManual(decision);
      }
      if (r.result === 'wrong_number') return finish('WrongNumber', 'Неверный номер: звонки прекращены');
      if (r.result === 'answered') {
        finish('Answered', 'Клиент ответил: SMS с подтверждением');
        return sendSmsOnce('confirmation', fill(policy.texts.confirmationSms));
      }
      if (r.result === 'voicemail') {
        finish('Voicemail', 'Автоответчик: SMS, повторных звонков нет');
        return sendSmsOnce('voicemail', fill(policy.texts.voicemailSms));
      }
      if (MISSED.includes(r.result)) {
        if (state.attempts >= policy.maxAttempts) {
          const decision = await awaitOperator(
            'attempts_exhausted',
            `недозвон после ${state.attempts} попыток`,
          );
          if (decision?.action === 'call_now') continue;
          return finishAfterManual(decision);
        }
        const missedAt = waitEndedAt;
        const due = missedAt + policy.retryDelayMs;
        state.nextCallAt = nextWorkingTime(due, input.timezone, policy.workingSchedule);
        progress('MissedCall', `недозвон (${r.result})`);
        crmNotes.flush();
        // A retry pushed past the night wakes at its place in the morning's queue, as a night lead.
        if (state.nextCallAt > due && follows(RELEASE_1_3_0)) {
          const wakeAt = await wakeTimeFor(state.nextCallAt);
          await condition(() => pendingAction !== undefined, wakeAt - missedAt);
        } else {
          await condition(() => pendingAction !== undefined, state.nextCallAt - missedAt);
        }
      }
    }
  }

  return {
    state,
    async run() {
      await callUntilDecided();
      await crmNotes.drained();
    },
    accept(r) {
      report = r;
      return { accepted: true } as const;
    },
    validateReport(r) {
      if (awaitedAttempt === undefined || r.attempt !== awaitedAttempt || report !== undefined) {
        throw new Error(`call attempt ${r.attempt} is not awaited`);
      }
    },
    claim(c) {
      if (claimed?.attempt === c.attempt) return { claimed: true } as const;
      claimed = c;
      hooks.record(`звонок, попытка ${c.attempt}${c.sessionId ? ` (сессия ${c.sessionId})` : ''}`);
      return { claimed: true } as const;
    },
    validateClaim(c) {
      if (awaitedAttempt === undefined || c.attempt !== awaitedAttempt) {
        throw new Error(`call attempt ${c.attempt} is not awaited`);
      }
      // The same session asking again (its answer was lost on the way) is granted again.
      const again = claimed?.attempt === c.attempt;
      if (again && (c.sessionId === undefined || claimed?.sessionId !== c.sessionId)) {
        throw new Error(`call attempt ${c.attempt} is already claimed`);
      }
      if (stopRequested()) throw new Error(`an operator's ${pendingAction!.action} stopped the call`);
      // A busy service answers a claim late, and the scenario asks for minutes: one that comes after
      // the customer's window closed is refused, so nobody is rung at night. The attempt then ends
      // without a report and, unclaimed, is tried again in the morning. Validators run only when a
      // claim arrives, never on replay: no patch needed.
      if (!isWorkingTime(Date.now(), input.timezone, policy.workingSchedule)) {
        throw new Error('outside working hours in the customer’s time zone: no calls at night');
      }
    },
    validateAction(action) {
      if (closed || FINAL_STATUSES.includes(state.status)) {
        throw new Error(`the lead is ${state.status}: nothing to do`);
      }
      if (pendingAction) throw new Error(`an operator's ${pendingAction.action} is being carried out`);
      if (action.action === 'call_now') {
        if (!['ManualHandling', 'MissedCall'].includes(state.status)) {
          throw new Error(`cannot call again while the lead is ${state.status}`);
        }
        if (!isWorkingTime(Date.now(), input.timezone, policy.workingSchedule)) {
          throw new Error('outside working hours in the customer’s time zone: no calls at night');
        }
      }
    },
    async act(action) {
      pendingAction = action;
      state.pendingAction = action.action;
      // Taken at once in every state but one: while StartScenarios is in flight, right after it.
      await condition(() => pendingAction !== action, '5s');
    },
    crmLeadCreated(id) {
      crmLeadId = id;
      crmNotes.leadCreated(id);
    },
    crmLeadFailed() {
      crmNotes.leadFailed();
    },
  };
}

function by(action: OperatorAction): string {
  return `${action.by ? ` (${action.by})` : ''}${action.note ? `: ${action.note}` : ''}`;
}

export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
