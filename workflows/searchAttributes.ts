// Custom search attributes: what an operator filters on in the Web UI. No personal data here.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

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
