// The floors the lead pipeline is compared with. `bare`: one workflow that runs one activity,
// nothing else. `callPath`: what a first call needs at the least: one workflow task that schedules
// one activity on a task queue with a server-side rate limit (as the service's call queue has).
import { proxyActivities, workflowInfo } from '@temporalio/workflow';

export interface BareActivities {
  touch(): Promise<void>;
}

const { touch } = proxyActivities<BareActivities>({ startToCloseTimeout: '10s' });

export async function bare(): Promise<void> {
  await touch();
}

/** The rate-limited queue of the call-path floor: the workflow's own queue with `-calls`. */
export const callPathQueue = (workflowQueue: string) => `${workflowQueue}-calls`;

export async function callPath(): Promise<void> {
  const { touch: call } = proxyActivities<BareActivities>({
    startToCloseTimeout: '10s',
    taskQueue: callPathQueue(workflowInfo().taskQueue),
  });
  await call();
}
