/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload, run before any loader */
/* global setInterval */
// Diagnostic for scripts/bench/memProbe.ts, preloaded into every thread (NODE_OPTIONS=--require): appends this thread's V8 heap figures to a file
// every 5 s; in the main thread SIGUSR2 writes heap snapshots of every worker thread.
const v8 = require('node:v8');
const fs = require('node:fs');
const wt = require('node:worker_threads');
if (process.env.MEMPROBE_V8_FLAGS && wt.isMainThread) v8.setFlagsFromString(process.env.MEMPROBE_V8_FLAGS);
const dir = process.env.MEMPROBE_DIR || '/tmp/memprobe/out';
fs.mkdirSync(dir, { recursive: true });
const file = `${dir}/${process.pid}-${wt.threadId}.jsonl`;
const write = () => {
  const h = v8.getHeapStatistics();
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.physical_space_size / 1048576)]),
  );
  let rollup;
  if (wt.isMainThread) {
    rollup = {};
    for (const line of fs.readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
      const m = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
      if (m) rollup[m[1]] = Number(m[2]) * 1024;
    }
  }
  fs.appendFileSync(
    file,
    JSON.stringify({
      thread: wt.threadId,
      main: wt.isMainThread,
      at: Date.now(),
      total_physical: h.total_physical_size,
      total: h.total_heap_size,
      used: h.used_heap_size,
      external: h.external_memory,
      malloced: h.malloced_memory,
      contexts: h.number_of_native_contexts,
      spaces,
      rollup,
    }) + '\n',
  );
};
// The service runs without --expose-gc: a gc function of its own, for the probe's "after gc()".
v8.setFlagsFromString('--expose-gc');
const gc = require('node:vm').runInNewContext('gc');
let gcSeen = 0;
setInterval(() => {
  try {
    const t = fs.statSync(`${dir}/gc`).mtimeMs;
    if (t > gcSeen && typeof gc === 'function') {
      gcSeen = t;
      gc();
      gc();
    }
  } catch {
    // no request for a GC yet
  }
  write();
}, 5000).unref();
write();
if (wt.isMainThread) {
  const workers = [];
  const Orig = wt.Worker;
  wt.Worker = class extends Orig {
    constructor(...a) {
      super(...a);
      workers.push(this);
    }
  };
  process.on('SIGUSR2', async () => {
    for (const [i, w] of workers.entries()) {
      try {
        const s = await w.getHeapSnapshot();
        const out = fs.createWriteStream(`${dir}/${process.pid}-worker${i}-${Date.now()}.heapsnapshot`);
        s.pipe(out);
      } catch (e) {
        fs.appendFileSync(`${dir}/errors`, String(e) + '\n');
      }
    }
    v8.writeHeapSnapshot(`${dir}/${process.pid}-main-${Date.now()}.heapsnapshot`);
  });
}
