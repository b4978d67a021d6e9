// What both generations of the lead workflow share (processLead, and leadWithCallWorkflow for leads
// accepted before the call moved in): none of it issues a command, so sharing it changes no history.
import { log, proxyActivities } from '@temporalio/workflow';
import type { CrmActivities, LeadActivities } from '../activities';
import { isWorkingTime } from '../domain/workingHours';
import { FINAL_STATUSES, type CallInput, type LeadInput, type LeadState, type OperatorAction } from './types';

const alerts = proxyActivities<LeadActivities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '1h',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export function crmActivities(input: LeadInput) {
  return proxyActivities<CrmActivities>({
    taskQueue: input.policy.crmTaskQueue,
    startToCloseTimeout: '30s',
    // Bitrix24 down for an hour delays the CRM lead, never the call; past six hours (the queue may
    // also be long at the portal's 2 requests/s) it is a person's job and the sellers are told.
    scheduleToCloseTimeout: '6h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m' },
  });
}

export function newLeadState(input: LeadInput): LeadState {
  const at = Date.now();
  return {
    ref: input.ref,
    status: 'New',
    attempts: 0,
    nightSmsSent: false,
    history: [
      { at, what: `заявка принята (${input.source})` },
      ...input.warnings.map((what) => ({ at, what })),
    ],
  };
}

export function callInputOf(input: LeadInput, leadWorkflowId: string): CallInput {
  return {
    leadWorkflowId,
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
  };
}

export function operatorNote(action: OperatorAction): string {
  return `оператор: ${action.action}${action.by ? ` (${action.by})` : ''}${action.note ? `: ${action.note}` : ''}`;
}

/** The operator-action update's validator: throws what the API answers with 409. */
export function checkOperatorAction(
  action: OperatorAction,
  state: LeadState,
  input: LeadInput,
  hasCall: boolean,
): void {
  if (!hasCall || FINAL_STATUSES.includes(state.status)) {
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
}

/** Sellers hear of every lead, and of one that needs a person; a failed alert is only recorded. */
export async function alertSellers(
  input: LeadInput,
  workflowId: string,
  state: LeadState,
  partnerAlert: string | undefined,
): Promise<void> {
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
    state.history.push({ at: Date.now(), what: 'уведомление продавцам не отправлено' });
  }
}
