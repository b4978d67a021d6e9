// One lead, one workflow: the robot call, the partner lookup, the CRM lead and the sellers' alerts
// of the original process. The call starts in the workflow's first task, before anything else, so
// neither Bitrix24 nor Telegram ever holds it up; the CRM branch runs alongside. The workflow stays
// open until the call process ends, which is what makes a second lead with the same ref a
// duplicate, and it keeps the lead's searchable state.
//
// The call process used to run in a child workflow of its own (callCustomer) that mirrored its
// status into this one by signal. Measured on the dev server, that doubled the server's work per
// lead and put a second workflow start between the form and the first call; see README "Figures".
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CrmActivities, LeadActivities } from '../activities';
import { isWorkingTime } from '../domain/workingHours';
import { createCallProcess, failureMessage } from './callProcess';
import { getLeadStateQuery, operatorActionUpdate, reportCallResultUpdate } from './definitions';
import { processLeadWithCallWorkflow } from './leadWithCallWorkflow';
import { CallAttemptsKey, LeadStatusKey, ManualReasonKey, NextCallAtKey } from './searchAttributes';
import { FINAL_STATUSES, type LeadInput, type LeadState, type LeadStatus, type ManualReason } from './types';

// The definitions the API uses, where they used to be.
export { getLeadStateQuery, operatorActionUpdate } from './definitions';

const alerts = proxyActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '1h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

/** What the Web UI searches on; "waiting for the result" is short and shows as Calling. */
function searchableStatus(status: LeadStatus): LeadStatus {
  return status === 'WaitingForResult' ? 'Calling' : status;
}

