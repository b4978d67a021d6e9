// The lead worker's workflow-task slots: the pollers stop short of the total, so a new lead's
// first task, which comes with the intake's start request, always finds a slot.
import type { SlotReserveContext } from '@temporalio/worker';
import { workflowSlotsWithEagerHeadroom } from '../worker/eagerHeadroom';

const ctx = { slotType: 'workflow', taskQueue: 'leads' } as SlotReserveContext;
const released = { slotInfo: undefined, permit: {} } as never;

function settled<T>(promise: Promise<T>): () => 'pending' | 'granted' | 'rejected' {
  let state: 'pending' | 'granted' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'granted'),
    () => (state = 'rejected'),
  );
  return () => state;
}
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('the lead worker’s workflow slots with room for eager starts', () => {
  it('when the pollers hold their share, then a poller waits but an eager start still gets a slot', async () => {
    const slots = workflowSlotsWithEagerHeadroom({ polled: 2, eager: 1 });
    await slots.reserveSlot(ctx, new AbortController().signal);
    await slots.reserveSlot(ctx, new AbortController().signal);
    const third = settled(slots.reserveSlot(ctx, new AbortController().signal));
    await flush();
    expect(third()).toBe('pending');
    expect(slots.tryReserveSlot(ctx)).not.toBeNull();
    // The eager room is used up too: the next eager start goes by the queue.
    expect(slots.tryReserveSlot(ctx)).toBeNull();
  });

  it('when slots are released, then the waiting pollers get them in order, only below their share', async () => {
    const slots = workflowSlotsWithEagerHeadroom({ polled: 1, eager: 1 });
    await slots.reserveSlot(ctx, new AbortController().signal);
    expect(slots.tryReserveSlot(ctx)).not.toBeNull();
    const first = settled(slots.reserveSlot(ctx, new AbortController().signal));
    const second = settled(slots.reserveSlot(ctx, new AbortController().signal));
    // The eager task's slot goes back: still at the pollers' share, nobody is let in.
    slots.releaseSlot(released);
    await flush();
    expect([first(), second()]).toEqual(['pending', 'pending']);
    slots.releaseSlot(released);
    await flush();
    expect([first(), second()]).toEqual(['granted', 'pending']);
    slots.releaseSlot(released);
    await flush();
    expect(second()).toBe('granted');
  });

  it('when a waiting reservation is aborted, then it rejects with AbortError and takes no slot', async () => {
    const slots = workflowSlotsWithEagerHeadroom({ polled: 1, eager: 0 });
    await slots.reserveSlot(ctx, new AbortController().signal);
    const abort = new AbortController();
    const waiting = slots.reserveSlot(ctx, abort.signal);
    abort.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    const next = settled(slots.reserveSlot(ctx, new AbortController().signal));
    slots.releaseSlot(released);
    await flush();
    expect(next()).toBe('granted');
    expect(slots.tryReserveSlot(ctx)).toBeNull();
  });
});
