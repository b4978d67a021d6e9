// Inputs, outputs and states of the lead workflows. Plain data only: this file is bundled into the
// workflow sandbox and imported by the API and the worker.
import type { WorkingSchedule } from '../domain/workingHours';

/** Where a lead is in its life; the values are what operators filter on in the Web UI. */
export const LEAD_STATUSES = [
  'New',
  'Calling',
  'WaitingForResult',
  'WaitingForWorkingHours',
  'MissedCall',
  'ManualHandling',
  'Answered',
  'Voicemail',
  'WrongNumber',
  'PhoneNotDialable',
  'Handled',
  'Cancelled',
] as const;
export type LeadStatus = (typeof LEAD_STATUSES)[number];

export const FINAL_STATUSES: readonly LeadStatus[] = [
  'Answered',
  'Voicemail',
  'WrongNumber',
  'PhoneNotDialable',
  'Handled',
  'Cancelled',
];

export type ManualReason =
  | 'crm_auth_failed'
  | 'crm_unavailable'
  | 'no_call_result'
  | 'attempts_exhausted'
  | 'call_provider_rejected'
  | 'sms_uncertain'
  | 'sms_failed';

export type CallResult =
  'answered' | 'voicemail' | 'busy' | 'no_answer' | 'unavailable' | 'wrong_number' | 'failed';
export const CALL_RESULTS: readonly CallResult[] = [
  'answered',
  'voicemail',
  'busy',
  'no_answer',
  'unavailable',
  'wrong_number',
  'failed',
];

/** The scenario's report, as the result endpoint passes it on. */
export interface CallReport {
  attempt: number;
  result: CallResult;
  code?: number;
  duration?: number;
}

/** The scenario's claim of an attempt, made before it dials. */
export interface CallClaim {
  attempt: number;
  /** The VoxEngine session that claims it: a repeated claim of that session is granted again. */
  sessionId?: string;
}

/** What a lead's workflows are told at start; the policy is fixed per lead so replays agree. */
export interface LeadPolicy {
  workingSchedule: WorkingSchedule;
  workingHoursText: string;
  retryDelayMs: number;
  maxAttempts: number;
  resultTimeoutMs: number;
  callTaskQueue: string;
  /** Bitrix24 activities: a queue of their own, rate-limited to what the portal allows. */
  crmTaskQueue: string;
  resultUrl: string;
  /** Where the scenario claims an attempt before it dials. */
  claimUrl: string;
  /** How long a lead waits in manual handling for a person before it closes as unhandled. */
  manualHandlingTimeoutMs: number;
  texts: { nightSms: string; confirmationSms: string; voicemailSms: string };
}

export interface LeadInput {
  /** What the lead is deduplicated by: the shop's ref (posted with its key), else the phone's digits. */
  ref: string;
  /** The ref a caller without the shop's key sent: kept for the CRM and the operators, never an id. */
  clientRef?: string;
  /** Posted by the shop's backend with INTAKE_API_KEY: not refused by the per-phone daily limit. */
  shopReported?: boolean;
  name: string;
  /** Normalised digits, e.g. 79161234567. */
  phone: string;
  phoneCallable: boolean;
  /** Why a lead is not called or texted (the intake decides; the lead is still recorded and alerted). */
  phoneIssue?:
    | 'phone_too_long'
    | 'not_a_dialable_number'
    | 'not_a_personal_number'
    | 'country_not_allowed'
    | 'daily_limit_reached';
  city?: string;
  timezone: string;
  partnerCode?: string;
  site?: string;
  orderAmount?: number;
  comment?: string;
  source: 'api' | 'form' | 'corezoid';
  /** Epoch ms when the API accepted the lead. */
  receivedAt: number;
  /** Optional fields that were wrong and replaced by defaults (the lead is kept, the fact recorded). */
  warnings: string[];
  policy: LeadPolicy;
}

export interface LeadEvent {
  at: number;
  what: string;
}

/** The call process's part of a lead's state; it alone changes it. */
export interface CallState {
  status: LeadStatus;
  attempts: number;
  nextCallAt?: number;
  lastResult?: CallResult;
  manualReason?: ManualReason;
  nightSmsSent: boolean;
  /** An operator's action that was accepted and is about to be carried out. */
  pendingAction?: OperatorAction['action'];
}

/** What the lead-state query and the workflow's result tell. */
export interface LeadState extends CallState {
  ref: string;
  clientRef?: string;
  partner?:
    { status: 'found'; id: number; title: string } | { status: 'not_found' } | { status: 'lookup_failed' };
  crmLeadId?: number;
  history: LeadEvent[];
}

export interface OperatorAction {
  action: 'call_now' | 'handled' | 'cancel';
  by?: string;
  note?: string;
}
