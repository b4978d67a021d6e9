// The worker: the lead workflows with alerts and SMS on the main task queue, Bitrix24 on a CRM queue
// and the robot call on a call queue. Those two queues carry server-side rate limits, so activities
// wait in Temporal's queue (not inside a running activity) and every worker process together stays
// under the provider's limit.
import { Client } from '@temporalio/client';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { createCallActivities, createCrmActivities, createLeadActivities } from '../activities';
import type { Metrics } from '../support/metrics';
import { buildWorkflowBundle } from './bundle';
import { logger } from '../support/logger';

const log = logger.child({ component: 'worker' });
import type { DataConverter } from '@temporalio/common';

export interface LeadWorkers {
  leadWorker: Worker;
  crmWorker: Worker;
  callWorker: Worker;
  /** Only while callCustomer workflows of older leads are running (see below). */
  callWorkflowWorker(): Worker | undefined;
  /** Resolves when every worker has stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): void;
}

/** A prebuilt bundle (tests, the benchmark); without one the workers build their own at start. */
export type WorkflowSource = Pick<WorkerOptions, 'workflowBundle'>;

/**
 * registerLead makes up to three Bitrix24 requests (partner, look up, add), a batch of call notes
 * one or two per note: a third of the portal's rate in activities. Each process also paces its own
 * requests to the portal's rate, so a burst of notes cannot exceed it.
 */
const BITRIX24_REQUESTS_PER_ACTIVITY = 3;

export async function createLeadWorkers(
  connection: NativeConnection,
  config: AppConfig,
  source: WorkflowSource = {},
  metrics?: Metrics,
  dataConverter?: DataConverter,
): Promise<LeadWorkers> {
  // One bundle for both workflow workers, built outside this process (see ./bundle).
  const workflows = { workflowBundle: source.workflowBundle ?? (await buildWorkflowBundle(config.dataDir)) };
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
    // (a few milliseconds) when an evicted lead wakes up.
    maxCachedWorkflows: config.temporal.workflowCacheSize,
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
    // The server's limit is for all workers together, but lets a burst through after a quiet spell
    // (measured: 61 calls in one second at 50/s when a morning of sleeping leads woke at once); this
    // worker's own limit spaces its calls evenly.
    maxTaskQueueActivitiesPerSecond: config.call.callsPerSecond,
    maxActivitiesPerSecond: config.call.callsPerSecond,
    maxConcurrentActivityTaskExecutions: config.call.maxConcurrentCalls,
  });
  const all = [leadWorker, crmWorker, callWorker];

  // The callCustomer workflows of leads accepted before the call moved into processLead run on a
  // queue of their own until they finish. A worker for it costs a V8 context (~65 MB), so it runs
  // only while Temporal lists such workflows: checked at start and, until found, every few minutes
  // (a rolling upgrade may still start a few on the older workers).
  let callWorkflowWorker: Worker | undefined;
  let legacyRun: Promise<void> | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const startLegacyWorkerIfNeeded = async (): Promise<boolean> => {
    if (callWorkflowWorker || stopped) return true;
    if (!(await legacyCallWorkflowsRunning(client))) return false;
    callWorkflowWorker = await Worker.create({
      ...common,
      taskQueue: LEGACY_CALL_WORKFLOW_TASK_QUEUE,
      ...workflows,
      activities: createLeadActivities(config, metrics),
      maxCachedWorkflows: Math.min(100, config.temporal.workflowCacheSize),
    });
    log.info(
      { taskQueue: LEGACY_CALL_WORKFLOW_TASK_QUEUE },
      'callCustomer workflows of older leads found: polling their queue',
    );
    if (running) legacyRun = callWorkflowWorker.run();
    return true;
  };
  await startLegacyWorkerIfNeeded();
  const recheck = setInterval(() => {
    startLegacyWorkerIfNeeded()
      .then((found) => found && clearInterval(recheck))
      .catch((err) => log.warn({ err: String(err) }, 'could not check for callCustomer workflows'));
  }, LEGACY_RECHECK_MS);
  recheck.unref();

  return {
    leadWorker,
    crmWorker,
    callWorker,
    callWorkflowWorker: () => callWorkflowWorker,
    run() {
      legacyRun ??= callWorkflowWorker?.run();
      running ??= Promise.all([...all.map((w) => w.run()), legacyRun]).then(async () => {
        await legacyRun;
      });
      return running;
    },
    shutdown() {
      stopped = true;
      clearInterval(recheck);
      for (const w of [...all, callWorkflowWorker]) if (w?.getState() === 'RUNNING') w.shutdown();
    },
  };
}

const LEGACY_RECHECK_MS = 5 * 60_000;
const LEGACY_CALL_WORKFLOW_TASK_QUEUE = 'lead-call-workflows';

/** Whether any callCustomer workflow is still running; when visibility cannot tell, assume so. */
async function legacyCallWorkflowsRunning(client: Client): Promise<boolean> {
  try {
    const { count } = await client.workflow.count(
      "WorkflowType = 'callCustomer' AND ExecutionStatus = 'Running'",
    );
    return count > 0;
  } catch (err) {
    log.warn({ err: String(err) }, 'could not count callCustomer workflows; polling their queue anyway');
    return true;
  }
}
