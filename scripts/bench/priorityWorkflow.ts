// The matching diagnostic's workflow: one activity on a queue of the caller's, at the caller's priority.
import { proxyActivities } from '@temporalio/workflow';

export interface MarkActivities {
  mark(priorityKey: number): Promise<void>;
}

export async function markOnce(taskQueue: string, priorityKey: number): Promise<void> {
  const { mark } = proxyActivities<MarkActivities>({
    taskQueue,
    startToCloseTimeout: '1m',
    scheduleToStartTimeout: '10m',
    priority: { priorityKey },
  });
  await mark(priorityKey);
}
