// PHONE_DAILY_LIMIT: at most N leads of one phone number in any 24 hours get calls and SMS, across
// every API process. The count lives in Temporal, as N "slots" per number: slot k is a workflow
// with the id phone-slot-k<HMAC of the number>-<k> and an execution timeout of 24 hours. Taking a
// slot is starting that workflow; Temporal lets only one run of an id be open, so two intakes can
// never take the same slot, and the server itself closes it when the day is over. No worker ever
// runs one (support/tasklessWorkflow), so no workflow task is ever scheduled. A slot
// costs one start RPC, holds nothing in any worker's cache and has no code that could need a replay.
//
// A slot's memo names the lead it was taken for. A second post of that same lead (a double click,
// a retried request) shares its slot instead of taking another while the lead has not yet been
// started or is still in progress; a slot taken by a post that turned out to be a duplicate is
// given back.
import { WorkflowNotFoundError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import type { AppConfig } from '../config';
import { phoneSlotId, slotLeadTag } from './leadIds';
import { takeWorkflowId } from '../support/tasklessWorkflow';

export const PHONE_SLOT_WORKFLOW = 'phoneCallSlot';
/** No task ever reaches this queue (see above); nothing needs to poll it. */
export const PHONE_SLOT_TASK_QUEUE = 'phone-call-slots';

export interface CallGrant {
  granted: boolean;
  /** Gives a slot this lead took back, when the lead was not started after all. */
  release(): Promise<void>;
}

const NOTHING_TO_RELEASE = async () => undefined;

/** Whether the lead `leadWorkflowId` may be called: takes or shares one of its number's slots. */
export async function grantCall(
  client: Client,
  config: Pick<AppConfig, 'phoneRules' | 'phoneIdKey'>,
  phone: string,
  leadWorkflowId: string,
): Promise<CallGrant> {
  const { dailyLimit, windowMs } = config.phoneRules;
  for (let slot = 1; slot <= dailyLimit; slot++) {
    const workflowId = phoneSlotId(phone, slot, config.phoneIdKey);
    // A slot that closes between our failed start and the describe is free: take it then.
    for (let attempt = 0; attempt < 3; attempt++) {
      const runId = await takeWorkflowId(client, {
        type: PHONE_SLOT_WORKFLOW,
        taskQueue: PHONE_SLOT_TASK_QUEUE,
        workflowId,
        holdMs: windowMs,
        reuse: 'ALLOW_DUPLICATE',
        // Keyed: a lead's workflow id is its ref, and a ref may hold the number.
        memo: { lead: slotLeadTag(leadWorkflowId, config.phoneIdKey) },
        summary: `PHONE_DAILY_LIMIT: slot ${slot} of one number, held ${Math.round(windowMs / 3_600_000)} h (no worker runs it)`,
      });
      if (runId !== undefined) {
        return {
          granted: true,
          async release() {
            await client.workflow
              .getHandle(workflowId, runId)
              .terminate('the lead it was taken for was a duplicate')
              .catch((err: unknown) => {
                if (!(err instanceof WorkflowNotFoundError)) throw err;
              });
          },
        };
      }
      let held: WorkflowExecutionDescription;
      try {
        held = await client.workflow.getHandle(workflowId).describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) continue;
        throw err;
      }
      if (held.status.name !== 'RUNNING') continue;
      if (
        held.memo?.lead === slotLeadTag(leadWorkflowId, config.phoneIdKey) &&
        !(await leadFinishedSince(client, leadWorkflowId, held))
      ) {
        return { granted: true, release: NOTHING_TO_RELEASE };
      }
      break;
    }
  }
  return { granted: false, release: NOTHING_TO_RELEASE };
}

/** Whether the lead's latest run started after the slot was taken and has closed: it used the slot. */
async function leadFinishedSince(
  client: Client,
  leadWorkflowId: string,
  slot: WorkflowExecutionDescription,
): Promise<boolean> {
  try {
    const lead = await client.workflow.getHandle(leadWorkflowId).describe();
    return lead.startTime >= slot.startTime && lead.status.name !== 'RUNNING';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
