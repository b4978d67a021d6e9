// Turning what a shop posts into a LeadInput, and starting its workflow exactly once per ref.
// Required fields that are wrong reject the lead (400); optional fields that are wrong fall back to
// the shop's defaults and the lead records it, so a typo in a time zone never loses a customer.
import crypto from 'node:crypto';
import { z } from 'zod';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { AppConfig } from '../config';
import { normalizePhone, phoneCountry } from '../domain/phone';
import { isValidTimeZone } from '../domain/timezone';
import { isWorkingTime } from '../domain/workingHours';
import { lookupIp } from './geoip';
import { fieldProblems, type FieldProblem } from './http';
import { maskPhone } from '../support/logger';
import { grantCall } from './phoneLimit';
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
  let timezone = lead.timezone;
  if (timezone && !isValidTimeZone(timezone)) {
    warnings.push(`неизвестный часовой пояс "${timezone}": взят ${config.defaultTimezone}`);
    timezone = undefined;
  }
  let city = lead.city;
  if ((!timezone || !city) && raw.clientIp) {
    const geo = await lookupIp(raw.clientIp);
    if (!timezone && geo?.timezone && isValidTimeZone(geo.timezone)) timezone = geo.timezone;
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
  let phoneIssue: LeadInput['phoneIssue'] = phone.callable ? undefined : phone.reason;
  if (!phoneIssue) {
    const country = phoneCountry(phone.digits);
    if (!country || !config.phoneRules.allowedCountries.includes(country)) {
      phoneIssue = 'country_not_allowed';
      warnings.push(
        `номер ${country ? `страны ${country}` : 'международной сети без страны'}: не звоним и не пишем (разрешены ${config.phoneRules.allowedCountries.join(', ')})`,
      );
    }
  }

  return {
    ref: lead.ref ?? phone.digits,
    name: lead.name,
    phone: phone.digits,
    phoneCallable: !phoneIssue,
    phoneIssue,
    city,
    timezone: timezone ?? config.defaultTimezone,
    partnerCode,
    site: lead.site,
    orderAmount,
    comment: lead.comment,
    source: raw.source,
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

/**
 * A ref that is a phone number must not appear in Temporal in plain text, so such refs are hashed
 * into the workflow id; any other ref is used as it is, so operators recognise it.
 */
export function leadWorkflowId(ref: string): string {
  if (/^\+?\d[\d\s\-()]{6,}$/.test(ref)) {
    return `lead-h${crypto.createHash('sha256').update(ref.replace(/\D/g, '')).digest('hex').slice(0, 24)}`;
  }
  return `lead-${ref}`;
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
): Promise<StartOutcome & { notCalled?: NotCalled }> {
  const workflowId = leadWorkflowId(parsed.ref);
  let lead = parsed;
  const grant = lead.phoneCallable ? await grantCall(client, config, lead.phone, workflowId) : undefined;
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
