// Places in the morning's queue: one sequence per window, spaced at the call rate, shared by the
// processes on one DATA_DIR, forgotten a day after the window opened.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openWakeSlots } from '../support/wakeSlots';
import { VirtualClock } from './support/virtualClock';

const OPENING = Date.UTC(2026, 0, 6, 6); // 09:00 in Moscow
const OTHER_OPENING = Date.UTC(2026, 0, 6, 4); // 09:00 in Yekaterinburg

/** The evening before the windows open (a window long past would be forgotten at once). */
const evening = () => new VirtualClock(OPENING - 10 * 3_600_000);

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'wake-slots-'));
}

test('each lead asleep for a window takes the next place, spaced at the call rate', async () => {
  const slots = openWakeSlots({ perSecond: 50, clock: evening() });
  const taken = [];
  for (let i = 0; i < 4; i++) taken.push(await slots.take(OPENING));
  expect(taken).toEqual([
    { place: 0, wakeAt: OPENING },
    { place: 1, wakeAt: OPENING + 20 },
    { place: 2, wakeAt: OPENING + 40 },
    { place: 3, wakeAt: OPENING + 60 },
  ]);
  // Another window has a queue of its own.
  expect(await slots.take(OTHER_OPENING)).toEqual({ place: 0, wakeAt: OTHER_OPENING });
  expect(await slots.take(OPENING)).toEqual({ place: 4, wakeAt: OPENING + 80 });
});

test('a rate that does not divide a second: places at whole milliseconds, never drifting', async () => {
  const slots = openWakeSlots({ perSecond: 3, clock: evening() });
  const wakeAts = [];
  for (let i = 0; i < 7; i++) wakeAts.push((await slots.take(OPENING)).wakeAt - OPENING);
  expect(wakeAts).toEqual([0, 333, 666, 1000, 1333, 1666, 2000]);
});

test('processes sharing DATA_DIR hand out one sequence, with no place given twice', async () => {
  const dir = tmpDir();
  // Two instances on one directory: what two worker processes have.
  const clock = evening();
  const a = openWakeSlots({ dir, perSecond: 10, clock });
  const b = openWakeSlots({ dir, perSecond: 10, clock });
  const taken = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).take(OPENING)));
  expect(taken.map((t) => t.place).sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  for (const t of taken) expect(t.wakeAt).toBe(OPENING + t.place * 100);
  // A process started later goes on from there.
  const c = openWakeSlots({ dir, perSecond: 10, clock });
  expect(await c.take(OPENING)).toEqual({ place: 40, wakeAt: OPENING + 4_000 });
});

test('a window a day past its opening is forgotten; a torn file starts the count afresh', async () => {
  const dir = tmpDir();
  const clock = new VirtualClock(OPENING - 3_600_000);
  const slots = openWakeSlots({ dir, perSecond: 1, clock });
  await slots.take(OPENING);
  await slots.take(OPENING + 86_400_000);
  const file = path.join(dir, 'limits', 'wake-slots.json');
  expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')))).toEqual([
    String(OPENING),
    String(OPENING + 86_400_000),
  ]);
  await clock.advance(26 * 3_600_000);
  await slots.take(OPENING + 86_400_000);
  expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual({ [String(OPENING + 86_400_000)]: 2 });

  fs.writeFileSync(file, '{"17');
  expect(await slots.take(OPENING + 86_400_000)).toEqual({ place: 0, wakeAt: OPENING + 86_400_000 });
});
