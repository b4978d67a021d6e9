// Names the API and the lead workflow share: its query and its updates.
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { CallClaim, CallReport, LeadState, OperatorAction } from './types';

export const getLeadStateQuery = defineQuery<LeadState>('getLeadState');
/** Operator actions are updates: the caller learns at once whether the action was allowed. */
export const operatorActionUpdate = defineUpdate<LeadState, [OperatorAction]>('operatorAction');
/** The scenario's report; an update so the result endpoint learns at once whether it was awaited. */
export const reportCallResultUpdate = defineUpdate<{ accepted: true }, [CallReport]>('reportCallResult');
/**
 * The scenario's claim before it dials: granted once per attempt, so a retried StartScenarios whose
 * first session is already ringing ends without dialling again.
 */
export const claimCallUpdate = defineUpdate<{ claimed: true }, [CallClaim]>('claimCall');
