// Turning what a shop posts into a LeadInput, and starting its workflow exactly once per ref.
// Required fields that are wrong reject the lead (400); optional fields that are wrong fall back to
// the shop's defaults and the lead records it, so a typo in a time zone never loses a customer.
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import { normalizePhone, phoneCountry } from '../domain/phone';
import { defaultZoneOfCountry, isValidTimeZone, isZoneOfCountry } from '../domain/timezone';
import { isWorkingTime } from '../domain/workingHours';
import { lookupIp } from './geoip';
import { fieldProblems, type FieldProblem } from './http';
import { maskPhone } from '../support/logger';
import { grantCall } from './phoneLimit';
import { leadWorkflowId, type LegacyLeadGuard } from './leadIds';
import type { LeadInput, LeadPolicy } from '../workflows/types';
import {
  LeadPartnerKey,
  LeadSiteKey,
  OrderAmountKey,
  searchAttributesAtStart,
} from '../workflows/searchAttributes';

export class LeadValidationError extends Error {
  constructor(readonly details: FieldProblem[]) {
    super('invalid lead');
  }
}

const text = (max: number) => z.string().trim().max(max, `must be at most ${max} characters`);
const scalar = z.union([z.string(), z.number()]);

// Types are strict (an object where a string belongs is a broken client); values of optional
// fields are judged afterwards, leniently.
const rawLeadSchema = z.object({
  name: text(200).min(1, 'is required'),
  phone: scalar,
  ref: z
    .string()
    .trim()
    .min(1)
    .max(128, 'must be at most 128 characters')
    .regex(
      /^[\p{L}\p{N}][\p{L}\p{N}._:@+\-/]*$/u,
      'must start with a letter or digit and contain only letters, digits and . _ : @ + - /',
    )
    .optional(),
  city: text(100).optional(),
  timezone: text(64).optional(),
  partner: text(64).optional(),
  site: text(200).optional(),
  orderAmount: scalar.optional(),
  comment: text(2000).optional(),
});

function describeType(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export interface RawLead {
  fields: Record<string, unknown>;
  cookies: Record<string, string | undefined>;
  clientIp?: string;
  source: LeadInput['source'];
  /**
   * How the caller proved it is the shop: only such a caller chooses the ref a lead is
   * deduplicated by, and only the shop backend's key lifts the per-phone daily limit.
   */
  proof?: 'intake_key' | 'corezoid_key';
}

/** Applies the shop's field-name map and drops empty strings (a blank form field is no value). */
function mapFields(fields: Record<string, unknown>, map: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    const target = map[key] ?? key;
    if (value === '' || value === null || value === undefined) continue;
    if (out[target] === undefined || map[key]) out[target] = value;
  }
  return out;
}

