// `npm run bench`: the floor, intake latency, intake throughput and 10,000 sleeping leads, against a
// dev server this script starts and stops itself, with the service in-process. Prints tables.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode } from '@temporalio/worker';
import { leadWorkflowId } from '../../api/leadIds';
import { installTemporalRuntime } from '../../service/runtime';
import { workflowBundleOptions } from '../../worker/bundle';
import { AesGcmPayloadCodec } from '../../support/codec';
import { freePort, startDevServer, type DevServer } from '../../support/temporalServer';
import { latencyBreakdown } from './breakdown';
import { Bench, INSTANT_PROVIDERS, REAL_PACE_PROVIDERS, machineText } from './context';
import { measureFloor, openFloors, type FloorRun } from './floor';
import { measureIntakeLatency, measureThroughput, type LatencyRun } from './intake';
import { ok2xx } from './load';
import { replayCost } from './replayCost';
import { burstTable, callPathGoals, latencyTable, nightTable, summaryTable, throughputTable } from './report';
import { phaseSummary, scrape, type Snapshot } from './sdkMetrics';
import { ServiceLog } from './serviceLog';
import type { BenchSettings } from './settings';
import { measureSleepers, notYetCalled } from './sleepers';
import { BURST_PROVIDERS, measureCrmBurst } from './crmBurst';
import { matchingTable, measureMatching } from './matching';
import { measureLeadCpu } from './cpuPerLead';
import { opsTable } from './serverOps';
import { indent, probeText } from './stats';

const say = (line = '') => console.log(line);

let server: DevServer | undefined;
let bench: Bench | undefined;
let tmpDir: string | undefined;
let serviceLog: ServiceLog | undefined;
let keepData = false;

/** What the SDK's metrics, the scenario's result posts and the service's log say about each phase. */
class PhaseNotes {
  private snapshot: Snapshot = [];
  private reports?: { list: unknown[]; seen: number };

  constructor(private readonly sdkMetrics: (() => Promise<string>) | undefined) {}

  async start(): Promise<void> {
    this.snapshot = await scrape(this.sdkMetrics);
  }

  async metrics(): Promise<string[]> {
    const now = await scrape(this.sdkMetrics);
    const lines = phaseSummary(this.snapshot, now);
    this.snapshot = now;
    return lines.length ? ['  Temporal SDK metrics over this phase:', ...lines.map((l) => `    ${l}`)] : [];
  }

  /** A failed result post loses a call's result. */
  private resultPosts(): string[] {
    const reports = bench?.service?.emulators?.voximplant.state.reports;
    if (!reports) return [];
    if (this.reports?.list !== reports) this.reports = { list: reports, seen: 0 };
    const fresh = reports.slice(this.reports.seen);
    this.reports.seen = reports.length;
    if (fresh.length === 0) return [];
    const failed = fresh.filter((r) => !r.ok);
    const why = new Map<string, number>();
    for (const r of failed) {
      const key = r.status ? `HTTP ${r.status}` : (r.error ?? 'no answer');
      why.set(key, (why.get(key) ?? 0) + 1);
    }
    return [
      `  VoxImplant scenario result posts to the service: ${fresh.length - failed.length} ok, ${failed.length} failed` +
        (failed.length ? ` (${[...why].map(([k, n]) => `${n}× ${k}`).join(', ')})` : ''),
    ];
  }

  /** Prints the notes since the previous phase; `metrics` when they had to be read earlier. */
  async print(metrics?: string[]): Promise<void> {
    for (const l of metrics ?? (await this.metrics())) say(l);
    for (const l of this.resultPosts()) say(l);
    const lines = serviceLog?.sinceLast() ?? [];
    if (lines.length === 0) say('  service log: no warnings or errors');
    else {
      say(`  service log (warn and above, full text in ${serviceLog!.file}):`);
      for (const l of lines) say(`    ${l}`);
    }
  }
}

