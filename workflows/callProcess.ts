// The robot-call process: quiet hours in the customer's zone, one VoxImplant call per attempt, the
// scenario's report awaited with a timeout, retries for missed calls, SMS, and manual handling.
// It runs inside the lead's workflow (and, for leads accepted before that change, inside the
// callCustomer workflow): the owner wires its handlers to `accept`, `act` and the CRM hooks, and
// decides how a status change is made known (`report`).
// Deterministic: time comes from the workflow clock, every side effect from an activity.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
} from '@temporalio/workflow';
import type { CallActivities, CrmActivities, LeadActivities } from '../activities';
import { isWorkingTime, nextWorkingTime } from '../domain/workingHours';
import type {
  CallInput,
  CallOutcome,
  CallProgress,
  CallReport,
  CallResult,
  LeadStatus,
  ManualReason,
  OperatorAction,
} from './types';

const MISSED: readonly CallResult[] = ['busy', 'no_answer', 'unavailable', 'failed'];

const alerts = proxyActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 8 },
});
// Each SMS costs money and reaches a person: the activity itself refuses to send twice, and a
// bounded retry keeps a gateway outage from looping forever.
const sms = proxyActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 6 },
});

export interface CallProcessOptions {
  workflowId: string;
  runId: string;
  /**
   * Makes a status change known (a search-attribute write, a signal to the lead workflow). The
   * first call does not wait for it when `callWithoutWaitingForReport` is set.
   */
  report(progress: CallProgress): Promise<void>;
  callWithoutWaitingForReport: boolean;
  /** Write the notes that piled up in one activity (the older callCustomer wrote them one by one). */
  batchCrmNotes: boolean;
}

export interface CallProcess {
  run(): Promise<CallOutcome>;
  /** The scenario's report for the awaited attempt (an update handler). */
  accept(report: CallReport): { accepted: true };
  /** Throws unless `report` is for the attempt being awaited (the update's validator). */
  validate(report: CallReport): void;
  /** An operator's decision; the process acts on it at its next step. */
  act(action: OperatorAction): void;
  crmLeadCreated(leadId: number): void;
  crmLeadFailed(): void;
  snapshot(): Omit<CallProgress, 'event'>;
}