export async function parseLead(
  raw: RawLead,
  config: AppConfig,
  now: number,
): Promise<Omit<LeadInput, 'policy'>> {
  const fields = mapFields(raw.fields, config.leadFieldMap);
  const known = new Set(Object.keys(rawLeadSchema.shape));
  const input = Object.fromEntries(Object.entries(fields).filter(([k]) => known.has(k)));
  const parsed = rawLeadSchema.safeParse(input);
  if (!parsed.success) {
    throw new LeadValidationError(
      fieldProblems(parsed.error, (issue) => {
        const value = input[issue.path.map(String).join('.')];
        if (issue.path.length === 1 && value === undefined) return 'is required';
        if (issue.code === 'invalid_type' || issue.code === 'invalid_union')
          return `has the wrong type (${describeType(value)})`;
        return issue.message;
      }),
    );
  }
  const lead = parsed.data;
  const phone = normalizePhone(lead.phone);
  if (!phone.ok) throw new LeadValidationError([{ field: 'phone', message: phone.error }]);

  const warnings: string[] = [];
  // Night is judged in the zone the number is in: a zone from the post (or the IP) counts only
  // when it is one of the number's country's, or a stranger's "Pacific/Honolulu" would have a
  // Moscow number rung at 3 a.m.
  const country = phone.ok ? phoneCountry(phone.digits) : undefined;
  const fitsNumber = (zone: string) => !country || isZoneOfCountry(zone, country);
  const countryZone = country ? defaultZoneOfCountry(country, config.defaultTimezone) : undefined;
  const fallbackZone = countryZone ?? config.defaultTimezone;
  let timezone = lead.timezone;
  if (timezone && !isValidTimeZone(timezone)) {
    warnings.push(`неизвестный часовой пояс "${timezone}": взят ${fallbackZone}`);
    timezone = undefined;
  } else if (timezone && !fitsNumber(timezone)) {
    warnings.push(`часовой пояс "${timezone}" не страны номера (${country}): взят ${fallbackZone}`);
    timezone = undefined;
  }
  let city = lead.city;
  if ((!timezone || !city) && raw.clientIp) {
    const geo = await lookupIp(raw.clientIp);
    if (!timezone && geo?.timezone && isValidTimeZone(geo.timezone) && fitsNumber(geo.timezone))
      timezone = geo.timezone;
    if (!city && geo?.city) city = geo.city;
  }
  let orderAmount: number | undefined;
  if (lead.orderAmount !== undefined) {
    const n = Number(String(lead.orderAmount).replace(',', '.').replace(/\s/g, ''));
    if (Number.isFinite(n) && n >= 0 && n < 1e12) orderAmount = Math.round(n * 100) / 100;
    else warnings.push(`сумма заказа "${String(lead.orderAmount).slice(0, 30)}" не число: не учтена`);
  }
  let partnerCode = lead.partner ?? raw.cookies.utm_source?.trim();
  if (partnerCode && !/^[\p{L}\p{N}._-]{1,64}$/u.test(partnerCode)) {
    warnings.push('код партнёра в неверном формате: не учтён');
    partnerCode = undefined;
  }

  // Numbers of other countries are where "SMS pumping" and toll fraud send a shop's money.
  // A number of a country not allowed is that, whatever its type; of an allowed country, only a
  // person's line is rung (premium-rate and shared-cost ranges bill the shop, toll-free and
  // service numbers reach nobody).
  let phoneIssue: LeadInput['phoneIssue'] = phone.callable ? undefined : phone.reason;
  if (!phoneIssue || phoneIssue === 'not_a_personal_number') {
    if (!country || !config.phoneRules.allowedCountries.includes(country)) {
      phoneIssue = 'country_not_allowed';
      warnings.push(
        `номер ${country ? `страны ${country}` : 'международной сети без страны'}: не звоним и не пишем (разрешены ${config.phoneRules.allowedCountries.join(', ')})`,
      );
    } else if (phoneIssue) {
      warnings.push(`номер не личный (${phone.type ?? 'UNKNOWN'}): не звоним и не пишем`);
    }
  }

  // A ref chosen by anyone could be a real customer's (their phone, the shop's order id): a
  // stranger's lead asleep under it would make the customer's own post a "duplicate". Only the
  // shop, by its key, names the ref; anyone else's lead is one per phone, their ref kept aside.
  const shopChoosesRef = raw.proof !== undefined;
  return {
    ref: (shopChoosesRef ? lead.ref : undefined) ?? phone.digits,
    ...(!shopChoosesRef && lead.ref ? { clientRef: lead.ref } : {}),
    name: lead.name,
    phone: phone.digits,
    phoneCallable: !phoneIssue,
    phoneIssue,
    city,
    timezone: timezone ?? fallbackZone,
    partnerCode,
    site: lead.site,
    orderAmount,
    comment: lead.comment,
    source: raw.source,
    ...(raw.proof === 'intake_key' ? { shopReported: true } : {}),
    receivedAt: now,
    warnings,
  };
}

/** Refs the intake could have accepted; anything else cannot name a lead (404 without asking Temporal). */
export function isPossibleRef(ref: string): boolean {
  return (
    ref.length > 0 &&
    ref.length <= 128 &&
    ![...ref].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127)
  );
}

export function leadPolicy(config: AppConfig): LeadPolicy {
  return {
    workingSchedule: config.workingSchedule,
    workingHoursText: config.workingHoursText,
    retryDelayMs: config.call.retryDelayMs,
    maxAttempts: config.call.maxAttempts,
    resultTimeoutMs: config.call.resultTimeoutMs,
    callTaskQueue: config.temporal.callTaskQueue,
    crmTaskQueue: config.temporal.crmTaskQueue,
    resultUrl: `${config.publicUrl}/api/voximplant/result`,
    claimUrl: `${config.publicUrl}/api/voximplant/claim`,
    manualHandlingTimeoutMs: config.call.manualHandlingTimeoutMs,
    texts: config.texts,
  };
}

