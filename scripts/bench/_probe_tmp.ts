process.env.LOG_LEVEL = 'warn';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
async function main() {
  const { startDevServer, freePort } = await import('./devServer');
  const { Bench, QUICK } = await import('./context');
  const { ServiceLog } = await import('./serviceLog');
  const { installTemporalRuntime } = await import('../../service/runtime');
  const { openLoop, nextPhone, ok2xx } = await import('./load');
  const { leadWorkflowId } = await import('../../api/intake');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stlx-'));
  new ServiceLog(`${tmp}-service.log`);
  const server = await startDevServer(path.join(tmp, 't'));
  const bench = new Bench(QUICK, server, tmp);
  const port = await freePort();
  const { sdkMetrics } = installTemporalRuntime(bench.config({ SDK_METRICS_PORT: String(port) }));
  try {
    await bench.startService();
    const posts = await openLoop(50, 6, (_i, lag) =>
      bench.poster!.post({ name: 'x', phone: nextPhone() }, lag),
    );
    await new Promise((r) => setTimeout(r, 40_000));
    bench.ledger!.sync();
    const missing = posts.filter(ok2xx).filter((p) => !bench.ledger!.first(p.phone));
    console.log('posted', posts.length, 'missing calls', missing.length);
    const m = await sdkMetrics!();
    fs.writeFileSync('/tmp/stlx/metrics.txt', m);
    if (missing[0]) {
      const id = leadWorkflowId(missing[0].phone) + '-call';
      const h = await bench.service!.client.workflow.getHandle(id).fetchHistory();
      for (const e of h.events ?? []) {
        const t = Number(e.eventTime?.seconds) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
        const kind = Object.keys(e).find((k) => k.endsWith('Attributes')) ?? '';
        console.log(
          e.eventId?.toString(),
          new Date(t).toISOString(),
          kind,
          JSON.stringify(
            e.workflowTaskFailedEventAttributes?.failure?.message ??
              e.workflowTaskTimedOutEventAttributes ??
              '',
          ),
        );
      }
    }
  } finally {
    await bench.stopService();
    await server.stop();
  }
}
main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
