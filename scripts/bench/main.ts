// `npm run bench`: the floor, intake latency, intake throughput and 10,000 sleeping leads, against a
// dev server this script starts and stops itself, with the service in-process. Prints tables.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { NativeConnection, bundleWorkflowCode } from '@temporalio/worker';
import { leadWorkflowId } from '../../api/intake';
import { installTemporalRuntime } from '../../service/runtime';
import { workflowBundleOptions } from '../../worker/bundle';
import { AesGcmPayloadCodec } from '../../support/codec';
import { latencyBreakdown } from './breakdown';
import {
  Bench,
  FULL,
  INSTANT_PROVIDERS,
  QUICK,
  REAL_PACE_PROVIDERS,
  machineText,
  type ProviderProfile,
} from './context';
import { freePort, startDevServer, type DevServer } from './devServer';
import { measureFloor, type FloorRun } from './floor';
import { measureIntakeLatency, measureThroughput, type LatencyRun, type ThroughputStep } from './intake';
import { ok2xx } from './load';
import { measureSleepers, notYetCalled, type SleeperResult } from './sleepers';
import { replayCost } from './replayCost';
import { phaseSummary, scrape, type Snapshot } from './sdkMetrics';
import { ServiceLog } from './serviceLog';
import { mb, ms, num, probeText, table } from './stats';

const say = (line = '') => console.log(line);

let server: DevServer | undefined;
let bench: Bench | undefined;
let tmpDir: string | undefined;
let serviceLog: ServiceLog | undefined;

let sdkMetrics: (() => Promise<string>) | undefined;
let lastSnapshot: Snapshot = [];

async function metricNotes(): Promise<string[]> {
  const now = await scrape(sdkMetrics);
  const metrics = phaseSummary(lastSnapshot, now);
  lastSnapshot = now;
  return metrics.length ? ['  Temporal SDK metrics over this phase:', ...metrics.map((l) => `    ${l}`)] : [];
}

let reportsSeen: { list: unknown[]; index: number } | undefined;

/** The scenario's result posts to the service since the last call: a failed one loses a call's result. */
function resultPostNotes(): string[] {
  const reports = bench?.service?.emulators?.voximplant.state.reports;
  if (!reports) return [];
  if (reportsSeen?.list !== reports) reportsSeen = { list: reports, index: 0 };
  const fresh = reports.slice(reportsSeen.index);
  reportsSeen.index = reports.length;
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

/** The SDK's metrics and the service's warnings and errors since the previous phase. */
async function logNotes(metrics?: string[]): Promise<void> {
  for (const l of metrics ?? (await metricNotes())) say(l);
  for (const l of resultPostNotes()) say(l);
  const lines = serviceLog?.sinceLast() ?? [];
  if (lines.length === 0) say('  service log: no warnings or errors');
  else {
    say(`  service log (warn and above, full text in ${serviceLog!.file}):`);
    for (const l of lines) say(`    ${l}`);
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
    if (server?.unexpectedExit && tmpDir) {
      const kept = `${tmpDir}-temporal-server.log`;
      fs.copyFileSync(server.logFile, kept);
      say(`the dev server's log is kept in ${kept}`);
    }
    if (tmpDir && !process.env.BENCH_KEEP_DATA) fs.rmSync(tmpDir, { recursive: true, force: true });
    else if (tmpDir) say(`kept ${tmpDir} (BENCH_KEEP_DATA)`);
  })();
  return cleaning;
}

