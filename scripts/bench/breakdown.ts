// Where a lead's first-call latency goes, read from the workflow histories of a sample of leads:
// the server's event times (same machine, same clock) between the POST and the call's arrival.
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { leadWorkflowId } from '../../api/intake';
import { ms, percentile, table } from './stats';

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

const STEPS = [
  ['POST sent → processLead started (HTTP, parse, StartWorkflowExecution)', 'sent', 'leadStarted'],
  ['processLead started → its 1st workflow task started (eager start?)', 'leadStarted', 'leadWft1'],
  ['1st workflow task started → completed (StartChildWorkflow cmd)', 'leadWft1', 'leadWft1Done'],
  ['processLead task completed → callCustomer started', 'leadWft1Done', 'childStarted'],
  ['callCustomer started → its 1st workflow task started', 'childStarted', 'childWft1'],
  ['1st task started → completed (signal "Calling" to parent)', 'childWft1', 'childWft1Done'],
  ['signal initiated → ExternalWorkflowExecutionSignaled', 'childWft1Done', 'signaled'],
  ['signaled → 2nd workflow task started', 'signaled', 'childWft2'],
  ['2nd task started → placeRobotCall scheduled', 'childWft2', 'activityScheduled'],
  ['placeRobotCall scheduled → started (call queue, no eager)', 'activityScheduled', 'activityStarted'],
  ['activity started → StartScenarios at the emulator', 'activityStarted', 'call'],
] as const;

export async function latencyBreakdown(client: Client, samples: BreakdownSample[]): Promise<string> {
  const rows: Array<Record<string, number | undefined>> = [];
  for (const s of samples) {
    const leadId = leadWorkflowId(s.phone);
    const [lead, child] = await Promise.all([events(client, leadId), events(client, `${leadId}-call`)]);
    const firstOf = (list: HistoryEvent[], key: keyof HistoryEvent, from = 0) =>
      list.slice(from).find((e) => e[key] != null);
    const childWft1Done = firstOf(child, 'workflowTaskCompletedEventAttributes');
    const signaledIdx = child.findIndex((e) => e.externalWorkflowExecutionSignaledEventAttributes != null);
    const scheduled = child.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'placeRobotCall',
    );
    const started = child.find(
      (e) =>
        e.activityTaskStartedEventAttributes != null &&
        String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled?.eventId),
    );
    rows.push({
      sent: s.sentAt,
      leadStarted: timeOf(lead[0]),
      leadWft1: timeOf(firstOf(lead, 'workflowTaskStartedEventAttributes')),
      leadWft1Done: timeOf(firstOf(lead, 'workflowTaskCompletedEventAttributes')),
      childStarted: timeOf(child[0]),
      childWft1: timeOf(firstOf(child, 'workflowTaskStartedEventAttributes')),
      childWft1Done: timeOf(childWft1Done),
      signaled: timeOf(child[signaledIdx]),
      childWft2:
        signaledIdx >= 0
          ? timeOf(firstOf(child, 'workflowTaskStartedEventAttributes', signaledIdx))
          : undefined,
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
    return [ms(percentile(d, 50)), ms(percentile(d, 90)), String(d.length)];
  };
  const out = STEPS.map(([label, from, to]) => [label, ...stat(from, to)]);
  out.push(['= POST sent → call at the emulator (whole path)', ...stat('sent', 'call')]);
  out.push(['  (POST sent → HTTP 202 back at the client)', ...stat('sent', 'responded')]);
  return table(['step (server event times, per lead)', 'p50', 'p90', 'n'], out);
}
