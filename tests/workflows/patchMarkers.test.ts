// What the release ids cost a lead: each id it meets is a marker and an upsert of
// TemporalChangeVersion (a visibility write). A lead started now records one, in its first task,
// whatever paths it takes; older leads, which have no such marker there, ask their own ids
// (their replay fixtures, tests/replay.test.ts, guard that).
import { temporal } from '@temporalio/proto';
import { RELEASE_1_8_1 } from '../../workflows/patches';
import {
  Stubs,
  claimCall,
  leadInput,
  reportResult,
  skipTo,
  useTimeSkippingServer,
  waitForRinging,
  waitForTimer,
  withLead,
  type LeadHandle,
} from './harness';

const env = useTimeSkippingServer();
const { EventType } = temporal.api.enums.v1;

/** The patch ids the lead's history recorded, each with the number of the workflow task that did (1 = the first). */
async function patchMarkers(handle: LeadHandle): Promise<Array<{ id: string; task: number }>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const completedTasks = events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    .map((e) => Number(e.eventId));
  return events
    .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => {
      const attrs = e.markerRecordedEventAttributes!;
      const data = attrs.details?.['patch-data']?.payloads?.[0]?.data;
      const { id } = JSON.parse(Buffer.from(data!).toString('utf8')) as { id: string };
      // The commands of a task follow its completion event.
      return { id, task: completedTasks.filter((done) => done < Number(e.eventId)).length };
    });
}

test('when a lead is answered at once, then it records one release id, in its first task', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await env.dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await claimCall(stubs, 1, 'session-a');
    await reportResult(handle, 1, 'answered');
    await handle.result();
    expect(await patchMarkers(handle)).toEqual([{ id: RELEASE_1_8_1, task: 1 }]);
  });
});

test('when an attempt goes unclaimed and the next is answered, then still one id: later releases’ checks record none', async () => {
  const stubs = new Stubs();
  await withLead(env(), stubs, leadInput(await env.dayZone()), async ({ handle }) => {
    await waitForRinging(handle, 1);
    await skipTo(env(), (await waitForTimer(handle, () => true)).firesAt);
    await waitForRinging(handle, 2);
    await claimCall(stubs, 2, 'session-b');
    await reportResult(handle, 2, 'answered');
    expect(await handle.result()).toMatchObject({ status: 'Answered', attempts: 2 });
    expect(await patchMarkers(handle)).toEqual([{ id: RELEASE_1_8_1, task: 1 }]);
  });
});
