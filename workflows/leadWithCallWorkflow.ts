// Leads accepted before the call moved into the lead's own workflow: partner lookup, CRM lead,
// seller alerts, and the robot call in a callCustomer child workflow that reports its progress by
// signal. Kept, unchanged in what it does, until the last of those leads has finished.
import {
  ChildWorkflowHandle,
  ParentClosePolicy,
  condition,
  patched,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { callCustomer } from './callCustomer';
import {
  alertSellers,
  callInputOf,
  checkOperatorAction,
  crmActivities,
  newLeadState,
  operatorNote,
} from './leadParts';
import { failureMessage } from './callProcess';
import {
  callOperatorActionSignal,
  callProgressSignal,
  callWorkflowId,
  crmLeadCreatedSignal,
  crmLeadFailedSignal,
  getLeadStateQuery,
  operatorActionUpdate,
} from './definitions';
import { CallAttemptsKey, LeadStatusKey, ManualReasonKey, NextCallAtKey } from './searchAttributes';
import type { LeadInput, LeadState } from './types';

export async function processLeadWithCallWorkflow(input: LeadInput): Promise<LeadState> {
  const { workflowId, runId } = workflowInfo();
  const crm = crmActivities(input);
  const state = newLeadState(input);
  let child: ChildWorkflowHandle<typeof callCustomer> | undefined;
  let progressSeen = 0;
  // Manual handling this workflow itself asked for (CRM trouble) stays flagged whatever the call does.
  let ownManualReason: LeadState['manualReason'];

  const record = (what: string) => state.history.push({ at: Date.now(), what });
  const publish = () =>
    upsertSearchAttributes([
      { key: LeadStatusKey, value: state.status },
      { key: CallAttemptsKey, value: state.attempts },
      { key: NextCallAtKey, value: state.nextCallAt ? new Date(state.nextCallAt) : null },
      { key: ManualReasonKey, value: state.manualReason ?? null },
    ]);

  setHandler(getLeadStateQuery, () => state);
  setHandler(callProgressSignal, (p) => {
    Object.assign(state, {
      status: p.status,
      attempts: p.attempts,
      nextCallAt: p.nextCallAt,
      lastResult: p.lastResult,
      manualReason: p.manualReason ?? ownManualReason,
      nightSmsSent: p.nightSmsSent,
    });
    if (p.event) record(p.event);
    progressSeen += 1;
    publish();
  });
  setHandler(
    operatorActionUpdate,
    async (action) => {
      record(operatorNote(action));
      const before = progressSeen;
      await child!.signal(callOperatorActionSignal, action);
      // The call process reports its new state by signal; wait for it (briefly) so the answer is current.
      await condition(() => progressSeen > before, '5s');
      return state;
    },
    {
      validator: (action) => checkOperatorAction(action, state, input, !!child),
    },
  );

  // 1. The call goes first: nothing below may delay it.
  if (input.phoneCallable) {
    child = await startChild(callCustomer, {
      workflowId: callWorkflowId(workflowId),
      taskQueue: input.policy.callWorkflowTaskQueue,
      parentClosePolicy: ParentClosePolicy.ABANDON,
      args: [callInputOf(input, workflowId)],
    });
  } else {
    state.status = 'PhoneNotDialable';
    record(
      input.phoneIssue === 'phone_too_long' ? 'телефон длиннее 11 цифр: без звонка' : 'номер не для звонка',
    );
  }

  // The call workflow reports only long states now (see callCustomer): until it does, or it ends,
  // the lead is being called. Leads started before this change got a "Calling" report instead.
  if (child && patched('report-only-long-states') && progressSeen === 0) {
    state.status = 'Calling';
    publish();
  }

  // 2. Partner lookup; a broken token does not stop the lead, it makes it a person's job.
  let partnerAlert: string | undefined;
  if (input.partnerCode) {
    try {
      const found = await crm.findPartner(input.partnerCode);
      state.partner =
        found.status === 'found'
          ? { status: 'found', id: found.partner.id, title: found.partner.title }
          : { status: 'not_found' };
      record(found.status === 'found' ? `партнёр: ${found.partner.title}` : 'партнёр не найден');
    } catch (err) {
      state.partner = { status: 'lookup_failed' };
      ownManualReason = 'crm_auth_failed';
      state.manualReason ??= ownManualReason;
      partnerAlert = `поиск партнёра в Bitrix24 не удался: ${failureMessage(err)}`;
      record(partnerAlert);
      publish();
    }
  }

  // 3. The CRM lead, idempotent on ref + run so a retry or a replay never makes a second one.
  try {
    const created = await crm.createCrmLead({
      ref: `${input.ref}#${runId}`,
      name: input.name,
      phone: input.phone,
      city: input.city,
      timezone: input.timezone,
      partnerCode: input.partnerCode,
      partner:
        state.partner?.status === 'found'
          ? { id: state.partner.id, title: state.partner.title, code: input.partnerCode ?? '' }
          : undefined,
      site: input.site,
      orderAmount: input.orderAmount,
      comment: [input.comment, ...input.warnings].filter(Boolean).join('\n') || undefined,
    });
    state.crmLeadId = created.leadId;
    record(`лид в CRM: ${created.leadId}`);
    await child?.signal(crmLeadCreatedSignal, created.leadId);
  } catch (err) {
    ownManualReason ??= 'crm_unavailable';
    state.manualReason ??= ownManualReason;
    partnerAlert = `${partnerAlert ? `${partnerAlert}; ` : ''}лид в CRM не создан: ${failureMessage(err)}`;
    record(`лид в CRM не создан: ${failureMessage(err)}`);
    publish();
    await child?.signal(crmLeadFailedSignal);
  }

  // 4. Sellers hear of every lead, and of one that needs a person.
  await alertSellers(input, workflowId, state, partnerAlert);

  // 5. Stay open while the call process runs, so the ref counts as in progress.
  if (child) {
    const outcome = await child.result();
    state.status = outcome.status;
    state.attempts = outcome.attempts;
    state.lastResult = outcome.lastResult;
    state.nextCallAt = undefined;
    if (outcome.nightSmsSent !== undefined) state.nightSmsSent = outcome.nightSmsSent;
    if (outcome.manualReason || ownManualReason) state.manualReason = outcome.manualReason ?? ownManualReason;
    if (outcome.event) record(outcome.event);
  }
  publish();
  return state;
}