process.on('exit', () => server?.killNow());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping the service and the dev server`);
    void cleanup().finally(() => process.exit(130));
  });
}

function floorRow(r: FloorRun) {
  return [
    `bare workflow, ${r.rate}/s × ${r.seconds} s`,
    r.started,
    r.errors + r.missing,
    ms(r.p50),
    ms(r.p99),
    '',
    cpuText(r.cpuPerWorkflow),
  ];
}

function cpuText(c: { node: number; server: number }): string {
  return `${num(c.node * 1000)} + ${num(c.server * 1000)}`;
}

function verdict(value: number, target: number, floor: number, lowerIsBetter: boolean): string {
  if (!Number.isFinite(value)) return 'missed (no data)';
  const meets = (limit: number) => (lowerIsBetter ? value <= limit : value >= limit);
  if (meets(target)) return 'met';
  return meets(floor) ? 'missed target (issue floor met)' : 'missed (floor too)';
}

function nightTable(night: SleeperResult): string {
  const n = night.accepted;
  return table(
    ['night and morning', 'value'],
    [
      ['leads posted / accepted / non-2xx', `${night.posted} / ${night.accepted} / ${night.non2xx}`],
      [
        'posting time (50 in flight)',
        `${(night.postMs / 1000).toFixed(1)} s (${num((night.posted / night.postMs) * 1000, 1)}/s)`,
      ],
      [
        'asleep (LeadStatus = WaitingForWorkingHours)',
        `${night.asleep} after ${(night.asleepAfterMs / 1000).toFixed(1)} s`,
      ],
      [
        'service process RSS / heapUsed before posting',
        `${mb(night.baseline.rss)} / ${mb(night.baseline.heapUsed)}`,
      ],
      [
        `service process RSS / heapUsed with ${night.asleep} asleep`,
        `${mb(night.asleepMemory.rss)} / ${mb(night.asleepMemory.heapUsed)}`,
      ],
      [
        `dev server RSS before posting / with ${night.asleep} asleep`,
        `${mb(night.baseline.serverRss)} / ${mb(night.asleepMemory.serverRss)}`,
      ],
      [
        'SQLite file + -wal (+ -shm)',
        `${mb(night.db.db)} + ${mb(night.db.wal)} (+ ${mb(night.db.shm)}) = ${mb(night.db.db + night.db.wal)}`,
      ],
      ['night SMS sent / CRM leads created so far', `${night.nightSms} / ${night.crmLeadsSoFar}`],
      ['calls before the window opened', night.callsBeforeWindow],
      [
        'first call after window start',
        night.firstCallAfterMs === undefined ? '—' : `${(night.firstCallAfterMs / 1000).toFixed(2)} s`,
      ],
      [
        `all ${n} calls after window start`,
        night.allCallsAfterMs === undefined
          ? `not all: ${night.missingCalls} missing${night.stalled ? ' (no new call for a while: gave up)' : ''}`
          : `${(night.allCallsAfterMs / 1000).toFixed(1)} s`,
      ],
      ['ideal at the configured rate', `${(n / night.configuredRate).toFixed(1)} s`],
      [
        'max calls in one 1-s bucket / any sliding 1 s',
        `${night.maxPerSecondBucket} / ${night.maxPerSlidingSecond} (CALLS_PER_SECOND=${night.configuredRate})`,
      ],
      ['leads with exactly one call / more than one', `${night.exactlyOne} / ${night.moreThanOne}`],
      ['where the leads ended up (LeadStatus)', night.statuses],
      [
        'peak during the morning: process RSS / heapUsed / server RSS',
        `${mb(night.peakDuringMorning.rss)} / ${mb(night.peakDuringMorning.heapUsed)} / ${mb(night.peakDuringMorning.serverRss)}`,
      ],
    ],
  );
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';
  const settings = quick ? QUICK : FULL;
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'stl-bench-'));
  say(
    `speed-to-lead benchmark — ${quick ? 'QUICK mode (--quick / BENCH_QUICK=1): scaled down' : 'FULL mode'}`,
  );
  say(`started ${new Date().toISOString()}; temp dir ${tmpDir}`);
  serviceLog = new ServiceLog(`${tmpDir}-service.log`);
  say(
    `machine load average (1/5/15 min) at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' / ')}`,
  );

  server = await startDevServer(path.join(tmpDir, 'temporal'), 'default', (s) => {
    const e = s.unexpectedExit!;
    say(
      `\n!! the Temporal dev server exited unexpectedly at ${e.at.toISOString()} (code ${e.code}, signal ${e.signal})`,
    );
  });
  say(machineText(server));
  say(`dev server pid ${server.pid} on ${server.address}, SQLite ${server.dbFile}`);
  bench = new Bench(settings, server, tmpDir);
  // One bundle of the service's workflows for the whole run (the tree may change meanwhile).
  bench.workflowBundle = await bundleWorkflowCode(workflowBundleOptions());
  // As the run command does (its default SDK_METRICS_PORT is 9464), on a free port.
  sdkMetrics = installTemporalRuntime(
    bench.config({ SDK_METRICS_PORT: String(await freePort()) }),
  ).sdkMetrics;
  lastSnapshot = await scrape(sdkMetrics);

  if (process.env.BENCH_ONLY === 'sleepers') {
    say(`\nBENCH_ONLY=sleepers: ${settings.sleepers.toLocaleString('en')} sleeping leads only`);
    // Without phase 2 there is no measured pace: assume 20 leads/s (BENCH_SLEEP_RATE) for the night.
    say(nightTable(await measureSleepers(bench, Number(process.env.BENCH_SLEEP_RATE ?? 20), say)));
    return;
  }

  // 1. The floor.
  let floorMetrics: string[] = [];
  say('\n[1/4] floor: bare one-activity workflow, eager start, worker sharing the client’s NativeConnection');
  const floor = await measureFloor({
    address: server.address,
    namespace: server.namespace,
    runs: settings.latencyRates.map((rate) => ({ rate, seconds: settings.floorSeconds })),
    serverCpu: () => server!.cpuSeconds(),
    beforeShutdown: async () => {
      floorMetrics = await metricNotes();
    },
  });
  for (const r of floor) say(`  ${r.rate}/s: ${probeText(r.probe)}`);
  await logNotes(floorMetrics);

  // 2. Intake → first call request, under two provider profiles.
  say('\n[2/4] intake → first call request (POST /api/leads → StartScenarios at the VoxImplant emulator)');
  const floorAt = (rate: number) => floor.find((f) => f.rate === rate);
  const ratio = (a: number, b: number | undefined) =>
    b && Number.isFinite(a) ? `${(a / b).toFixed(1)}×` : '—';
  const byProfile: Array<{ profile: ProviderProfile; runs: LatencyRun[] }> = [];
  // Leads that went the whole way, for the replay-cost diagnostic at the end (the first profile's:
  // each profile starts the service, and with it the call ledger, afresh).
  let replayLeads: string[] | undefined;
  for (const profile of [INSTANT_PROVIDERS, REAL_PACE_PROVIDERS]) {
    say(`\n  -- ${profile.label}`);
    await bench.startService({}, profile);
    const runs = await measureIntakeLatency(bench);
    replayLeads ??= runs[0]!.posts
      .filter((p) => ok2xx(p) && bench!.ledger!.first(p.phone) !== undefined)
      .slice(0, 20)
      .map((p) => leadWorkflowId(p.phone));
    byProfile.push({ profile, runs });
    for (const r of runs) say(`  ${r.rate}/s: ${probeText(r.probe)}`);
    await logNotes();
    say(
      '\n' +
        table(
          ['measure', 'n', 'non-2xx/lost', 'p50', 'p99', 'vs floor p50 / p99', 'CPU ms each: node + server'],
          [
            ...floor.map(floorRow),
            ...runs.map((r: LatencyRun) => [
              `lead: POST → call request, ${r.rate}/s × ${r.seconds} s`,
              r.posts.length,
              `${r.non2xx} / ${r.missingCalls}`,
              ms(r.p50),
              ms(r.p99),
              `${ratio(r.p50, floorAt(r.rate)?.p50)} / ${ratio(r.p99, floorAt(r.rate)?.p99)}`,
              cpuText(r.cpuPerLead),
            ]),
            ...runs.map((r) => [
              `  (HTTP answer of the POST, ${r.rate}/s)`,
              r.posts.length,
              '',
              ms(r.httpP50),
              ms(r.httpP99),
              '',
              '',
            ]),
          ],
        ),
    );
    for (const run of runs) {
      const sample = run.posts
        .filter(ok2xx)
        .filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 40)) === 0)
        .slice(0, 40)
        .map((p) => ({
          phone: p.phone,
          sentAt: p.sentAt,
          respondedAt: p.doneAt,
          callAt: bench!.ledger!.first(p.phone)!,
        }))
        .filter((s) => s.callAt !== undefined);
      say(
        `\n  where the time goes at ${run.rate}/s (${sample.length} leads that got a call, from their histories):`,
      );
      say(
        (await latencyBreakdown(bench.service!.client, sample))
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
      );
    }
  }
  const latency = byProfile[0]!.runs;
  const at50Of = (runs: LatencyRun[]) => runs.find((r) => r.rate === 50) ?? runs[runs.length - 1]!;
  const at50 = at50Of(latency);
  const paced50 = at50Of(byProfile[1]!.runs);
  // Back on the default task queues: the paced profile's CRM backlog stays on its own.
  await bench.startService();
  if (process.env.BENCH_ONLY === 'latency') {
    say('\nBENCH_ONLY=latency: stopping after the latency phase');
    return;
  }
  // Leads that went the whole way, for the replay-cost diagnostic at the end.

  // 3. Throughput.
  say(
    '\n[3/4] sustained intake: open loop at rising rates; then every accepted lead must get exactly one call',
  );
  const steps = await measureThroughput(bench);
  say(
    table(
      [
        'offered',
        'sent',
        '2xx',
        '5xx',
        'other',
        'no answer',
        'accepted/s',
        'HTTP p50',
        'HTTP p99',
        'send lag p99',
        'calls: 1 / 0 / >1',
        'drain',
      ],
      steps.map((s: ThroughputStep) => [
        `${s.rate}/s × ${s.seconds} s`,
        s.sent,
        s.accepted,
        s.http5xx,
        s.otherNon2xx,
        s.noAnswer,
        num(s.acceptedPerSecond, 1),
        ms(s.httpP50),
        ms(s.httpP99),
        ms(s.scheduleLagP99),
        `${s.exactlyOne} / ${s.noCall} / ${s.moreThanOne}`,
        `${(s.drainMs / 1000).toFixed(1)} s${s.drained ? '' : s.stalled ? ' (stalled: gave up)' : ' (timed out)'}`,
      ]),
    ),
  );
  for (const s of steps) {
    say(
      `  ${s.rate}/s: ${probeText(s.probe)}${s.callsForRejected ? `; ${s.callsForRejected} calls for non-2xx leads` : ''}`,
    );
  }
  const clean = steps.filter((s) => s.http5xx === 0 && s.noAnswer === 0);
  const bestAccepted = Math.max(0, ...clean.map((s) => s.acceptedPerSecond));
  const everyOnce = steps.every((s) => s.noCall === 0 && s.moreThanOne === 0);
  say(
    `  after the last step, leads still before or in their call (New/Calling/WaitingForResult): ` +
      `${await notYetCalled(bench.service!.client)}`,
  );
  await logNotes();

  // 4. Sleepers.
  say(
    `\n[4/4] ${settings.sleepers.toLocaleString('en')} sleeping leads: service restarted with a window that opens soon`,
  );
  // What the service carried end to end, judged by its CPU per lead at the lowest rate.
  const perLead = latency[0]!.cpuPerLead;
  const leadsPerSecond = (os.cpus().length * 1) / Math.max(0.001, perLead.node + perLead.server);
  const night: SleeperResult = await measureSleepers(bench, leadsPerSecond, say);
  const n = night.accepted;
  say(nightTable(night));
  await logNotes();

  // Diagnostic: the workflow code's own CPU cost per workflow task, replayed without the server.
  await bench.stopService();
  say('\n[diagnostic] replaying finished histories (no server in the loop): CPU cost of the workflow code');
  {
    const connection = await NativeConnection.connect({ address: server.address });
    try {
      const client = new Client({ connection, namespace: server.namespace });
      const workflows = { workflowBundle: bench.workflowBundle! };
      // The service seals payloads; its key lives in DATA_DIR, so the same config opens them.
      const dataConverter = { payloadCodecs: [new AesGcmPayloadCodec(bench.config().encryption)] };
      const bareIds = Array.from({ length: 30 }, (_, i) => `bare-${20 + i}`);
      const out = await replayCost(client, [
        {
          label: 'bare (floor run)',
          workflows: { workflowsPath: require.resolve('./bareWorkflow') },
          workflowIds: bareIds,
        },
        {
          label: 'processLead (10/s run)',
          workflows,
          workflowIds: replayLeads ?? [],
          dataConverter,
        },
      ]);
      say(
        out
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
      );
    } finally {
      await connection.close();
    }
  }

  // 5. Against the targets.
  const bare50 = floorAt(50);
  const sleepersNote = quick ? ` (quick mode: only ${n.toLocaleString('en')} asleep)` : '';
  say('\nSummary against PERFORMANCE.md (mode: ' + (quick ? 'QUICK' : 'FULL') + ')');
  say(
    table(
      ['goal', 'measured', 'target', 'issue floor', 'result'],
      [
        [
          'bare workflow floor at 50/s, p50 / p99',
          `${ms(bare50?.p50 ?? NaN)} / ${ms(bare50?.p99 ?? NaN)}`,
          '—',
          '—',
          'reference',
        ],
        [
          'first call p50 at 50 leads/s, real pace',
          ms(paced50.p50),
          '≤ 25 ms',
          '≤ 300 ms',
          verdict(paced50.p50, 25, 300, true),
        ],
        [
          'first call p99 at 50 leads/s, real pace',
          ms(paced50.p99),
          '≤ 100 ms',
          '≤ 1 s',
          verdict(paced50.p99, 100, 1000, true),
        ],
        [
          'first call p50 / p99 at 50 leads/s, instant providers',
          `${ms(at50.p50)} / ${ms(at50.p99)}`,
          '≤ 25 / 100 ms',
          '≤ 300 ms / 1 s',
          `${verdict(at50.p50, 25, 300, true)} / ${verdict(at50.p99, 100, 1000, true)}`,
        ],
        [
          'leads/s accepted without a 5xx',
          num(bestAccepted, 1),
          '≥ 150',
          '≥ 100',
          verdict(bestAccepted, 150, 100, false),
        ],
        [
          'every accepted lead got exactly one call',
          everyOnce ? 'yes' : 'no',
          'yes',
          'yes',
          everyOnce ? 'met' : 'missed',
        ],
        [
          `process RSS with ${n.toLocaleString('en')} leads asleep`,
          `${mb(night.asleepMemory.rss)} (${night.asleep} asleep)`,
          '< 300 MB',
          '—',
          night.asleepMemory.rss >= 300 * 2 ** 20
            ? `missed${sleepersNote}`
            : night.asleep < n
              ? `not shown: only ${night.asleep} fell asleep${sleepersNote}`
              : `met${sleepersNote}`,
        ],
        [
          'morning burst, max calls per second',
          String(night.maxPerSecondBucket),
          `≤ ${night.configuredRate}`,
          '—',
          night.maxPerSecondBucket > night.configuredRate
            ? 'missed: over the rate'
            : night.missingCalls > 0
              ? `rate kept, but ${night.missingCalls} of ${n} calls never came`
              : 'met',
        ],
      ],
    ),
  );
  say(machineText(server));
  say(`finished ${new Date().toISOString()}`);
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (err) => {
    console.error('benchmark failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    await cleanup();
    process.exit(1);
  });
