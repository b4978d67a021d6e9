// The lead worker's workflow-task slots, with room kept for eager starts. A new lead's first task
// (the one that places its call) comes back in the intake's own start request when this worker has
// a free slot at that moment, and skips the task queue altogether; without one it waits on the
// shared queue behind every running lead's later tasks, which in a burst is seconds. The SDK's
// pollers take every free slot while a backlog lasts, so under load no slot is ever free for an
// eager start: here the pollers stop at `polled` slots and only eager starts take the rest.
import type { CustomSlotSupplier, SlotPermit, WorkflowSlotInfo } from '@temporalio/worker';

export interface EagerHeadroom {
  /** Slots the pollers may hold (tasks in flight, and the pollers' own reservations). */
  polled: number;
  /** Slots on top of those that only an eager start takes. */
  eager: number;
}

export function workflowSlotsWithEagerHeadroom({
  polled,
  eager,
}: EagerHeadroom): CustomSlotSupplier<WorkflowSlotInfo> {
  let used = 0;
  const waiting: Array<() => void> = [];
  const permit: SlotPermit = {};
  return {
    type: 'custom',
    reserveSlot(_ctx, abortSignal) {
      if (used < polled && waiting.length === 0) {
        used += 1;
        return Promise.resolve(permit);
      }
      return new Promise<SlotPermit>((resolve, reject) => {
        const grant = () => {
          abortSignal.removeEventListener('abort', abort);
          used += 1;
          resolve(permit);
        };
        const abort = () => {
          const at = waiting.indexOf(grant);
          if (at >= 0) waiting.splice(at, 1);
          reject(new DOMException('the slot is no longer wanted', 'AbortError'));
        };
        waiting.push(grant);
        abortSignal.addEventListener('abort', abort, { once: true });
      });
    },
    // Called for eager tasks only (the SDK's contract): never blocks.
    tryReserveSlot() {
      if (used >= polled + eager) return null;
      used += 1;
      return permit;
    },
    markSlotUsed() {},
    releaseSlot() {
      used -= 1;
      if (used < polled) waiting.shift()?.();
    },
  };
}
