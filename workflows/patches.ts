// The patch ids of the lead workflow's releases (README, "Changing a workflow"). Each id a workflow
// meets costs it a marker and an upsert of the TemporalChangeVersion search attribute (the SDK's
// core adds one per new id), so a release's changes share one id, checked wherever they differ.
// An id is removed only after `deprecatePatch` ran for a release and no lead older than it runs.
import { patched } from '@temporalio/workflow';

/** 1.1.0: the new-lead alert goes beside registerLead; the CRM link follows as its own activity. */
export const ALERT_BEFORE_CRM = 'alert-before-crm';

/**
 * 1.2.0: the new-lead alert waits a moment for the CRM lead (one message with the link), and the
 * CRM notes go beside the last SMS instead of after it. A lead started by 1.2.0 never checks the
 * 1.1.0 id: this one implies it.
 */
export const RELEASE_1_2_0 = 'release-1.2.0';

/**
 * 1.3.0: a lead going to sleep until a window opens takes its place in the morning's queue (a
 * local activity) and wakes at it, instead of every sleeping lead waking at the opening at once.
 * Implies 1.2.0: a lead started by 1.3.0 checks only this id.
 */
export const RELEASE_1_3_0 = 'release-1.3.0';

/**
 * 1.5.0: an attempt that ends without a report and without a granted claim was never dialled (the
 * scenario dials only after its claim), so it is tried again at once, as an attempt, instead of
 * going to a person. Asked only where the two versions part, after such an attempt.
 */
export const RELEASE_1_5_0 = 'release-1.5.0';

/**
 * 1.7.0: the scenario's claim is decided by Temporal alone (support/callClaims), not by an update
 * of the lead: the lead seals each attempt when it stops waiting for it (a local activity) and
 * learns so whether it was dialled. Asked where the versions part, after each attempt's wait.
 */
export const RELEASE_1_7_0 = 'release-1.7.0';

/**
 * 1.8.1: no new behaviour; one id for all of the above. Each id a lead meets costs it a marker and
 * an upsert of TemporalChangeVersion (a visibility write); a lead started by 1.8.1 or later records
 * this one id in its first task and no other, where a lead of 1.7.0 recorded two (1.3.0 in its first
 * task, 1.7.0 when its first attempt ended) and a lead that fell asleep or went unclaimed three or
 * four. It is asked first wherever an older id is (`follows`), so an older lead, which has no such
 * marker in its first task, goes on asking its own ids.
 */
export const RELEASE_1_8_1 = 'release-1.8.1';

type Release = typeof RELEASE_1_3_0 | typeof RELEASE_1_5_0 | typeof RELEASE_1_7_0;

/** Whether this run follows `release`: started by that release or a later one. */
export function follows(release: Release): boolean {
  return patched(RELEASE_1_8_1) || patched(release);
}

/**
 * Whether this run follows 1.2.0 or later. The newest ids are asked first, so a run started by 1.8.1
 * records that id alone, one started by 1.3.0 … 1.8.0 the 1.3.0 id, and a run of 1.2.0 finds its own
 * marker.
 */
export function follows1_2_0(): boolean {
  return follows(RELEASE_1_3_0) || patched(RELEASE_1_2_0);
}