export async function processLead(input: LeadInput): Promise<LeadState> {
  if (!patched('call-inside-lead-workflow')) return processLeadWithCallWorkflow(input);

  const { workflowId, runId } = workflowInfo();
  const crm = proxyActivities<CrmActivities>({
    taskQueue: input.policy.crmTaskQueue,
    startToCloseTimeout: '30s',
    // Bitrix24 down for an hour delays the CRM lead, never the call; past six hours (the queue may
    // also be long at the portal's 2 requests/s) it is a person's job and the sellers are told.
    scheduleToCloseTimeout: '6h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m' },
  });
  const state: LeadState = {
    ref: input.ref,
    status: 'New',
    attempts: 0,
    nightSmsSent: false,
    history: [{ at: Date.now(), what: `заявка принята (${input.source})` }],
  };
  for (const warning of input.warnings) state.history.push({ at: Date.now(), what: warning });
  const record = (what: string) => state.history.push({ at: Date.now(), what });
  // Manual handling this workflow itself asked for (CRM trouble) stays flagged whatever the call does.
  let ownManualReason: ManualReason | undefined;

  // Search attributes are written only when what they show changes: each write is a history event
  // and a visibility update on the server.
  let published = '';
  const publish = () => {
    const shown = {
      status: searchableStatus(state.status),
      attempts: state.attempts,
      nextCallAt: state.nextCallAt,
      manualReason: state.manualReason,
    };
    const key = JSON.stringify(shown);
    if (key === published) return;
    published = key;
    upsertSearchAttributes([
      { key: LeadStatusKey, value: shown.status },
      { key: CallAttemptsKey, value: shown.attempts },
      { key: NextCallAtKey, value: shown.nextCallAt ? new Date(shown.nextCallAt) : null },
      { key: ManualReasonKey, value: shown.manualReason ?? null },
    ]);
  };

  const call = input.phoneCallable
    ? createCallProcess(
        {
          leadWorkflowId: workflowId,
          ref: input.ref,
          name: input.name,
          phone: input.phone,
          timezone: input.timezone,
          city: input.city,
          partnerCode: input.partnerCode,
          site: input.site,
          orderAmount: input.orderAmount,
          receivedAt: input.receivedAt,
          policy: input.policy,
        },
        {
          workflowId,
          runId,
          callWithoutWaitingForReport: true,
          batchCrmNotes: true,
          report(p) {
            Object.assign(state, {
              status: p.status,
              attempts: p.attempts,
              nextCallAt: p.nextCallAt,
              lastResult: p.lastResult,
              manualReason: p.manualReason ?? ownManualReason,
              nightSmsSent: p.nightSmsSent,
            });
            if (p.event) record(p.event);
            publish();
            return Promise.resolve();
          },
        },
      )
    : undefined;

  setHandler(getLeadStateQuery, () => state);
  setHandler(reportCallResultUpdate, (r) => call!.accept(r), {
    validator: (r) => {
      if (!call) throw new Error(`call attempt ${r.attempt} is not awaited`);
      call.validate(r);
    },
  });
  setHandler(
    operatorActionUpdate,
    async (action) => {
      record(
        `оператор: ${action.action}${action.by ? ` (${action.by})` : ''}${action.note ? `: ${action.note}` : ''}`,
      );
      const before = state.status;
      call!.act(action);
      // The call process acts on it at its next step; wait for that (briefly) so the answer is current.
      await condition(() => state.status !== before, '5s');
      return state;
    },
    {
      validator: (action) => {
        if (!call || FINAL_STATUSES.includes(state.status)) {
          throw new Error(`the lead is ${state.status}: nothing to do`);
        }
        if (action.action === 'call_now') {
          if (!['ManualHandling', 'MissedCall'].includes(state.status)) {
            throw new Error(`cannot call again while the lead is ${state.status}`);
          }
          if (!isWorkingTime(Date.now(), input.timezone, input.policy.workingSchedule)) {
            throw new Error('outside working hours in the customer’s time zone: no calls at night');
          }
        }
      },
    },
  );

  // 1. The call goes first, in this very task: nothing below may delay it.
  const callDone = call?.run();
  if (!call) {
    state.status = 'PhoneNotDialable';
    record(
      input.phoneIssue === 'phone_too_long' ? 'телефон длиннее 11 цифр: без звонка' : 'номер не для звонка',
    );
    publish();
  }

  // 2. The partner and the CRM lead, in one activity, idempotent on ref + run so a retry or a
  // replay never makes a second lead. A refused partner search does not stop the lead, it makes it
  // a person's job.
  let partnerAlert: string | undefined;
  const needsPerson = (reason: ManualReason) => {
    ownManualReason ??= reason;
    state.manualReason ??= ownManualReason;
    publish();
  };
  try {
    const registered = await crm.registerLead({
      ref: `${input.ref}#${runId}`,
      name: input.name,
      phone: input.phone,
      city: input.city,
      timezone: input.timezone,
      partnerCode: input.partnerCode,
      site: input.site,
      orderAmount: input.orderAmount,
      comment: [input.comment, ...input.warnings].filter(Boolean).join('\n') || undefined,
    });
    const partner = registered.partner;
    if (partner?.status === 'found') {
      state.partner = { status: 'found', id: partner.partner.id, title: partner.partner.title };
      record(`партнёр: ${partner.partner.title}`);
    } else if (partner?.status === 'not_found') {
      state.partner = { status: 'not_found' };
      record('партнёр не найден');
    } else if (partner?.status === 'lookup_failed') {
      state.partner = { status: 'lookup_failed' };
      partnerAlert = `поиск партнёра в Bitrix24 не удался: ${partner.reason}`;
      record(partnerAlert);
      needsPerson('crm_auth_failed');
    }
    state.crmLeadId = registered.leadId;
    record(`лид в CRM: ${registered.leadId}`);
    call?.crmLeadCreated(registered.leadId);
  } catch (err) {
    if (input.partnerCode) state.partner = { status: 'lookup_failed' };
    partnerAlert = `лид в CRM не создан: ${failureMessage(err)}`;
    record(partnerAlert);
    const refused = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure;
    needsPerson(refused && err.cause.type === 'Bitrix24AuthError' ? 'crm_auth_failed' : 'crm_unavailable');
    call?.crmLeadFailed();
  }

  // 4. Sellers hear of every lead, and of one that needs a person.
  try {
    await alerts.notifySellers({
      kind: partnerAlert ? 'manual_handling' : 'new_lead',
      ref: input.ref,
      workflowId,
      name: input.name,
      phone: input.phone,
      city: input.city,
      partner: state.partner?.status === 'found' ? state.partner.title : input.partnerCode,
      site: input.site,
      orderAmount: input.orderAmount,
      crmLeadId: state.crmLeadId,
      reason: partnerAlert,
      actions: false,
    });
  } catch (err) {
    log.error('seller alert failed', { error: String(err) });
    record('уведомление продавцам не отправлено');
  }

  // 5. Stay open while the call process runs, so the ref counts as in progress.
  if (callDone) {
    const outcome = await callDone;
    state.nextCallAt = undefined;
    state.manualReason = outcome.manualReason ?? ownManualReason;
  }
  publish();
  return state;
}