export type StartOutcome = { status: 'started' | 'duplicate'; ref: string; workflowId: string };

/** Why a started lead is not called or texted, for the caller's metrics; never sent to the client. */
export type NotCalled = LeadInput['phoneIssue'];

export async function startLead(
  client: Client,
  config: AppConfig,
  parsed: Omit<LeadInput, 'policy'>,
  legacyLeads?: LegacyLeadGuard,
): Promise<StartOutcome & { notCalled?: NotCalled }> {
  const legacy = await legacyLeads?.runningLegacyLead(parsed.ref);
  if (legacy) return { status: 'duplicate', ref: parsed.ref, workflowId: legacy };
  const workflowId = leadWorkflowId(parsed.ref, config.phoneIdKey);
  let lead = parsed;
  // The shop's own leads are not limited: three junk posts of a stranger must not silence a
  // customer the shop itself reports.
  const grant =
    lead.phoneCallable && !lead.shopReported
      ? await grantCall(client, config, lead.phone, workflowId)
      : undefined;
  if (grant && !grant.granted) {
    lead = {
      ...lead,
      phoneCallable: false,
      phoneIssue: 'daily_limit_reached',
      warnings: [
        ...lead.warnings,
        `лимит заявок с одного номера за сутки (PHONE_DAILY_LIMIT=${config.phoneRules.dailyLimit}) исчерпан: не звоним и не пишем`,
      ],
    };
  }
  let outcome: StartOutcome;
  try {
    outcome = await startLeadWorkflow(client, config, lead, workflowId);
  } catch (err) {
    await grant?.release().catch(() => undefined);
    throw err;
  }
  // A slot left taken only lowers this number's limit until the day is over.
  if (outcome.status === 'duplicate') await grant?.release().catch(() => undefined);
  return { ...outcome, notCalled: lead.phoneIssue };
}

/** Workflow priority keys (1 goes first, the server's default is 3). */
export const LEAD_PRIORITY = { callableNow: 2, later: 4 } as const;

/** A lead called as soon as it is accepted, or one that waits (night, a number not to call). */
export function leadPriority(lead: Omit<LeadInput, 'policy'>, policy: LeadPolicy, now: number): number {
  return lead.phoneCallable && isWorkingTime(now, lead.timezone, policy.workingSchedule)
    ? LEAD_PRIORITY.callableNow
    : LEAD_PRIORITY.later;
}

async function startLeadWorkflow(
  client: Client,
  config: AppConfig,
  lead: Omit<LeadInput, 'policy'>,
  workflowId: string,
): Promise<StartOutcome> {
  const policy = leadPolicy(config);
  const now = Date.now();
  try {
    await client.workflow.start('processLead', {
      taskQueue: config.temporal.taskQueue,
      workflowId,
      args: [{ ...lead, policy } satisfies LeadInput],
      // A ref in progress is refused by Temporal itself; once that lead has finished, the same ref
      // may start a new one.
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE',
      requestEagerStart: true,
      // A lead that can be called now goes ahead of those accepted at night, whose tasks (and the
      // morning's wake-ups) wait behind it on the shared queues; see workflows/activityOptions.ts.
      priority: { priorityKey: leadPriority(lead, policy, now) },
      typedSearchAttributes: [
        ...searchAttributesAtStart(lead, policy, now),
        ...(lead.partnerCode ? [{ key: LeadPartnerKey, value: lead.partnerCode }] : []),
        ...(lead.site ? [{ key: LeadSiteKey, value: lead.site }] : []),
        ...(lead.orderAmount !== undefined ? [{ key: OrderAmountKey, value: lead.orderAmount }] : []),
      ],
      // What makes a lead recognisable in the Web UI's list without exposing the phone.
      memo: {
        phone: maskPhone(lead.phone),
        city: lead.city ?? '',
        partner: lead.partnerCode ?? '',
        ...(lead.phoneIssue ? { notCalled: lead.phoneIssue } : {}),
        ...(lead.clientRef ? { clientRef: lead.clientRef } : {}),
      },
      staticSummary: `${maskPhone(lead.phone)} · ${lead.city ?? '—'} · ${lead.partnerCode ?? 'без партнёра'}`,
    });
    return { status: 'started', ref: lead.ref, workflowId };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      return { status: 'duplicate', ref: lead.ref, workflowId };
    }
    throw err;
  }
}
