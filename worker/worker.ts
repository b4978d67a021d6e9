// The worker: the lead workflows with alerts and SMS on the main task queue, Bitrix24 on a CRM queue
// and the robot call on a call queue. Those two queues carry server-side rate limits, so activities
// wait in Temporal's queue (not inside a running activity) and every worker process together stays
// under the provider's limit.
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { createCallActivities, createCrmActivities, createLeadActivities } from '../activities';
import type { Metrics } from '../support/metrics';
import type { DataConverter } from '@temporalio/common';

export interface LeadWorkers {
  leadWorker: Worker;
  callWorkflowWorker: Worker;
  crmWorker: Worker;
  callWorker: Worker;
  /** Resolves when every worker has stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): void;
}

export type WorkflowSource = Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;

export function defaultWorkflowSource(): WorkflowSource {
  return { workflowsPath: require.resolve('../workflows') };
}

/** createCrmLead makes two Bitrix24 requests (look up, add): half the portal's rate in activities. */
const BITRIX24_REQUESTS_PER_ACTIVITY = 2;

export async function createLeadWorkers(
  connection: NativeConnection,
  config: AppConfig,
  workflows: WorkflowSource = defaultWorkflowSource(),
  metrics?: Metrics,
  dataConverter?: DataConverter,
): Promise<LeadWorkers> {
  const common = {
    connection,
    namespace: config.temporal.namespace,
    shutdownGraceTime: '10s',
    dataConverter,
  } as const;
  const leadWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.taskQueue,
    ...workflows,
    activities: createLeadActivities(config, metrics),
    // Sleeping leads are many and idle; a bounded cache keeps memory flat, at the cost of a replay
    // when an evicted lead wakes up.
    maxCachedWorkflows: 1000,
  });
  // Same workflow code, its own queue: the call workflows' tasks (the path to the first call) are
  // polled apart from the backlog the CRM and alerts of other leads leave on the main queue.
  const callWorkflowWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.callWorkflowTaskQueue,
    ...workflows,
    activities: createLeadActivities(config, metrics),
    maxCachedWorkflows: 1000,
  });
  const crmWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.crmTaskQueue,
    activities: createCrmActivities(config),
    maxTaskQueueActivitiesPerSecond: config.bitrix24.requestsPerSecond / BITRIX24_REQUESTS_PER_ACTIVITY,
    maxConcurrentActivityTaskExecutions: 10,
  });
  const callWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.callTaskQueue,
    activities: createCallActivities(config, metrics),
    maxTaskQueueActivitiesPerSecond: config.call.callsPerSecond,
    maxConcurrentActivityTaskExecutions: config.call.maxConcurrentCalls,
  });
  const all = [leadWorker, callWorkflowWorker, crmWorker, callWorker];
  let running: Promise<void> | undefined;
  return {
    leadWorker,
    callWorkflowWorker,
    crmWorker,
    callWorker,
    run() {
      running ??= Promise.all(all.map((w) => w.run())).then(() => undefined);
      return running;
    },
    shutdown() {
      for (const w of all) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}
