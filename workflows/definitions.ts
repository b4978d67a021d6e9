// Names the API and the workflows share: queries, updates and signals of a lead's workflows.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CallProgress, CallReport, LeadState, OperatorAction } from './types';

export const getLeadStateQuery = defineQuery<LeadState>('getLeadState');
/** Operator actions are updates: the caller learns at once whether the action was allowed. */
export const operatorActionUpdate = defineUpdate<LeadState, [OperatorAction]>('operatorAction');
/** The scenario's report; an update so the result endpoint learns at once whether it was awaited. */
export const reportCallResultUpdate = defineUpdate<{ accepted: true }, [CallReport]>('reportCallResult');

// Between a lead workflow and its callCustomer workflow (leads accepted before the call moved
// into the lead's own workflow).
export const crmLeadCreatedSignal = defineSignal<[number]>('crmLeadCreated');
export const crmLeadFailedSignal = defineSignal('crmLeadFailed');
export const callOperatorActionSignal = defineSignal<[OperatorAction]>('callOperatorAction');
/** Sent to the lead workflow whenever the call process changes state. */
export const callProgressSignal = defineSignal<[CallProgress]>('callProgress');
/** The call process's own state, finer than what it reports to the lead workflow; costs no history. */
export const getCallStatusQuery = defineQuery<Omit<CallProgress, 'event'>>('getCallStatus');

/** The call workflow of a lead workflow: one per lead, so a retried start can never make two. */
export function callWorkflowId(leadWorkflowId: string): string {
  return `${leadWorkflowId}-call`;
}
