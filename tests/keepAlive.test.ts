// The heartbeats that only keep a waiting activity alive: quiet while the wait is young.
import type { Context } from '@temporalio/activity';
import { keepAlive, keepAliveQuietMs } from '../activities/keepAlive';

function fakeContext(heartbeatTimeoutMs?: number) {
  const beats: unknown[] = [];
  const ctx = { info: { heartbeatTimeoutMs }, heartbeat: (d?: unknown) => beats.push(d) };
  return { ctx: ctx as unknown as Context, beats };
}

describe('keepAlive', () => {
  test('when the wait is younger than a quarter of the heartbeat timeout, then nothing is sent; after, every call is', () => {
    const { ctx, beats } = fakeContext(8_000);
    expect(keepAliveQuietMs(ctx)).toBe(2_000);
    keepAlive(ctx, 'queued', 1_000); // the wait begins
    keepAlive(ctx, 'queued', 2_999);
    expect(beats).toEqual([]);
    keepAlive(ctx, 'sent', 3_000);
    keepAlive(ctx, 'sent', 3_001);
    expect(beats).toEqual(['sent', 'sent']);
  });

  test('when the heartbeat timeout is long or unset, then the quiet time is at most 5 s', () => {
    expect(keepAliveQuietMs(fakeContext(60_000).ctx)).toBe(5_000);
    expect(keepAliveQuietMs(fakeContext(undefined).ctx)).toBe(5_000);
    const { ctx, beats } = fakeContext(60_000);
    keepAlive(ctx, undefined, 0);
    keepAlive(ctx, undefined, 4_999);
    keepAlive(ctx, undefined, 5_000);
    expect(beats).toEqual([undefined]);
  });

  test('when each attempt is its own context, then each keeps its own quiet time', () => {
    const first = fakeContext(20_000);
    const retry = fakeContext(20_000);
    keepAlive(first.ctx, 1, 0);
    keepAlive(first.ctx, 1, 6_000);
    keepAlive(retry.ctx, 2, 6_000);
    expect(first.beats).toEqual([1]);
    expect(retry.beats).toEqual([]);
  });
});
