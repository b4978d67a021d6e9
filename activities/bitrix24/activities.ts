// The CRM activities the worker registers: registerLead (the partner lookup and the lead, in one
// activity) and recordCallAttempts (a lead's call notes, in order). Both are idempotent: a retry
// finds the lead it added and resumes after the last note written. Their requests go through the
// portal's batcher (batcher.ts), which sends the work of many activities in one `batch` request.
import { z } from 'zod';
import { activityContext } from '../http';
import { sharedBitrix24Batcher, type Bitrix24BatcherOptions } from './batcher';
import type { Bitrix24Config } from './client';

export { ORIGINATOR_ID } from './batcher';

export interface Partner {
  id: number;
  title: string;
  code: string;
}
export type PartnerLookup = { status: 'found'; partner: Partner } | { status: 'not_found' };
/** What registering a lead found of its partner; lookup_failed when Bitrix24 refused the search. */
export type PartnerOutcome = PartnerLookup | { status: 'lookup_failed'; reason: string };
export interface CrmLeadInput {
  ref: string;
  name: string;
  phone: string;
  city?: string;
  timezone?: string;
  partnerCode?: string;
  site?: string;
  orderAmount?: number;
  comment?: string;
  /** When the lead reached intake (epoch ms), for the intake-to-CRM histogram. */
  receivedAt?: number;
}
/** created=false when an existing lead with the same ORIGIN_ID was found. */
export interface RegisteredLead {
  leadId: number;
  created: boolean;
  partner?: PartnerOutcome;
}
export interface CallAttemptNote {
  statusId?: string;
  comment: string;
}
export interface Bitrix24Activities {
  registerLead(input: CrmLeadInput): Promise<RegisteredLead>;
  /** Several notes for one lead, in order; a retry resumes after the last one written. */
  recordCallAttempts(batch: { leadId: number; notes: CallAttemptNote[] }): Promise<void>;
}

const NotesDone = z.object({ notesDone: z.number().int().nonnegative() });

export function createBitrix24Activities(
  cfg: Bitrix24Config,
  opts: Bitrix24BatcherOptions,
): Bitrix24Activities {
  const batcher = sharedBitrix24Batcher(cfg, opts);
  return {
    registerLead: (input) => batcher.registerLead(input),

    async recordCallAttempts({ leadId, notes }) {
      const previous = NotesDone.safeParse(activityContext()?.info.heartbeatDetails);
      const done = previous.success ? previous.data.notesDone : 0;
      for (let i = done; i < notes.length; i++) {
        await batcher.recordNote(leadId, notes[i]!, { notesDone: i });
        // What a retry resumes after; after the last note the activity completes instead.
        if (i + 1 < notes.length) activityContext()?.heartbeat({ notesDone: i + 1 });
      }
    },
  };
}
