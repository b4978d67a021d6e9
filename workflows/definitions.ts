// Names the API and the lead workflow share: its query and its updates.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CallClaim, CallReport, LeadState, OperatorAction } from './types';

export const getLeadStateQuery = defineQuery<LeadState>('getLeadState');
/** Operator actions are updates: the caller learns at once whether the action was allowed. */
export const operatorActionUpdate = defineUpdate<LeadState, [OperatorAction]>('operatorAction');
/**
 * The scenario's report of an attempt placed before 1.9.0: an update, so the result endpoint learns
 * whether it was awaited, but only once the lead's workflow task has run, which a burst delays.
 */
export const reportCallResultUpdate = defineUpdate<{ accepted: true }, [CallReport]>('reportCallResult');
/**
 * The report of a later attempt (its token says `rs`): a signal, which Temporal keeps as soon as it
 * is sent, so the result endpoint answers without waiting for the lead. One that is not awaited
 * (repeated, late, for another attempt) is logged and changes nothing.
 */
export const reportCallResultSignal = defineSignal<[CallReport]>('reportCallResultSignal');
/**
 * The scenario's claim before it dials: granted once per attempt, so a retried StartScenarios whose
 * first session is already ringing ends without dialling again.
 */
export const claimCallUpdate = defineUpdate<{ claimed: true }, [CallClaim]>('claimCall');
