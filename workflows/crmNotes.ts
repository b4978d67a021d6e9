// The call process's notes on the CRM lead ("attempt 1: busy", "answered, SMS sent"), written in
// the background and in order, so a slow or rate-limited Bitrix24 never delays the next call.
// Notes wait until the CRM lead exists; if it never comes, they are dropped with it.
import { condition, log } from '@temporalio/workflow';
import { activity } from './activityOptions';

export interface CrmNoteQueue {
  add(comment: string, statusId?: string): void;
  leadCreated(leadId: number): void;
  leadFailed(): void;
  /** Resolves once the CRM lead is settled (bounded) and every note for it is written. */
  drained(): Promise<void>;
}

export function createCrmNoteQueue(crmTaskQueue: string): CrmNoteQueue {
  const recordCallAttempts = activity('recordCallAttempts', crmTaskQueue);
  const notes: Array<{ statusId?: string; comment: string }> = [];
  let leadId: number | undefined;
  let settled = false;
  let writer: Promise<void> | undefined;

  function flush(): void {
    if (leadId === undefined || writer) return;
    const id = leadId;
    writer = (async () => {
      while (notes.length > 0) {
        const batch = notes.slice();
        try {
          await recordCallAttempts({ leadId: id, notes: batch });
        } catch (err) {
          log.warn('could not write the call attempts to the CRM', { error: String(err) });
        }
        notes.splice(0, batch.length);
      }
    })().finally(() => {
      writer = undefined;
    });
  }

  return {
    add(comment, statusId) {
      notes.push({ comment, statusId });
      flush();
    },
    leadCreated(id) {
      leadId = id;
      settled = true;
      flush();
    },
    leadFailed() {
      settled = true;
    },
    async drained() {
      // The CRM lead may still be on its way (Bitrix24 slow or down): registerLead gives up within
      // six hours, so this wait is bounded by it.
      await condition(() => settled);
      await condition(() => writer === undefined && (notes.length === 0 || leadId === undefined));
    },
  };
}
