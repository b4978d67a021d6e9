// Workflow ids of leads and of the phone slots. An id derived from a phone number is an HMAC keyed
// with PHONE_ID_KEY, not a bare hash: phone numbers are few enough (10^10 in a country) that a bare
// SHA-256 in the Web UI's list gives every number back to whoever enumerates them. Every API
// process must share the key, or two posts of one lead on two hosts would get two workflows.
import crypto from 'node:crypto';
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import type { Logger } from 'pino';

/** Refs that are phone numbers (the intake's default ref, or a shop's ref typed as one). */
const PHONE_REF = /^\+?\d[\d\s\-()]{6,}$/;

const keyed = (key: string, label: string, text: string) =>
  crypto.createHmac('sha256', key).update(`${label}:${text}`).digest('hex').slice(0, 24);

/** A ref that is a phone number never appears in Temporal in clear; any other is used as it is. */
export function leadWorkflowId(ref: string, phoneIdKey: string): string {
  if (PHONE_REF.test(ref)) return `lead-k${keyed(phoneIdKey, 'lead', ref.replace(/\D/g, ''))}`;
  return `lead-${ref}`;
}

/**
 * The id 1.6 gave a lead with a phone ref (a bare hash), for leads it started that may still be
 * running: read, acted on and deduplicated against until none is left. Remove in the release after
 * the one that introduced the keyed ids, once MANUAL_HANDLING_TIMEOUT has passed since the upgrade.
 */
export function legacyLeadWorkflowId(ref: string): string | undefined {
  if (!PHONE_REF.test(ref)) return undefined;
  return `lead-h${crypto.createHash('sha256').update(ref.replace(/\D/g, '')).digest('hex').slice(0, 24)}`;
}

export function phoneSlotId(phone: string, slot: number, phoneIdKey: string): string {
  return `phone-slot-k${keyed(phoneIdKey, 'phone-slot', phone)}-${slot}`;
}

/** What a slot's memo says of the lead it was taken for: its workflow id may hold a phone's hash. */
export function slotLeadTag(leadWorkflowId: string, phoneIdKey: string): string {
  return keyed(phoneIdKey, 'slot-lead', leadWorkflowId);
}

/** The lead's workflow as it is now, under its id or (a lead 1.6 started) its legacy one. */
export async function describeLead(
  client: Client,
  ref: string,
  phoneIdKey: string,
): Promise<{ workflowId: string; description: WorkflowExecutionDescription } | undefined> {
  for (const workflowId of [leadWorkflowId(ref, phoneIdKey), legacyLeadWorkflowId(ref)]) {
    if (!workflowId) continue;
    try {
      return { workflowId, description: await client.workflow.getHandle(workflowId).describe() };
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return undefined;
}

const LEGACY_RECOUNT_MS = 60_000;

/**
 * Whether a lead 1.6 started under the legacy id of this ref is still running, so that a post of
 * the same customer after the upgrade is the duplicate it would have been before. The intake asks
 * Temporal per lead only while some legacy lead runs at all: that is counted once a minute.
 */
export function legacyLeadGuard(client: Client, logger: Logger, now: () => number = Date.now) {
  let running = true;
  let countedAt = -Infinity;
  let counting: Promise<void> | undefined;

  async function recount(): Promise<void> {
    try {
      const { count } = await client.workflow.count(
        `WorkflowType = 'processLead' AND ExecutionStatus = 'Running' AND WorkflowId STARTS_WITH 'lead-h'`,
      );
      running = count > 0;
    } catch (err) {
      // Unknown: ask per lead until the next count, a minute on.
      running = true;
      logger.warn({ err: String(err) }, 'could not count the leads started before keyed ids');
    } finally {
      countedAt = now();
      counting = undefined;
    }
  }

  return {
    /** The legacy workflow id of this ref when that lead is still running. */
    async runningLegacyLead(ref: string): Promise<string | undefined> {
      const workflowId = legacyLeadWorkflowId(ref);
      if (!workflowId) return undefined;
      if (now() - countedAt > LEGACY_RECOUNT_MS) await (counting ??= recount());
      if (!running) return undefined;
      try {
        const d = await client.workflow.getHandle(workflowId).describe();
        return d.status.name === 'RUNNING' ? workflowId : undefined;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    },
  };
}
export type LegacyLeadGuard = ReturnType<typeof legacyLeadGuard>;
