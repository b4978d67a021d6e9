// Where a lead's first-call latency goes, read from the workflow histories of a sample of leads:
// the server's event times (same machine, same clock) between the POST and the call's arrival.
// Found by the events' own links (the workflow task that scheduled placeRobotCall), so it follows
// the workflow whatever its shape.
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { leadWorkflowId } from '../../api/leadIds';
import { median, ms, num, percentiles, table } from './stats';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface BreakdownSample {
  phone: string;
  sentAt: number;
  respondedAt: number;
  callAt: number;
}

function timeOf(e: HistoryEvent | undefined): number | undefined {
  const t = e?.eventTime;
  if (!t) return undefined;
  const s = t.seconds;
  const seconds = s == null ? 0 : typeof s === 'number' ? s : Number(s.toString());
  return seconds * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

async function events(client: Client, workflowId: string): Promise<HistoryEvent[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return history.events ?? [];
}

const idOf = (v: unknown) => (v == null ? '' : String(v));

const STEPS = [
  ['POST sent → processLead started (HTTP, parse, StartWorkflowExecution)', 'sent', 'leadStarted'],
  ['processLead started → its 1st workflow task started (eager start?)', 'leadStarted', 'leadWft1'],
  ['1st task started → the task that schedules the call started', 'leadWft1', 'callWftStarted'],
  ['that task started → completed (placeRobotCall scheduled)', 'callWftStarted', 'activityScheduled'],
  ['placeRobotCall scheduled → started (call queue)', 'activityScheduled', 'activityStarted'],
  ['activity started → StartScenarios at the emulator', 'activityStarted', 'call'],
] as const;

const isCallScheduled = (e: HistoryEvent) =>
  e.activityTaskScheduledEventAttributes?.activityType?.name === 'placeRobotCall';

export async function latencyBreakdown(
  client: Client,
  samples: BreakdownSample[],
  phoneIdKey: string,
): Promise<string> {
  const rows: Array<Record<string, number | undefined>> = [];
  const tasksBeforeCall: number[] = [];
  const leadEvents: number[] = [];
  const workflowTasks: number[] = [];
  // A task that waited on the worker's sticky queue past stickyQueueScheduleToStartTimeout is timed
  // out and scheduled again on the shared queue, whose task carries the whole history.
  let stickyTimeouts = 0;
  for (const s of samples) {
    const lead = await events(client, leadWorkflowId(s.phone, phoneIdKey));
    leadEvents.push(lead.length);
    workflowTasks.push(lead.filter((e) => e.workflowTaskCompletedEventAttributes != null).length);
    stickyTimeouts += lead.filter(
      (e) =>
        e.workflowTaskTimedOutEventAttributes?.timeoutType ===
        temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START,
    ).length;
    const first = (list: HistoryEvent[], key: keyof HistoryEvent) => list.find((e) => e[key] != null);
    const byId = (list: HistoryEvent[], id: unknown) => list.find((e) => idOf(e.eventId) === idOf(id));
    const scheduled = lead.find(isCallScheduled);
    const started = lead.find(
      (e) =>
        e.activityTaskStartedEventAttributes != null &&
        idOf(e.activityTaskStartedEventAttributes.scheduledEventId) === idOf(scheduled?.eventId),
    );
    const wftDone = byId(lead, scheduled?.activityTaskScheduledEventAttributes?.workflowTaskCompletedEventId);
    const wftStarted = byId(lead, wftDone?.workflowTaskCompletedEventAttributes?.startedEventId);
    if (wftDone) {
      tasksBeforeCall.push(
        lead.filter(
          (e) =>
            e.workflowTaskCompletedEventAttributes != null && Number(e.eventId) <= Number(wftDone.eventId),
        ).length,
      );
    }
    rows.push({
      sent: s.sentAt,
      leadStarted: timeOf(lead[0]),
      leadWft1: timeOf(first(lead, 'workflowTaskStartedEventAttributes')),
      callWftStarted: timeOf(wftStarted),
      activityScheduled: timeOf(scheduled),
      activityStarted: timeOf(started),
      call: s.callAt,
      responded: s.respondedAt,
    });
  }
  const stat = (from: string, to: string) => {
    const d = rows
      .map((r) => (r[to] !== undefined && r[from] !== undefined ? r[to]! - r[from]! : undefined))
      .filter((v): v is number => v !== undefined);
    const p = percentiles(d);
    return [ms(p.p50), ms(p.p90), String(p.n)];
  };
  const out = STEPS.map(([label, from, to]) => [label, ...stat(from, to)]);
  out.push(['= POST sent → call at the emulator (whole path)', ...stat('sent', 'call')]);
  out.push(['  (POST sent → HTTP 202 back at the client)', ...stat('sent', 'responded')]);
  return [
    table(['step (server event times, per lead)', 'p50', 'p90', 'n'], out),
    `workflow tasks up to and including the one that schedules the call: median ${num(median(tasksBeforeCall))}`,
    `per lead so far (median): ${num(median(leadEvents))} history events, ` +
      `${num(median(workflowTasks))} workflow tasks (the bare workflow: 11 and 2); ` +
      `${stickyTimeouts} workflow tasks timed out on the sticky queue (schedule-to-start) in these ${samples.length} histories`,
  ].join('\n');
}
