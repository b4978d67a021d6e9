// The scenario's claim of a call attempt, decided by Temporal alone: no workflow task of the lead is
// on the way to the dial. An attempt's claim is a workflow id, call-claim-<run>-<attempt>; the first
// start of it wins and Temporal allows no second, so one session dials per attempt however often
// StartScenarios was retried. Whoever comes first takes it: the scenario that is about to dial
// (the claim is granted), or the lead that stops waiting for the attempt (the result timed out, an
// operator stopped the lead), which seals it so a claim after that gets 409. The lead learns by
// the same race whether anyone dialled.
//
// As with the phone slots (api/phoneLimit.ts), no worker ever runs one (support/tasklessWorkflow),
// so a claim costs one start RPC and no task; the server closes it when the attempt's token has
// expired, and a claim after that is refused by the token itself.
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { takeWorkflowId } from './tasklessWorkflow';
import { CallAttemptsKey } from '../workflows/searchAttributes';

export const CALL_CLAIM_WORKFLOW = 'callClaim';
/** No task ever reaches this queue: nothing polls it. */
export const CALL_CLAIM_TASK_QUEUE = 'call-claims';

export function callClaimId(runId: string, attempt: number): string {
  return `call-claim-${runId}-${attempt}`;
}

export interface ClaimKey {
  /** the lead's run: a later lead with the same ref is another run */
  runId: string;
  attempt: number;
  /** how long the claim is kept: at least as long as the attempt's token is valid */
  holdMs: number;
}

interface ClaimMemo {
  session?: string;
  sealed?: boolean;
}

async function start(client: Client, key: ClaimKey, memo: ClaimMemo, summary: string): Promise<boolean> {
  const runId = await takeWorkflowId(client, {
    type: CALL_CLAIM_WORKFLOW,
    taskQueue: CALL_CLAIM_TASK_QUEUE,
    workflowId: callClaimId(key.runId, key.attempt),
    holdMs: key.holdMs,
    reuse: 'REJECT_DUPLICATE',
    memo: memo as Record<string, unknown>,
    summary,
  });
  return runId !== undefined;
}

/** The claim that won the attempt, or undefined when Temporal no longer has it. */
async function holder(client: Client, key: ClaimKey): Promise<{ memo: ClaimMemo; at: number } | undefined> {
  try {
    const d = await client.workflow.getHandle(callClaimId(key.runId, key.attempt)).describe();
    return { memo: (d.memo ?? {}) as ClaimMemo, at: d.startTime.getTime() };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

export type ClaimAnswer = 'granted' | 'claimed_by_another' | 'sealed';

/**
 * The scenario's claim: granted to the first session that asks, and again to that same session
 * (its answer was lost on the way); refused to any other, and once the lead has sealed the attempt.
 */
export async function claimAttempt(client: Client, key: ClaimKey, sessionId?: string): Promise<ClaimAnswer> {
  const summary = `call attempt ${key.attempt} claimed${sessionId ? ` by session ${sessionId}` : ''} (no worker runs it)`;
  if (await start(client, key, sessionId ? { session: sessionId } : {}, summary)) return 'granted';
  const won = await holder(client, key);
  if (!won) return 'claimed_by_another';
  if (won.memo.sealed) return 'sealed';
  return sessionId !== undefined && won.memo.session === sessionId ? 'granted' : 'claimed_by_another';
}

export type SealOutcome = { claimed: false } | { claimed: true; at: number; sessionId?: string };

/**
 * Ends the attempt for any later claim and tells whether a claim came first: then a session
 * dialled (at `at`). Sealing twice (a retried local activity, an operator's stop before the
 * lead's own) finds the seal and answers the same.
 */
export async function sealAttempt(client: Client, key: ClaimKey): Promise<SealOutcome> {
  if (await start(client, key, { sealed: true }, `call attempt ${key.attempt} sealed: no claim after this`)) {
    return { claimed: false };
  }
  const won = await holder(client, key);
  if (!won || won.memo.sealed) return { claimed: false };
  return { claimed: true, at: won.at, ...(won.memo.session ? { sessionId: won.memo.session } : {}) };
}

/**
 * An operator stops a lead (cancel, handled): its current attempt and the next one are sealed
 * before the lead is told, so a scenario's claim that comes after the operator's 200 is refused
 * even while the lead's workflow has not yet taken the stop (it cannot start a third attempt
 * without taking it). A lead that is not running, or has placed no call yet, has nothing to seal.
 */
export async function sealForOperatorStop(client: Client, workflowId: string, holdMs: number): Promise<void> {
  let d;
  try {
    d = await client.workflow.getHandle(workflowId).describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return;
    throw err;
  }
  if (d.status.name !== 'RUNNING') return;
  const attempts = Number(d.typedSearchAttributes.get(CallAttemptsKey) ?? 0);
  for (const attempt of [attempts, attempts + 1]) {
    if (attempt >= 1) await sealAttempt(client, { runId: d.runId, attempt, holdMs });
  }
}

/** How long a seal by the API is kept: as long as any attempt's token can be valid. */
export function claimHoldMs(config: { call: { resultTimeoutMs: number } }): number {
  return config.call.resultTimeoutMs + 3_600_000;
}

/** The session's claim of the attempt (when, and by which session), or undefined: none so far, or sealed. */
export async function claimOf(
  client: Client,
  runId: string,
  attempt: number,
): Promise<{ at: number; sessionId?: string } | undefined> {
  const won = await holder(client, { runId, attempt, holdMs: 0 });
  if (!won || won.memo.sealed) return undefined;
  return { at: won.at, ...(won.memo.session ? { sessionId: won.memo.session } : {}) };
}

/** When a session claimed the attempt (epoch ms), or undefined: unclaimed so far, or sealed. */
export async function claimedAt(client: Client, runId: string, attempt: number): Promise<number | undefined> {
  return (await claimOf(client, runId, attempt))?.at;
}
