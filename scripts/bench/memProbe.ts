// Diagnostic: the idle service process's memory, by thread and by mapping. Not part of `npm run bench`.
// MEMPROBE_ENV='K=V;K2=V2' adds variables to the service's environment (A/B runs).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevServer } from '../../support/temporalServer';
import { Bench } from './context';
import { benchSettings } from './settings';
import { chooseWindow } from './sleepers';
import { leadFields, nextPhone, ok2xx, openLoop, postLead, volley } from './load';
import { rssKindsOf, sleep } from './stats';

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)}`;

/** RSS by mapping kind: heap, anon, files (node binary, .node addons, others). */
function byMapping(pid: number): Record<string, number> {
  const text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const out: Record<string, number> = {};
  let name = '';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const n = head[1] ?? '';
      name =
        n === ''
          ? '[anon]'
          : n.endsWith('.node')
            ? `addon ${path.basename(n)}`
            : n.startsWith('/')
              ? path.basename(n)
              : n;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) out[name] = (out[name] ?? 0) + Number(m[1]) * 1024;
  }
  return out;
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-memprobe-'));
  const server = await startDevServer({ dir: path.join(tmp, 'temporal') });
  const bench = new Bench(benchSettings([]), server, tmp);
  const extra = Object.fromEntries(
    (process.env.MEMPROBE_ENV ?? '')
      .split(';')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );
  // MEMPROBE_OUT keeps each thread's figures (one line every 5 s) after the run.
  const outDir = process.env.MEMPROBE_OUT ?? path.join(tmp, 'threads');
  const leads = Number(process.env.MEMPROBE_LEADS ?? 0);
  const rate = Number(process.env.MEMPROBE_RATE ?? 0);
  const settleMs = Number(process.env.MEMPROBE_SETTLE_MS ?? 10_000);
  // The window opens well after the night is posted and measured (at 8/s when posted all at once):
  // a morning that starts while leads are still posted measures a morning, not a night.
  const postingMs = (leads / (rate > 0 ? rate : 8)) * 1000;
  const window = chooseWindow(Date.now(), Math.max(40 * 60_000, postingMs + 2 * settleMs + 30 * 60_000));
  const service = await bench.startServiceProcess(
    {
      WORKING_HOURS: window.hours,
      DEFAULT_TIMEZONE: window.zone,
      ...extra,
      MEMPROBE_DIR: outDir,
      NODE_OPTIONS: `--require ${path.join(__dirname, 'memHook.js')} ${extra.NODE_OPTIONS ?? ''}`,
    },
    path.join(tmp, 'service.log'),
  );
  try {
    await sleep(settleMs);
    if (leads > 0) {
      report('idle');
      const t0 = Date.now();
      const fields = (phone: string) => leadFields(phone, { timezone: window.zone });
      const posts =
        rate > 0
          ? await openLoop(rate, leads / rate, () => postLead(service.url, fields(nextPhone()), 30))
          : await volley(service.url, { amount: leads, connections: 50, timeoutSeconds: 30, fields });
      const ok = posts.filter(ok2xx).length;
      const posted = Date.now();
      let asleep = 0;
      for (;;) {
        asleep = (
          await service.client.workflow.count(
            "WorkflowType = 'processLead' AND LeadStatus = 'WaitingForWorkingHours'",
          )
        ).count;
        if (asleep >= ok || Date.now() - posted > 30 * 60_000) break;
        await sleep(2000);
      }
      console.log(
        `${ok} accepted, ${asleep} asleep after ${((Date.now() - t0) / 1000).toFixed(0)} s; load ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`,
      );
      await sleep(settleMs);
    }
    report(leads > 0 ? `${leads} asleep` : 'idle');
    if (process.env.MEMPROBE_GC) {
      fs.writeFileSync(path.join(outDir, 'gc'), '');
      await sleep(12_000);
      report('after gc()');
      if (process.env.MEMPROBE_SNAPSHOT) {
        process.kill(service.pid, 'SIGUSR2');
        await sleep(60_000);
        for (const f of fs.readdirSync(outDir))
          if (f.endsWith('.heapsnapshot')) fs.renameSync(path.join(outDir, f), path.join(os.tmpdir(), f));
      }
    }
    const metrics = await service.metrics();
    console.log(
      metrics
        .split('\n')
        .filter((l) => /^temporal_sticky_cache|^temporal_workflow_task_replay/.test(l))
        .join('\n'),
    );
  } finally {
    await service.close();
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }

  function report(label: string): void {
    console.log(`--- ${label}`);
    const kinds = rssKindsOf(service.pid) ?? { anonymous: NaN, files: NaN };
    console.log(`env ${JSON.stringify(extra)}`);
    console.log(
      `RSS ${mb(kinds.anonymous + kinds.files)} MB: anon ${mb(kinds.anonymous)}, file ${mb(kinds.files)}`,
    );
    const status = fs.readFileSync(`/proc/${service.pid}/status`, 'utf8');
    console.log(`threads ${/Threads:\s+(\d+)/.exec(status)?.[1]}`);
    const maps = Object.entries(byMapping(service.pid))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8);
    console.log(`by mapping: ${maps.map(([k, v]) => `${k} ${mb(v)}`).join(', ')}`);
    let v8sum = 0;
    for (const f of fs
      .readdirSync(outDir)
      .filter((f) => f.startsWith(`${service.pid}-`) && f.endsWith('.jsonl'))) {
      const t = JSON.parse(fs.readFileSync(path.join(outDir, f), 'utf8').trim().split('\n').pop()!);
      v8sum += t.total_physical + t.malloced;
      console.log(
        `thread ${t.thread}${t.main ? ' (main)' : ''}: V8 physical ${mb(t.total_physical)} used ${mb(t.used)} malloced ${mb(t.malloced)} external ${mb(t.external)} contexts ${t.contexts} ${JSON.stringify(t.spaces)}` +
          '',
      );
    }
    console.log(
      `V8 heaps (physical + malloced) ${mb(v8sum)} MB; anon outside V8 heaps ${mb(kinds.anonymous - v8sum)} MB`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
