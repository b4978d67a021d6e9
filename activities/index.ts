// Wires the per-service adapters into the activity sets the worker registers: alerts and SMS on
// the main task queue, Bitrix24 on a CRM queue and the robot call on a call queue, each of those
// two rate-limited to what the provider allows.
import { asyncLocalStorage } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { claimOf, sealAttempt, type SealOutcome } from '../support/callClaims';
import type { AppConfig } from '../config';
import type { Metrics } from '../support/metrics';
import { sharedLimit, type LimitPolicy, type SharedLimit } from '../support/sharedLimit';
import { openWakeSlots, type WakeSlot } from '../support/wakeSlots';
import { createBitrix24Activities } from './bitrix24';
import { keepAlive } from './keepAlive';
import { createSmsActivities, createSmsRuGateway, smsAccountErrorOf, type SmsInput } from './sms';
import { createSmsAccountAlerts } from './smsAccountAlerts';
import { createTelegramActivities, type CrmLeadLink, type SellerAlert } from './telegram';
import { createVoximplantActivities, type PlaceCallInput } from './voximplant';

export function createLeadActivities(
  config: AppConfig,
  metrics?: Metrics,
  opts: { now?: () => number } = {},
) {
  // One outbox per worker process; the message budget is shared through DATA_DIR with the others.
  const telegram = createTelegramActivities(config.telegram, {
    dataDir: config.dataDir,
    metrics,
  });
  const sms = createSmsActivities(createSmsRuGateway(config.sms));
  const accountAlerts = createSmsAccountAlerts({
    // Outside the failed sendSms's activity context: the alert must not heartbeat that activity or
    // leave the queue when it ends.
    send: (html) => asyncLocalStorage.exit(() => telegram.notifySellersChat(html)),
    now: opts.now,
  });
  return {
    async notifySellers(alert: SellerAlert) {
      const sent = await telegram.notifySellers(alert);
      if (alert.kind === 'manual_handling') {
        metrics?.manualHandling.inc({ reason: alert.reason?.split(':')[0] ?? 'unknown' });
      }
      return sent;
    },
    /** The lead's CRM id for the sellers, once its new-lead alert has gone (or is queued). */
    async notifySellersCrmLead(input: CrmLeadLink) {
      return telegram.notifySellersCrmLead(input);
    },
    async sendSms(input: SmsInput) {
      try {
        const result = await sms.sendSms(input);
        if (result.status === 'sent') metrics?.smsSent.inc();
        return result;
      } catch (err) {
        const account = smsAccountErrorOf(err);
        if (account) {
          metrics?.smsAccountErrors.inc({ kind: account.kind });
          // Not awaited: a slow Telegram must not push this attempt past its timeouts and turn a
          // final answer into retries; raise() never rejects.
          void accountAlerts.raise(account.kind, (err as Error).message);
        }
        throw err;
      }
    },
  };
}

/**
 * Run as local activities by the lead worker, beside the workflow: a lead going to sleep until a
 * window opens takes its place in the morning's queue (support/wakeSlots).
 */
export function createWakeSlotActivities(config: Pick<AppConfig, 'dataDir' | 'call'>) {
  const slots = openWakeSlots({ dir: config.dataDir, perSecond: config.call.morningLeadsPerSecond });
  return {
    async takeWakeSlot(input: { windowStart: number }): Promise<WakeSlot> {
      return slots.take(input.windowStart);
    },
  };
}

/**
 * Run as a local activity by the lead worker: the lead seals an attempt it stops waiting for, and
 * learns whether the scenario claimed it first (support/callClaims).
 */
export function createCallClaimActivities(client: Client) {
  return {
    async sealCallAttempt(input: {
      runId: string;
      attempt: number;
      holdMs: number;
      /** the attempt was reported, so claimed: read its claim without trying to seal it */
      readOnly?: boolean;
    }): Promise<SealOutcome> {
      if (!input.readOnly) return sealAttempt(client, input);
      // Reported, so dialled, whatever Temporal still holds of its claim: one read, no seal.
      return { claimed: true, at: Date.now(), ...(await claimOf(client, input.runId, input.attempt)) };
    },
  };
}

export function createCrmActivities(
  config: AppConfig,
  metrics?: Pick<Metrics, 'crmLeadsWaiting' | 'intakeToCrmLead'>,
) {
  return createBitrix24Activities(config.bitrix24, { dataDir: config.dataDir, metrics });
}

/** How often a call waiting for its place under CALLS_PER_SECOND heartbeats its activity. */
const BUDGET_HEARTBEAT_MS = 5_000;

/**
 * Waits for the call's place in the budget, heartbeating the activity meanwhile; an attempt
 * cancelled or timed out while it waits (its heartbeat tells it) leaves without calling.
 */
async function waitForBudget(budget: SharedLimit): Promise<void> {
  const ctx = asyncLocalStorage.getStore();
  if (!ctx) return void (await budget.take());
  keepAlive(ctx);
  const beat = setInterval(() => keepAlive(ctx), BUDGET_HEARTBEAT_MS);
  try {
    await Promise.race([budget.take(), ctx.cancelled]);
  } finally {
    clearInterval(beat);
  }
  // After a wait that lasted, the heartbeat timeout counts from here for the requests that follow.
  keepAlive(ctx);
}

/**
 * CALLS_PER_SECOND as a leaky bucket. Up to 20 a second, one call at a time, 3% under the rate so
 * that network jitter cannot squeeze one call too many into a second at VoxImplant. Above that, a
 * twentieth of a second's calls may go at once, and the drain is lowered by as many, so no sliding
 * second holds more than CALLS_PER_SECOND: a burst of leads then does not wait one timer (on a busy
 * event loop, tens of milliseconds) per call.
 */
export function callBudget(config: Pick<AppConfig, 'call'>): LimitPolicy {
  const rate = config.call.callsPerSecond;
  const burst = Math.max(1, Math.floor(rate / 20));
  return { kind: 'bucket', burst, perSecond: burst === 1 ? rate * 0.97 : rate - burst };
}

export function createCallActivities(config: AppConfig, metrics?: Metrics) {
  const voximplant = createVoximplantActivities(config.voximplant);
  // First calls run on the lead's queue and later ones on the call queue, whose server-side limit
  // lets a burst through after a quiet spell (a morning of sleeping leads waking at once): one
  // budget for both, shared by every worker that shares DATA_DIR, keeps every second at
  // CALLS_PER_SECOND (callBudget).
  const budget = sharedLimit({ name: 'voximplant-calls', dir: config.dataDir, policy: callBudget(config) });
  return {
    async placeRobotCall(input: PlaceCallInput & { receivedAt?: number }) {
      await waitForBudget(budget);
      const started = Date.now();
      const result = await voximplant.placeRobotCall(input);
      if (!result.deduplicated) metrics?.callsPlaced.inc();
      if (input.attempt === 1 && input.receivedAt) {
        metrics?.intakeToCall.observe((started - input.receivedAt) / 1000);
      }
      return result;
    },
  };
}

export type LeadActivities = ReturnType<typeof createLeadActivities>;
export type CrmActivities = ReturnType<typeof createCrmActivities>;
export type CallActivities = ReturnType<typeof createCallActivities>;
export type WakeSlotActivities = ReturnType<typeof createWakeSlotActivities>;
export type CallClaimActivities = ReturnType<typeof createCallClaimActivities>;