let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const hardStop = setTimeout(() => {
      server?.killNow();
      process.exit(1);
    }, 30_000);
    hardStop.unref();
    await bench?.stopService().catch((err) => console.error('stopping the service:', err));
    await server?.stop().catch((err) => console.error('stopping the dev server:', err));
    serviceLog?.close();
    if (unexpectedExit && tmpDir && server?.logFile) {
      const kept = `${tmpDir}-temporal-server.log`;
      fs.copyFileSync(server.logFile, kept);
      say(`the dev server's log is kept in ${kept}`);
    }
    if (tmpDir && !keepData) fs.rmSync(tmpDir, { recursive: true, force: true });
    else if (tmpDir) say(`kept ${tmpDir} (--keep-data)`);
  })();
  return cleaning;
}

let unexpectedExit = false;
process.on('exit', () => server?.killNow());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the service and the dev server`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Leads of a latency run that got a call, spread over the run, for the breakdown from their histories. */
function breakdownSample(run: LatencyRun, size: number) {
  const ledger = bench!.ledger!;
  return run.posts
    .filter(ok2xx)
    .filter((_, i, all) => i % Math.max(1, Math.floor(all.length / size)) === 0)
    .slice(0, size)
    .map((p) => ({ phone: p.phone, sentAt: p.sentAt, respondedAt: p.doneAt, callAt: ledger.first(p.phone)! }))
    .filter((s) => s.callAt !== undefined);
}

/** The workflow code's own CPU cost per workflow task, replaying finished histories without the server. */
async function replayDiagnostic(floor: FloorRun[], leadIds: string[]): Promise<string> {
  const connection = await NativeConnection.connect({ address: server!.address });
  try {
    const client = new Client({ connection, namespace: server!.namespace });
    // The service seals payloads; its key lives in DATA_DIR, so the same config opens them.
    const dataConverter = { payloadCodecs: [new AesGcmPayloadCodec(bench!.config().encryption)] };
    return await replayCost(client, [
      {
        label: 'bare (floor run)',
        workflows: { workflowsPath: require.resolve('./bareWorkflow') },
        workflowIds: floor[0]!.workflowIds.slice(0, 30),
      },
      {
        label: `processLead (${floor[0]!.rate}/s run)`,
        workflows: { workflowBundle: bench!.workflowBundle! },
        workflowIds: leadIds,
        dataConverter,
      },
    ]);
  } finally {
    await connection.close();
  }
}

/** A whole lead's CPU with the service in a process of its own, against the floor of this run. */
async function leadCpuPhase(floor: FloorRun[]): Promise<void> {
  const rate = floor[0]!.rate;
  say(
    `\n  -- whole lead's CPU, the service in a process of its own (instant providers, ${rate}/s; ` +
      'emulators and load generator not counted)',
  );
  const run = await measureLeadCpu(bench!, rate);
  const bare = floor[0]!.cpuPerWorkflow;
  const lead = run.perLead;
  say(
    `  ${run.accepted} leads (${run.missingCalls} without a call): ${(lead.node * 1000).toFixed(0)} + ` +
      `${(lead.server * 1000).toFixed(0)} ms each (service + server); bare workflow at ${rate}/s: ` +
      `${(bare.node * 1000).toFixed(0)} + ${(bare.server * 1000).toFixed(0)} ms; ratio ` +
      `${((lead.node + lead.server) / (bare.node + bare.server)).toFixed(1)}× (goal ≤ 2×); ` +
      `load average ${os.loadavg()[0]!.toFixed(1)}`,
  );
  say(indent(opsTable(floor[0]!.opsPerWorkflow, run.opsPerLead)));
}

/** The matching diagnostic: priorities and rate limits on the server, whatever the machine's speed. */
async function matchingPhase(settings: BenchSettings, heading: string): Promise<void> {
  say(`\n${heading} task priorities and the server's rate limit on a backlog (dev server flags of this run)`);
  say(indent(matchingTable(await measureMatching(server!, settings.matching))));
}

