// A workflow's own history, read as a timeline: what it scheduled and which timers it set and
// which fired. "Nothing happened yet" is then read from the history (the timer has not fired, no
// call was scheduled) instead of from a check made soon enough.
import type { Client } from '@temporalio/client';

type Duration = { seconds?: unknown; nanos?: number | null } | null | undefined;

const msOf = (d: Duration): number =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6) : 0;

export interface Timeline {
  /** In the order they were scheduled; ids are the events' ids, so they order against timers. */
  activities: Array<{ name: string; id: number; at: number; completed: boolean }>;
  timers: Array<{ id: number; at: number; durationMs: number; fired: boolean }>;
  startedAt: number;
}

export async function timelineOf(client: Client, workflowId: string): Promise<Timeline> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const completed = new Set<number>();
  const fired = new Set<number>();
  for (const e of events) {
    const done = e.activityTaskCompletedEventAttributes?.scheduledEventId;
    if (done != null) completed.add(Number(done));
    const timer = e.timerFiredEventAttributes?.startedEventId;
    if (timer != null) fired.add(Number(timer));
  }
  const timeline: Timeline = { activities: [], timers: [], startedAt: msOf(events[0]?.eventTime) };
  for (const e of events) {
    const id = Number(e.eventId);
    const at = msOf(e.eventTime);
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const name = scheduled.activityType?.name ?? '';
      timeline.activities.push({ name, id, at, completed: completed.has(id) });
    }
    const timer = e.timerStartedEventAttributes;
    if (timer) {
      timeline.timers.push({ id, at, durationMs: msOf(timer.startToFireTimeout), fired: fired.has(id) });
    }
  }
  return timeline;
}
