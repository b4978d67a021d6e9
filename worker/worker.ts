// The worker: the lead workflows and their activities on the main task queue, and the robot call on
// a queue of its own whose rate limit is the VoxImplant account's calls per second.
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { createCallActivities, createLeadActivities } from '../activities';
import type { Metrics } from '../support/metrics';

export interface LeadWorkers {
  leadWorker: Worker;
  callWorker: Worker;
  /** Resolves when both workers have stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): void;
}

export type WorkflowSource = Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>;

export function defaultWorkflowSource(): WorkflowSource {
  return { workflowsPath: require.resolve('../workflows') };
}

export async function createLeadWorkers(
  connection: NativeConnection,
  config: AppConfig,
  workflows: WorkflowSource = defaultWorkflowSource(),
  metrics?: Metrics,
): Promise<LeadWorkers> {
  const leadWorker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...workflows,
    activities: createLeadActivities(config, metrics),
    // Sleeping leads are many and idle; keep the cache large enough that a morning wake-up does
    // not replay every history, small enough for the memory target.
    maxCachedWorkflows: 2000,
    shutdownGraceTime: '10s',
  });
  const callWorker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.callTaskQueue,
    activities: createCallActivities(config, metrics),
    // Server-side, per task queue: holds across every worker process, so N workers together still
    // place at most CALLS_PER_SECOND calls.
    maxTaskQueueActivitiesPerSecond: config.call.callsPerSecond,
    maxConcurrentActivityTaskExecutions: config.call.maxConcurrentCalls,
    shutdownGraceTime: '10s',
  });
  let running: Promise<void> | undefined;
  return {
    leadWorker,
    callWorker,
    run() {
      running ??= Promise.all([leadWorker.run(), callWorker.run()]).then(() => undefined);
      return running;
    },
    shutdown() {
      for (const w of [leadWorker, callWorker]) {
        if (w.getState() === 'RUNNING') w.shutdown();
      }
    },
  };
}
