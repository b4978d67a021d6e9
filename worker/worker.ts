// The worker: the lead workflows with alerts and SMS on the main task queue, Bitrix24 on a CRM queue
// and the robot call on a call queue. The call queue carries a server-side rate limit, so calls
// wait in Temporal's queue (not inside a running activity); the CRM activities queue their work in
// the portal's batcher, which sends it in `batch` requests under the budget every worker process
// sharing DATA_DIR shares.
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { AppConfig } from '../config';
import { Client } from '@temporalio/client';
import {
  createCallActivities,
  createCallClaimActivities,
  createCrmActivities,
  createLeadActivities,
  createWakeSlotActivities,
} from '../activities';
import type { Metrics } from '../support/metrics';
import { buildWorkflowBundle } from './bundle';
import { workflowSlotsWithEagerHeadroom, type EagerHeadroom } from './eagerHeadroom';
import { workflowCacheSize } from './cacheSize';
import type { DataConverter } from '@temporalio/common';

export interface LeadWorkers {
  leadWorker: Worker;
  crmWorker: Worker;
  callWorker: Worker;
  /** Resolves when every worker has stopped (after shutdown()). */
  run(): Promise<void>;
  shutdown(): void;
}

/** A prebuilt bundle (tests, the benchmark); without one the workers build their own at start. */
export type WorkflowSource = Pick<WorkerOptions, 'workflowBundle'>;

/**
 * CRM activities one process runs at once: they wait in the batcher for a slot in a request of up
 * to 50 commands, so the more run together, the fuller each request (about four requests' worth).
 */
const CRM_CONCURRENT_ACTIVITIES = 200;
/** Alerts and SMS one process runs at once; a waiting alert costs a promise, not a thread. */
const LEAD_QUEUE_CONCURRENT_ACTIVITIES = 1000;

/**
 * The lead worker's workflow tasks in flight: what its pollers may take (the SDK's default is 40
 * for all), and the room kept beside them for new leads' first tasks, which come with the intake's
 * start request (see ./eagerHeadroom).
 */
export const LEAD_WORKFLOW_SLOTS: EagerHeadroom = { polled: 32, eager: 256 };

export async function createLeadWorkers(
  connection: NativeConnection,
  config: AppConfig,
  source: WorkflowSource = {},
  metrics?: Metrics,
  dataConverter?: DataConverter,
): Promise<LeadWorkers> {
  // The bundle is built outside this process (see ./bundle).
  const workflows = { workflowBundle: source.workflowBundle ?? (await buildWorkflowBundle(config.dataDir)) };
  const common = {
    connection,
    namespace: config.temporal.namespace,
    shutdownGraceTime: '10s',
    dataConverter,
  } as const;
  // The claim seals are local activities that ask Temporal itself, on the worker's own connection.
  const client = new Client({ connection, namespace: config.temporal.namespace, dataConverter });
  // One set of call activities for both workers, so a first call (on the lead's queue) and a later
  // one (on the call queue) take from the same budget.
  const callActivities = createCallActivities(config, metrics);
  const createLeadWorker = () =>
    Worker.create({
      ...common,
      taskQueue: config.temporal.taskQueue,
      ...workflows,
      // The wake slots and claim seals are local activities: they run here, beside the workflows.
      activities: {
        ...createLeadActivities(config, metrics),
        // A lead's first call runs here, dispatched with the task that schedules it (eager).
        ...callActivities,
        ...createWakeSlotActivities(config),
        ...createCallClaimActivities(client),
      },
      // Sleeping leads are many and idle; a bounded cache keeps memory flat, at the cost of a replay
      // (a few milliseconds) when an evicted lead wakes up.
      maxCachedWorkflows: workflowCacheSize(config),
      // Alerts wait in the Telegram outbox for a message under the chat's limit (20 a minute), each
      // holding its activity slot meanwhile: in a burst hundreds wait at once, and with the SDK's
      // default of 100 slots they would keep the SMS activities of the same queue from starting.
      tuner: {
        workflowTaskSlotSupplier: workflowSlotsWithEagerHeadroom(LEAD_WORKFLOW_SLOTS),
        activityTaskSlotSupplier: { type: 'fixed-size', numSlots: LEAD_QUEUE_CONCURRENT_ACTIVITIES },
        // The SDK's defaults for the rest.
        localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
        nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 100 },
      },
      // A new lead's first task (the one that places its call) waits on the shared queue; every
      // later task of a running lead (its paperwork, a report) on this worker's sticky queue. The
      // SDK's default gives the shared queue 2 of 10 pollers; since the scenario's claim needs no
      // task of the lead, nothing on the sticky queue is on the way to a dial, and the first
      // tasks get half of them.
      nonStickyToStickyPollRatio: 1,
    });
  const leadWorker = await createLeadWorker();
  const crmWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.crmTaskQueue,
    activities: createCrmActivities(config, metrics),
    maxConcurrentActivityTaskExecutions: CRM_CONCURRENT_ACTIVITIES,
  });
  const callWorker = await Worker.create({
    ...common,
    taskQueue: config.temporal.callTaskQueue,
    activities: callActivities,
    // The server's limit is for all workers together, but lets a burst through after a quiet spell
    // (a morning of sleeping leads waking at once); this worker's own limit spaces its calls evenly.
    maxTaskQueueActivitiesPerSecond: config.call.callsPerSecond,
    maxActivitiesPerSecond: config.call.callsPerSecond,
    maxConcurrentActivityTaskExecutions: config.call.maxConcurrentCalls,
  });
  const all = [leadWorker, crmWorker, callWorker];
  let running: Promise<void> | undefined;

  return {
    leadWorker,
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
