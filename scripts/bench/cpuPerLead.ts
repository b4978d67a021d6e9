// A whole lead's CPU, as the issue counts it: the service's process (API + worker) and the Temporal
// server, nothing else. In the latency phase the service shares the benchmark's process with the
// emulators and the load generator, whose CPU would count as the lead's; here the service runs as a
// process of its own (as `npm run service` does) and the emulators stay in the benchmark's.
import { opsPer, type Ops } from './serverOps';
import type { Bench } from './context';
import { leadFields, nextPhone, ok2xx, openLoop, postLead } from './load';
import { cpuSecondsOf, sleep, type Cpu } from './stats';

export interface LeadCpuRun {
  rate: number;
  seconds: number;
  accepted: number;
  missingCalls: number;
  /** CPU seconds per accepted lead: the service process and the dev server */
  perLead: Cpu;
  /** the server's operations per accepted lead */
  opsPerLead: Ops;
}

export async function measureLeadCpu(bench: Bench, rate: number): Promise<LeadCpuRun> {
  const { settings } = bench;
  const service = await bench.startServiceProcess(
    {
      TEMPORAL_TASK_QUEUE: 'cpu-leads',
      TEMPORAL_CALL_TASK_QUEUE: 'cpu-calls',
      TEMPORAL_CRM_TASK_QUEUE: 'cpu-crm',
    },
    `${bench.tmpDir}-cpu-service.log`,
  );
  try {
    const ledger = bench.ledger!;
    // --as-shop: the shop's own posts (its key), which take no phone slot.
    const shopKey = settings.asShop ? bench.config().intakeApiKey : undefined;
    const post = (r: number, s: number) =>
      openLoop(r, s, () =>
        postLead(service.url, leadFields(nextPhone()), settings.httpTimeoutSeconds, shopKey),
      );
    const wait = (phones: string[]) =>
      ledger.waitFor(phones, { timeoutMs: settings.drainTimeoutMs, stallMs: settings.stallMs });
    // Warm-up: JIT, the sticky cache, sockets; its leads' remaining work settles before counting.
    const warm = await post(settings.warmup.rate, settings.warmup.seconds);
    await wait(warm.filter(ok2xx).map((p) => p.phone));
    await sleep(settings.latencyCpuTailMs);
    const cpu = (): Cpu => ({
      node: cpuSecondsOf(service.pid) ?? Number.NaN,
      server: bench.serverCpu() ?? Number.NaN,
    });
    const cpu0 = cpu();
    const ops0 = await bench.serverOps();
    const posts = await post(rate, settings.latencySeconds);
    const accepted = posts.filter(ok2xx);
    const { missing } = await wait(accepted.map((p) => p.phone));
    // The rest of each lead (call result, CRM notes, alerts, SMS) lands after its call.
    await sleep(settings.latencyCpuTailMs);
    const cpu1 = cpu();
    const ops1 = await bench.serverOps();
    const n = Math.max(1, accepted.length);
    return {
      rate,
      seconds: settings.latencySeconds,
      accepted: accepted.length,
      missingCalls: missing,
      perLead: { node: (cpu1.node - cpu0.node) / n, server: (cpu1.server - cpu0.server) / n },
      opsPerLead: opsPer(ops0, ops1, n),
    };
  } finally {
    await service.close();
  }
}
