// A workflow id as an atomic decision: the first start of the id wins and Temporal refuses any
// other while it is held, and no worker ever runs it. Its start is delayed a year; its execution
// timeout closes it long before, so it costs one start RPC and no task. (A year, not just past the
// timeout: the Java time-skipping test server does not close a workflow whose start is delayed,
// and skipping over a due start nobody polls stops its clock.) The phone slots of the daily limit
// (api/phoneLimit.ts) and the call claims (support/callClaims.ts) are such ids.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';

const NEVER_STARTS_MS = 365 * 24 * 3_600_000;

export interface TasklessStart {
  type: string;
  /** never polled */
  taskQueue: string;
  workflowId: string;
  /** how long the id is held */
  holdMs: number;
  /** ALLOW_DUPLICATE: the id may be taken again once its hold is over */
  reuse: 'ALLOW_DUPLICATE' | 'REJECT_DUPLICATE';
  memo: Record<string, unknown>;
  summary: string;
}

/** The run that took the id, or undefined when the id is held already. */
export async function takeWorkflowId(client: Client, o: TasklessStart): Promise<string | undefined> {
  try {
    const handle = await client.workflow.start(o.type, {
      taskQueue: o.taskQueue,
      workflowId: o.workflowId,
      args: [],
      workflowExecutionTimeout: o.holdMs,
      startDelay: NEVER_STARTS_MS,
      workflowIdConflictPolicy: 'FAIL',
      workflowIdReusePolicy: o.reuse,
      memo: o.memo,
      staticSummary: o.summary,
    });
    return handle.firstExecutionRunId;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
    throw err;
  }
}
