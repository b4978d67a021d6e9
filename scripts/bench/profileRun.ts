// `node --cpu-prof --cpu-prof-dir=DIR --import tsx scripts/bench/profileRun.ts [rate] [seconds]`:
// the service in-process on a dev server of its own, leads posted evenly at `rate`/s with instant
// providers, for a CPU profile of every thread (the workflow thread's included). Not part of the
// bench's run; the profiles name where a lead's CPU goes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer } from '../../support/temporalServer';
import { workflowBundleOptions } from '../../worker/bundle';
import { Bench } from './context';
import { leadFields, nextPhone, openLoop, postLead } from './load';
import { benchSettings } from './settings';
import { sleep } from './stats';

async function main(): Promise<void> {
  const rate = Number(process.argv[2] ?? 10);
  const seconds = Number(process.argv[3] ?? 20);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-prof-'));
  const server = await startDevServer({ dir: path.join(tmp, 'temporal') });
  try {
    const bench = new Bench(benchSettings([], {}), server, tmp);
    bench.workflowBundle = await bundleWorkflowCode(workflowBundleOptions());
    await bench.startService();
    const posts = await openLoop(rate, seconds, () => postLead(bench.url!, leadFields(nextPhone()), 30));
    await bench.ledger!.waitFor(
      posts.map((p) => p.phone),
      { timeoutMs: 60_000, stallMs: 20_000 },
    );
    await sleep(5_000);
    console.log(`posted ${posts.length}; calls ${bench.ledger!.byPhone.size}`);
    await bench.stopService();
  } finally {
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

void main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