export function createCallProcess(input: CallInput, options: CallProcessOptions): CallProcess {
  const { policy } = input;
  const { workflowId, runId } = options;
  const calls = proxyActivities<CallActivities>({
    taskQueue: policy.callTaskQueue,
    // Waiting for a slot under the calls-per-second limit counts against schedule-to-start, not
    // start-to-close, so a morning queue of sleeping leads does not time out. StartScenarios answers
    // in well under a second: a short timeout lets a crashed worker's call be retried (and
    // de-duplicated against the call history) quickly.
    startToCloseTimeout: '10s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
  });
  const crm = proxyActivities<CrmActivities>({
    taskQueue: policy.crmTaskQueue,
    startToCloseTimeout: '30s',
    scheduleToCloseTimeout: '6h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m' },
  });

  let status: LeadStatus = 'New';
  let attempts = 0;
  let nextCallAt: number | undefined;
  let lastResult: CallResult | undefined;
  let manualReason: ManualReason | undefined;
  let nightSmsSent = false;
  let crmLeadId: number | undefined;
  let crmResolved = false;
  let awaitedAttempt: number | undefined;
  let report: CallReport | undefined;
  let pendingAction: OperatorAction | undefined;
  /** The last status change's event that was not reported: the result carries it. */
  let finalEvent: string | undefined;
  const crmNotes: Array<{ statusId?: string; comment: string }> = [];
  let crmWriter: Promise<void> | undefined;

  function progress(next: LeadStatus, event?: string): Promise<void> {
    status = next;
    return options.report({ status, attempts, nextCallAt, lastResult, manualReason, nightSmsSent, event });
  }

  function noteForCrm(comment: string, statusId?: string): void {
    crmNotes.push({ comment, statusId });
    flushCrmNotes();
  }
  // CRM notes are written in the background, in order: a slow or rate-limited Bitrix24 must
  // never delay the next call.
  function flushCrmNotes(): void {
    if (crmLeadId === undefined || crmWriter) return;
    const leadId = crmLeadId;
    crmWriter = (async () => {
      while (crmNotes.length > 0) {
        const notes = options.batchCrmNotes ? crmNotes.slice() : crmNotes.slice(0, 1);
        try {
          if (options.batchCrmNotes) await crm.recordCallAttempts({ leadId, notes });
          else await crm.recordCallAttempt({ leadId, ...notes[0]! });
        } catch (err) {
          log.warn('could not write the call attempt to the CRM', { error: String(err) });
        }
        crmNotes.splice(0, notes.length);
      }
    })().finally(() => {
      crmWriter = undefined;
    });
  }

  async function sendSmsOnce(kind: 'night' | 'confirmation' | 'voicemail', text: string): Promise<void> {
    try {
      const res = await sms.sendSms({
        idempotencyKey: `${workflowId}/${runId}/${kind}`,
        phone: input.phone,
        text,
      });
      if (res.status === 'skipped') await toManual('sms_uncertain', `SMS (${kind}) may not have been sent`);
    } catch (err) {
      log.warn('SMS failed', { kind, error: String(err) });
      noteForCrm(`SMS (${kind}) не отправлено: ${failureMessage(err)}`);
    }
  }

  async function alertManual(reason: ManualReason, detail: string): Promise<void> {
    try {
      await alerts.notifySellers({
        kind: 'manual_handling',
        ref: input.ref,
        workflowId: input.leadWorkflowId,
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
  async function toManual(reason: ManualReason, detail: string): Promise<void> {
    manualReason = reason;
    noteForCrm(`Нужна ручная обработка: ${detail}`);
    await alertManual(reason, detail);
  }

  /** Waits for a person's decision; undefined when nobody acted in time. */
  async function awaitOperator(reason: ManualReason, detail: string): Promise<OperatorAction | undefined> {
    manualReason = reason;
    nextCallAt = undefined;
    // An operator may act before the alert is out (cancel at any time, or as soon as the lead shows
    // ManualHandling); runs before this change dropped such an action once the alert was sent.
    const keepEarlyAction = patched('keep-operator-action-during-alert');
    await progress('ManualHandling', detail);
    noteForCrm(`Нужна ручная обработка: ${detail}`, 'IN_PROCESS');
    await alertManual(reason, detail);
    if (!keepEarlyAction) pendingAction = undefined;
    await condition(() => pendingAction !== undefined, policy.manualHandlingTimeoutMs);
    const action = pendingAction as OperatorAction | undefined;
    pendingAction = undefined;
    if (action?.action === 'call_now') manualReason = undefined;
    return action;
  }

  function closeAfterManual(action: OperatorAction | undefined): Promise<CallOutcome> {
    if (action?.action === 'cancel') return finish('Cancelled', `Отменено${by(action)}`);
    if (action?.action === 'handled') return finish('Handled', `Обработано вручную${by(action)}`);
    return finish('ManualHandling', 'Никто не обработал заявку вовремя');
  }

  async function finish(final: LeadStatus, comment: string): Promise<CallOutcome> {
    nextCallAt = undefined;
    noteForCrm(comment, final === 'WrongNumber' ? 'JUNK' : undefined);
    finalEvent = comment;
    await progress(final, comment);
    // The CRM lead may still be on its way (Bitrix24 slow or down): wait for it, bounded.
    await condition(() => crmResolved, '6h');
    flushCrmNotes();
    await condition(() => crmWriter === undefined && (crmNotes.length === 0 || crmLeadId === undefined));
    return { status: final, attempts, lastResult, manualReason, nightSmsSent, event: finalEvent };
  }

  async function run(): Promise<CallOutcome> {
    if (!input.phone || input.phone.length > 11) {
      return finish('PhoneNotDialable', 'Телефон длиннее 11 цифр: звонок не выполняется');
    }

    for (;;) {
      const action = pendingAction as OperatorAction | undefined;
      pendingAction = undefined;
      if (action?.action === 'cancel') return finish('Cancelled', `Отменено${by(action)}`);
      if (action?.action === 'handled') return finish('Handled', `Обработано вручную${by(action)}`);

      const now = Date.now();
      if (!isWorkingTime(now, input.timezone, policy.workingSchedule)) {
        if (!nightSmsSent) {
          nightSmsSent = true;
          await sendSmsOnce('night', fill(policy.texts.nightSms, input.name, policy.workingHoursText));
        }
        nextCallAt = nextWorkingTime(now, input.timezone, policy.workingSchedule);
        await progress('WaitingForWorkingHours');
        // One timer to the window's opening, not a polling loop; an operator may cancel meanwhile.
        await condition(
          () => pendingAction !== undefined && pendingAction.action !== 'call_now',
          nextCallAt - now,
        );
        continue;
      }

      attempts += 1;
      nextCallAt = undefined;
      report = undefined;
      awaitedAttempt = attempts;
      if (options.callWithoutWaitingForReport) void progress('Calling');
      else await progress('Calling');
      try {
        await calls.placeRobotCall({
          workflowId,
          runId,
          ref: input.ref,
          attempt: attempts,
          name: input.name,
          phone: input.phone,
          resultUrl: policy.resultUrl,
          tokenTtlSeconds: Math.ceil((policy.resultTimeoutMs + 3_600_000) / 1000),
          receivedAt: input.receivedAt,
        });
      } catch (err) {
        awaitedAttempt = undefined;
        const decision = await awaitOperator('call_provider_rejected', `VoxImplant: ${failureMessage(err)}`);
        if (decision?.action === 'call_now') continue;
        return closeAfterManual(decision);
      }
      await progress('WaitingForResult');
      const gotReport = await condition(() => report !== undefined, policy.resultTimeoutMs);
      awaitedAttempt = undefined;
      if (!gotReport || !report) {
        noteForCrm(`Попытка ${attempts}: нет отчёта о звонке`);
        const decision = await awaitOperator('no_call_result', `нет отчёта о звонке (попытка ${attempts})`);
        if (decision?.action === 'call_now') continue;
        return closeAfterManual(decision);
      }
      const r: CallReport = report;
      lastResult = r.result;
      noteForCrm(`Попытка ${attempts}: ${r.result}${r.code ? ` (код ${r.code})` : ''}, ${r.duration ?? 0} с`);

      if (r.result === 'wrong_number') return finish('WrongNumber', 'Неверный номер: звонки прекращены');
      if (r.result === 'answered') {
        await sendSmsOnce(
          'confirmation',
          fill(policy.texts.confirmationSms, input.name, policy.workingHoursText),
        );
        return finish('Answered', 'Клиент ответил, SMS с подтверждением отправлено');
      }
      if (r.result === 'voicemail') {
        await sendSmsOnce('voicemail', fill(policy.texts.voicemailSms, input.name, policy.workingHoursText));
        return finish('Voicemail', 'Автоответчик: SMS отправлено, повторных звонков нет');
      }
      if (MISSED.includes(r.result)) {
        if (attempts >= policy.maxAttempts) {
          const decision = await awaitOperator('attempts_exhausted', `недозвон после ${attempts} попыток`);
          if (decision?.action === 'call_now') continue;
          return closeAfterManual(decision);
        }
        const now2 = Date.now();
        nextCallAt = nextWorkingTime(now2 + policy.retryDelayMs, input.timezone, policy.workingSchedule);
        await progress('MissedCall', `недозвон (${r.result})`);
        await condition(() => pendingAction !== undefined, nextCallAt - now2);
      }
    }
  }

  return {
    run,
    accept(r) {
      report = r;
      return { accepted: true } as const;
    },
    validate(r) {
      if (awaitedAttempt === undefined || r.attempt !== awaitedAttempt || report !== undefined) {
        throw new Error(`call attempt ${r.attempt} is not awaited`);
      }
    },
    act(action) {
      pendingAction = action;
    },
    crmLeadCreated(id) {
      crmLeadId = id;
      crmResolved = true;
      flushCrmNotes();
    },
    crmLeadFailed() {
      crmResolved = true;
    },
    snapshot: () => ({ status, attempts, nextCallAt, lastResult, manualReason, nightSmsSent }),
  };
}

function by(action: OperatorAction | undefined): string {
  if (!action) return '';
  return `${action.by ? ` (${action.by})` : ''}${action.note ? `: ${action.note}` : ''}`;
}

function fill(template: string, name: string, hours: string): string {
  return template.replaceAll('{name}', name).replaceAll('{hours}', hours);
}

export function failureMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) return err.cause.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
