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
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { createCallProcess, failureMessage } from './callProcess';
import {
  alertSellers,
  callInputOf,
  checkOperatorAction,
  crmActivities,
  newLeadState,
  operatorNote,
} from './leadParts';
import { getLeadStateQuery, operatorActionUpdate, reportCallResultUpdate } from './definitions';
import { processLeadWithCallWorkflow } from './leadWithCallWorkflow';
import { CallAttemptsKey, LeadStatusKey, ManualReasonKey, NextCallAtKey } from './searchAttributes';
import type { LeadInput, LeadState, LeadStatus, ManualReason } from './types';

// The definitions the API uses, where they used to be.
export { getLeadStateQuery, operatorActionUpdate } from './definitions';

/** What the Web UI searches on; "waiting for the result" is short and shows as Calling. */
function searchableStatus(status: LeadStatus): LeadStatus {
  return status === 'WaitingForResult' ? 'Calling' : status;
}

export async function processLead(input: LeadInput): Promise<LeadState> {
  if (!patched('call-inside-lead-workflow')) return processLeadWithCallWorkflow(input);

  const { workflowId, runId } = workflowInfo();
  const crm = crmActivities(input);
  const state = newLeadState(input);
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
    ? createCallProcess(callInputOf(input, workflowId), {
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
      })
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
      record(operatorNote(action));
      const before = state.status;
      call!.act(action);
      // The call process acts on it at its next step; wait for that (briefly) so the answer is current.
      await condition(() => state.status !== before, '5s');
      return state;
    },
    {
      validator: (action) => checkOperatorAction(action, state, input, !!call),
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
  await alertSellers(input, workflowId, state, partnerAlert);

  // 5. Stay open while the call process runs, so the ref counts as in progress.
  if (callDone) {
    const outcome = await callDone;
    state.nextCallAt = undefined;
    state.manualReason = outcome.manualReason ?? ownManualReason;
  }
  publish();
  return state;
}