/** Phase 5: the CRM leads and seller alerts of a burst at the providers' real limits. */
async function burstPhase(settings: BenchSettings, notes: PhaseNotes, heading: string): Promise<void> {
  const { leads, rate } = settings.burst;
  say(
    `\n${heading} ${leads.toLocaleString('en')} leads at ${rate}/s at the real limits (${BURST_PROVIDERS.label}): ` +
      'until every lead is in the CRM and named in an alert',
  );
  const run = await measureCrmBurst(bench!, say);
  say(burstTable(run));
  say(
    `  machine load average (1/5/15 min): ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );
  await notes.print();
}

async function run(settings: BenchSettings): Promise<void> {
  keepData = settings.keepData;
  const mode = settings.quick ? 'QUICK' : 'FULL';
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-bench-'));
  say(`speed-to-lead benchmark — ${settings.quick ? 'QUICK mode (--quick): scaled down' : 'FULL mode'}`);
  say(`started ${new Date().toISOString()}; temp dir ${tmpDir}`);
  serviceLog = new ServiceLog(`${tmpDir}-service.log`);
  say(
    `machine load average (1/5/15 min) at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );

  if (Object.keys(settings.serviceEnv).length) {
    say(`service settings over the bench's: ${JSON.stringify(settings.serviceEnv)}`);
  }
  if (Object.keys(settings.serverConfig).length) {
    say(`dev server dynamic config over the project's: ${JSON.stringify(settings.serverConfig)}`);
  }
  const serverMetricsPort = await freePort();
  server = await startDevServer({
    dir: path.join(tmpDir, 'temporal'),
    log: true,
    metricsPort: serverMetricsPort,
    dynamicConfig: settings.serverConfig,
    onUnexpectedExit: (code, signal) => {
      unexpectedExit = true;
      say(
        `\n!! the Temporal dev server exited unexpectedly at ${new Date().toISOString()} (code ${code}, signal ${signal})`,
      );
    },
  });
  say(machineText(server));
  say(`dev server pid ${server.pid} on ${server.address}, SQLite ${server.dbFile}`);
  bench = new Bench(settings, server, tmpDir, `http://127.0.0.1:${serverMetricsPort}/metrics`);
  // One bundle of the service's workflows for the whole run (the tree may change meanwhile).
  bench.workflowBundle = await bundleWorkflowCode(workflowBundleOptions());
  // As the run command does (its default SDK_METRICS_PORT is 9464), on a free port.
  const notes = new PhaseNotes(
    installTemporalRuntime(bench.config({ SDK_METRICS_PORT: String(await freePort()) })).sdkMetrics,
  );
  await notes.start();

  if (settings.only === 'sleepers') {
    say(`\n--only sleepers: ${settings.sleepers.toLocaleString('en')} sleeping leads only`);
    // Without phase 2 there is no measured pace: the night is sized for --sleep-rate leads/s.
    say(nightTable(await measureSleepers(bench, settings.sleepRate, say)));
    return;
  }

  if (settings.only === 'matching') {
    await matchingPhase(settings, '--only matching:');
    return;
  }
  if (settings.only === 'burst') {
    await burstPhase(settings, notes, '--only burst:');
    return;
  }

  // 1. The floor.
  say('\n[1/5] floor: bare one-activity workflow, eager start, worker sharing the client’s NativeConnection');
  let floorMetrics: string[] = [];
  const floor = await measureFloor(
    settings,
    server,
    () => bench!.serverCpu(),
    () => bench!.serverOps(),
    async () => {
      floorMetrics = await notes.metrics();
    },
    bench!.config().temporal.grpcCompression,
  );
  for (const r of floor) say(`  ${r.rate}/s: ${probeText(r.probe)}`);
  await notes.print(floorMetrics);
  if (settings.only === 'cpu') {
    await leadCpuPhase(floor);
    say("\n--only cpu: the floor and a whole lead's CPU only");
    return;
  }

  // 2. Intake → first call request, under two provider profiles.
  say('\n[2/5] intake → first call request (POST /api/leads → StartScenarios at the VoxImplant emulator)');
  const byProfile: LatencyRun[][] = [];
  // Leads that went the whole way, for the replay diagnostic at the end: the first profile's, taken
  // now, because each profile starts the service, and with it the call ledger, afresh.
  let replayLeads: string[] = [];
  // Bare workflows started beside the leads: the floor under the same load, in the same process.
  const beside = await openFloors(server, bench.config().temporal.grpcCompression);
  for (const profile of [INSTANT_PROVIDERS, REAL_PACE_PROVIDERS]) {
    say(`\n  -- ${profile.label}`);
    await bench.startService({}, profile);
    const runs = await measureIntakeLatency(bench, beside);
    if (byProfile.length === 0) {
      replayLeads = runs[0]!.posts
        .filter((p) => ok2xx(p) && bench!.ledger!.first(p.phone) !== undefined)
        .slice(0, settings.replaySample)
        .map((p) => leadWorkflowId(p.phone, bench!.config().phoneIdKey));
    }
    byProfile.push(runs);
    for (const r of runs) say(`  ${r.rate}/s: ${probeText(r.probe)}`);
    await notes.print();
    say('\n' + latencyTable(floor, runs));
    for (const r of runs) {
      const sample = breakdownSample(r, settings.breakdownSample);
      say(
        `\n  where the time goes at ${r.rate}/s (${sample.length} leads that got a call, from their histories):`,
      );
      say(indent(await latencyBreakdown(bench.service!.client, sample, bench.config().phoneIdKey)));
    }
  }
  await beside.close();
  const [instant, paced] = byProfile as [LatencyRun[], LatencyRun[]];
  say('\n' + callPathGoals(floor, instant, paced));
  await leadCpuPhase(floor);
  // Back on the default task queues: the paced profile's CRM backlog stays on its own.
  await bench.startService();
  if (settings.only === 'latency') {
    say('\n--only latency: stopping after the latency phase');
    return;
  }

  // 3. Throughput.
  say(
    '\n[3/5] sustained intake: open loop at rising rates (autocannon, each second’s leads sent as it starts); ' +
      'then every accepted lead must get exactly one call',
  );
  const steps = await measureThroughput(bench);
  say(throughputTable(steps));
  for (const s of steps) {
    const rejectedCalls = s.callsForRejected ? `; ${s.callsForRejected} calls for non-2xx leads` : '';
    say(`  ${s.rate}/s: ${probeText(s.probe)}${rejectedCalls}`);
  }
  say(
    `  after the last step, leads still before or in their call (New/Calling/WaitingForResult): ` +
      `${await notYetCalled(bench.service!.client)}`,
  );
  await notes.print();

  // 4. Sleepers, sized by what the service carried end to end: its CPU per lead at the lowest rate.
  say(
    `\n[4/5] ${settings.sleepers.toLocaleString('en')} sleeping leads: service restarted with a window that opens soon`,
  );
  const perLead = instant[0]!.cpuPerLead;
  const leadsPerSecond = os.cpus().length / Math.max(0.001, perLead.node + perLead.server);
  const night = await measureSleepers(bench, leadsPerSecond, say);
  say(nightTable(night));
  await notes.print();

  await burstPhase(settings, notes, '[5/5]');

  await bench.stopService();
  await matchingPhase(settings, '[diagnostic]');
  say('\n[diagnostic] replaying finished histories (no server in the loop): CPU cost of the workflow code');
  say(indent(await replayDiagnostic(floor, replayLeads)));

  say(`\nSummary against PERFORMANCE.md (mode: ${mode})`);
  say(summaryTable({ quick: settings.quick, floor, instant, paced, steps, night }));
  say(machineText(server));
  say(`finished ${new Date().toISOString()}`);
}

export function runBench(settings: BenchSettings): Promise<void> {
  return run(settings)
    .then(() => cleanup())
    .then(() => process.exit(0))
    .catch(async (err: unknown) => {
      console.error('benchmark failed:', err instanceof Error ? (err.stack ?? err.message) : err);
      await cleanup();
      process.exit(1);
    });
}
