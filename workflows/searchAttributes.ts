// Custom search attributes: what an operator filters on in the Web UI. No personal data here.
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import { isWorkingTime, nextWorkingTime } from '../domain/workingHours';
import type { LeadInput, LeadPolicy, LeadStatus } from './types';

export const LeadStatusKey = defineSearchAttributeKey('LeadStatus', SearchAttributeType.KEYWORD);
export const LeadPartnerKey = defineSearchAttributeKey('LeadPartner', SearchAttributeType.KEYWORD);
export const LeadSiteKey = defineSearchAttributeKey('LeadSite', SearchAttributeType.KEYWORD);
export const CallAttemptsKey = defineSearchAttributeKey('CallAttempts', SearchAttributeType.INT);
export const NextCallAtKey = defineSearchAttributeKey('NextCallAt', SearchAttributeType.DATETIME);
export const OrderAmountKey = defineSearchAttributeKey('OrderAmount', SearchAttributeType.DOUBLE);
export const ManualReasonKey = defineSearchAttributeKey('ManualReason', SearchAttributeType.KEYWORD);

export const ALL_SEARCH_ATTRIBUTES = [
  LeadStatusKey,
  LeadPartnerKey,
  LeadSiteKey,
  CallAttemptsKey,
  NextCallAtKey,
  OrderAmountKey,
  ManualReasonKey,
];

/** `Name=Type` pairs for `temporal server start-dev --search-attribute`. */
export function searchAttributeFlags(): string[] {
  const cliType: Record<string, string> = {
    KEYWORD: 'Keyword',
    INT: 'Int',
    DATETIME: 'Datetime',
    DOUBLE: 'Double',
  };
  return ALL_SEARCH_ATTRIBUTES.map((k) => `${k.name}=${cliType[k.type] ?? k.type}`);
}

/**
 * What the start request shows of a lead, so the workflow's first tasks need not write it: a lead
 * called at once shows as Calling its first attempt, one that arrives at night as waiting for the
 * window (with the time it opens), one not to call as such. The workflow writes only what differs
 * from these. Shared with the API, which starts the workflow.
 */
export function searchAttributesAtStart(
  input: Omit<LeadInput, 'policy'>,
  policy: LeadPolicy,
  now: number,
): SearchAttributePair[] {
  if (!input.phoneCallable) return [{ key: LeadStatusKey, value: 'PhoneNotDialable' satisfies LeadStatus }];
  if (isWorkingTime(now, input.timezone, policy.workingSchedule)) {
    return [
      { key: LeadStatusKey, value: 'Calling' satisfies LeadStatus },
      { key: CallAttemptsKey, value: 1 },
    ];
  }
  return [
    { key: LeadStatusKey, value: 'WaitingForWorkingHours' satisfies LeadStatus },
    { key: NextCallAtKey, value: new Date(nextWorkingTime(now, input.timezone, policy.workingSchedule)) },
  ];
}
