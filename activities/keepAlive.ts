// The heartbeats that only say "still here": an activity waiting in the Bitrix24 batcher, the
// Telegram outbox or the call budget. Each one sent is an RPC and a write of the workflow's state on
// the server (ten per lead when every wait heartbeated at once, more than the lead's own workflow
// tasks), and a wait of a few milliseconds needs none: the heartbeat timeout counts from the
// attempt's start. So they are dropped while the attempt is young and sent once a wait has lasted,
// which is also when a cancellation must reach it. Heartbeats that carry what a retry resumes from
// (the SMS's "sending" marker, the notes written) are sent at once, with ctx.heartbeat.
import type { Context } from '@temporalio/activity';

const firstSeen = new WeakMap<Context, number>();

/** How long an attempt keeps quiet: a quarter of its heartbeat timeout, at most 5 s. */
export function keepAliveQuietMs(ctx: Pick<Context, 'info'>): number {
  return Math.min(5_000, (ctx.info.heartbeatTimeoutMs ?? 20_000) / 4);
}

/**
 * Heartbeats `ctx` unless its wait began (the first keepAlive of this attempt) less than
 * keepAliveQuietMs ago. Call it when the wait begins, then as often as the wait goes on.
 */
export function keepAlive(ctx: Context, details?: unknown, now = Date.now()): void {
  let since = firstSeen.get(ctx);
  if (since === undefined) firstSeen.set(ctx, (since = now));
  if (now - since >= keepAliveQuietMs(ctx)) ctx.heartbeat(details);
}
