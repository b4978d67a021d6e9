// How each activity is scheduled: its timeouts and retry policy, declared once. The CRM and call
// activities run on task queues of their own, named in the lead's policy, so the caller adds the
// queue.
import {
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type {
  CallActivities,
  CallClaimActivities,
  CrmActivities,
  LeadActivities,
  WakeSlotActivities,
} from '../activities';

type Priority = NonNullable<ActivityOptions['priority']>;
type Activities = LeadActivities & CrmActivities & CallActivities;

export const ACTIVITY_OPTIONS = {
  // Bitrix24 down for an hour delays the CRM lead, never the call; past six hours (the queue may
  // also be long at the portal's 2 requests/s) it is a person's job and the sellers are told.
  // Each waits in the process's Bitrix24 batcher for its place in a request, heartbeating, so a
  // cancelled or timed-out attempt leaves the queue instead of being sent.
  registerLead: {
    startToCloseTimeout: '30s',
    heartbeatTimeout: '20s',
    scheduleToCloseTimeout: '6h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m' },
  },
  // Resumes after a retry from the last note written (heartbeat details), so none is written twice.
  recordCallAttempts: {
    startToCloseTimeout: '30s',
    heartbeatTimeout: '20s',
    scheduleToCloseTimeout: '6h',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '5m' },
  },
  // The call waits for its place under CALLS_PER_SECOND inside the activity (a first call is handed
  // to the lead's worker at once, so a burst above the rate queues there, minutes at 5 calls/s),
  // heartbeating: the wait is bounded by the heartbeat, not by a start-to-close that a queue would
  // outlast. A crashed worker's call is then retried (and de-duplicated) within 20 s; StartScenarios
  // and the retry's history checks each answer within their 5 s HTTP timeout.
  placeRobotCall: {
    startToCloseTimeout: '1h',
    heartbeatTimeout: '20s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: 10 },
  },
  // Each SMS costs money and reaches a person: the activity itself refuses to send twice (its
  // heartbeat says a send began), and a bounded retry keeps a gateway outage from looping forever.
  sendSms: {
    startToCloseTimeout: '30s',
    heartbeatTimeout: '20s',
    retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m', maximumAttempts: 6 },
  },
  // An alert later than an hour is no longer news; the lead's history records that it failed. Until
  // then it is retried however often it fails (bounded by time, not attempts). Each waits in the
  // process's Telegram outbox for a message under the chat's limit, heartbeating, so a worker that
  // died with alerts queued is noticed in 20 s.
  notifySellers: {
    startToCloseTimeout: '5m',
    heartbeatTimeout: '20s',
    scheduleToCloseTimeout: '1h',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  },
  // The CRM lead's link, sent after the new-lead alert: same lifetime as the alert.
  notifySellersCrmLead: {
    startToCloseTimeout: '5m',
    heartbeatTimeout: '20s',
    scheduleToCloseTimeout: '1h',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
  },
} satisfies Record<keyof Activities, ActivityOptions>;

/**
 * The local activities, run by the lead worker inside the workflow task that schedules them. A wake
 * slot is a file write in DATA_DIR: it either comes at once or the lead wakes at the window's
 * opening as it would without one, so it is tried briefly and never holds the lead up.
 */
export const { takeWakeSlot } = proxyLocalActivities<WakeSlotActivities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumAttempts: 3 },
});

/**
 * Sealing an attempt the lead stops waiting for: two RPCs to Temporal, inside the workflow task that
 * decides what comes next, so it costs no task of its own. Retried for minutes (an unreachable
 * Temporal could not run the lead either); the caller treats a seal that never came as a claim
 * (someone may have dialled), so a doubt never rings the customer twice.
 */
export const { sealCallAttempt } = proxyLocalActivities<CallClaimActivities>({
  startToCloseTimeout: '10s',
  scheduleToCloseTimeout: '10m',
  retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '30s' },
});

/**
 * Task priorities on the shared queues (1 goes first; unset is the server's default, 3; only the
 * server's new matcher honours them, the old one ignores them). On the call queue a lead's first
 * call goes ahead of retries and of the morning's wake-ups; on the CRM queue a lead's registration
 * goes ahead of call notes. Priority is not part of a command's identity on replay: histories
 * recorded without it replay unchanged.
 */
export const PRIORITY = { firstCall: 1, registerLead: 2, laterCall: 3, callNotes: 4 } as const;

/** A call placed this soon after the lead's workflow started is its first, not a retry or a wake-up. */
export const FIRST_CALL_WITHIN_MS = 60_000;

/**
 * Whether a call scheduled now is the lead's first (workflow time: the same on replay). A first call
 * runs on the lead's own task queue, so the server hands it back with the workflow task that
 * scheduled it (eager activity dispatch): it never waits behind the history service's transfer
 * queue or the call queue's backlog, which in a burst are seconds. Its pace is the process's call
 * budget (activities/index.ts), as on the call queue. A command's task queue is not part of its
 * identity on replay: histories that scheduled it on the call queue replay unchanged.
 */
function isFirstCall(): boolean {
  return Date.now() - workflowInfo().runStartTime.getTime() < FIRST_CALL_WITHIN_MS;
}

function priorityOf(name: keyof Activities): Priority | undefined {
  switch (name) {
    case 'placeRobotCall':
      return { priorityKey: isFirstCall() ? PRIORITY.firstCall : PRIORITY.laterCall };
    case 'registerLead':
      return { priorityKey: PRIORITY.registerLead };
    case 'recordCallAttempts':
      return { priorityKey: PRIORITY.callNotes };
    default:
      return undefined;
  }
}

/**
 * The named activity, scheduled with its own options (on `taskQueue` when given; a first call on the
 * lead's own queue) and priority.
 */
export function activity<K extends keyof Activities>(name: K, taskQueue?: string): Activities[K] {
  // The priority and the queue are decided when the activity is scheduled (a call's depend on when).
  const scheduled = ((...args: unknown[]) => {
    const queue = name === 'placeRobotCall' && isFirstCall() ? undefined : taskQueue;
    const options: ActivityOptions = { ...ACTIVITY_OPTIONS[name], ...(queue ? { taskQueue: queue } : {}) };
    const priority = priorityOf(name);
    const proxy = proxyActivities<Activities>(priority ? { ...options, priority } : options)[name];
    return (proxy as (...a: unknown[]) => unknown)(...args);
  }) as Activities[K];
  return scheduled;
}
