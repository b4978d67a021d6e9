// The benchmark's tables: each phase's figures, and the summary against PERFORMANCE.md's targets.
import type { FloorRun } from './floor';
import type { LatencyRun, ThroughputStep } from './intake';
import type { BurstRun } from './crmBurst';
import type { MorningResult, SleeperResult } from './sleepers';
import { mb, ms, num, seconds, table, type Cpu } from './stats';

const cpuText = (c: Cpu) => `${num(c.node * 1000)} + ${num(c.server * 1000)}`;
const ratio = (a: number, b: number | undefined) =>
  b && Number.isFinite(a) ? `${(a / b).toFixed(1)}×` : '—';

/**
 * The latency phase's table. The ratios are against the bare workflows started beside the leads in
 * the same run (the floor under the same load, issue 31's measure); the floors of phase 1, run alone,
 * are shown for reference.
 */
export function latencyTable(floor: FloorRun[], runs: LatencyRun[]): string {
  type Spread = { p50: number; p99: number };
  const against = (a: Spread, b: Spread) => `${ratio(a.p50, b.p50)} / ${ratio(a.p99, b.p99)}`;
  const row = (measure: string, n: number, lost: string | number, p: Spread, vs = '', cpu = '') => [
    measure,
    n,
    lost,
    ms(p.p50),
    ms(p.p99),
    vs,
    cpu,
  ];
  return table(
    ['measure', 'n', 'non-2xx/lost', 'p50', 'p99', 'vs bare beside p50 / p99', 'CPU ms each: node + server'],
    [
      ...floor.map((r) =>
        row(
          `floor, alone: bare workflow, ${r.rate}/s × ${r.seconds} s`,
          r.workflowIds.length,
          r.errors + r.missing,
          r.latency,
          '',
          cpuText(r.cpuPerWorkflow),
        ),
      ),
      ...floor.map((r) =>
        row(
          `floor, alone: call path (HTTP → start → task → rate-limited activity), ${r.rate}/s`,
          r.callPath.n,
          '',
          r.callPath,
        ),
      ),
      ...runs.map((r) => row(`bare workflow beside the ${r.rate}/s leads`, r.bareBeside.n, '', r.bareBeside)),
      ...runs.map((r) =>
        row(
          `lead: POST → call request, ${r.rate}/s × ${r.seconds} s`,
          r.posts.length,
          `${r.non2xx} / ${r.missingCalls}`,
          r.latency,
          against(r.latency, r.bareBeside),
          // The bare workflows beside the leads are in these figures too (a few per cent of them).
          cpuText(r.cpuPerLead),
        ),
      ),
      ...runs.map((r) =>
        row(
          `lead: POST → dial (claim granted), ${r.rate}/s`,
          r.claims.granted,
          `claims ${r.claims.refused} refused, ${r.claims.unanswered} unanswered, ${r.claims.pending} pending`,
          r.dial,
          against(r.dial, r.bareBeside),
        ),
      ),
      ...runs.map((r) => row(`  (HTTP answer of the POST, ${r.rate}/s)`, r.posts.length, '', r.http)),
    ],
  );
}

/** Issue 31's goals for the call path, each a ratio taken within one run (the whole lead's CPU is printed by its own phase). */
export function callPathGoals(floor: FloorRun[], instant: LatencyRun[], paced: LatencyRun[]): string {
  const at = (runs: LatencyRun[], rate: number) => runs.find((r) => r.rate === rate);
  const rows: Array<Array<string | number>> = [];
  for (const [label, runs] of [
    ['real pace', paced],
    ['instant providers', instant],
  ] as const) {
    const slow = at(runs, 10);
    const burst = at(runs, 50);
    if (slow) {
      const x = slow.dial.p50 / slow.bareBeside.p50;
      rows.push([
        `10 leads/s, ${label}: dial p50 vs bare beside p50`,
        `${ms(slow.dial.p50)} / ${ms(slow.bareBeside.p50)} = ${x.toFixed(1)}×`,
        '≤ 1.5×',
        x <= 1.5 ? 'met' : 'missed',
      ]);
    }
    if (burst) {
      const x = burst.dial.p99 / burst.bareBeside.p99;
      const lost = burst.claims.refused + burst.claims.unanswered + burst.claims.pending;
      rows.push([
        `50 leads/s × ${burst.seconds} s, ${label}: dial p99 vs bare beside p99`,
        `${ms(burst.dial.p99)} / ${ms(burst.bareBeside.p99)} = ${x.toFixed(1)}×`,
        '≤ 3×',
        x <= 3 ? 'met' : 'missed',
      ]);
      rows.push([
        `50 leads/s, ${label}: claims granted`,
        `${burst.claims.granted} of ${burst.claims.granted + lost}`,
        'all',
        lost === 0 ? 'met' : 'missed',
      ]);
    }
  }
  const callPath = floor.map((f) => `${f.rate}/s ${ms(f.callPath.p50)} / ${ms(f.callPath.p99)}`).join(', ');
  return (
    table(['call-path goal (issue 31)', 'measured', 'target', 'result'], rows) +
    `\n  call-path floor alone (HTTP → start → one task → a rate-limited activity), p50 / p99: ${callPath}`
  );
}

export function throughputTable(steps: ThroughputStep[]): string {
  return table(
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
    steps.map((s) => [
      `${s.rate}/s × ${s.seconds} s`,
      s.sent,
      s.accepted,
      s.http5xx,
      s.otherNon2xx,
      s.noAnswer,
      num(s.acceptedPerSecond, 1),
      ms(s.http.p50),
      ms(s.http.p99),
      ms(s.sendLag.p99),
      `${s.exactlyOne} / ${s.noCall} / ${s.moreThanOne}`,
      `${seconds(s.drainMs)}${s.drained ? '' : s.stalled ? ' (stalled: gave up)' : ' (timed out)'}`,
    ]),
  );
}

export function nightTable(night: SleeperResult): string {
  const n = night.accepted;
  const { morning } = night;
  return table(
    ['night and morning', 'value'],
    [
      ['leads posted / accepted / non-2xx', `${night.posted} / ${night.accepted} / ${night.non2xx}`],
      [
        `posting time (evenly at ${num(night.postRate, 1)}/s)`,
        `${seconds(night.postMs)} (${num((night.posted / night.postMs) * 1000, 1)}/s)`,
      ],
      [
        'asleep (LeadStatus = WaitingForWorkingHours)',
        `${night.asleep} after ${seconds(night.asleepAfterMs)}`,
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
        'service RSS per lead asleep (RSS with them − before posting) ÷ asleep',
        night.asleep > 0
          ? `${num((night.asleepMemory.rss - night.baseline.rss) / night.asleep / 1024, 1)} KB`
          : '—',
      ],
      [
        'workflow cache with them asleep: cached / capacity / forced evictions so far',
        `${night.asleepCache.cached} / ${night.cacheCapacity ?? '—'} / ${night.asleepCache.forcedEvictions}`,
      ],
      ['machine load (1 min) when the asleep figures were read', num(night.asleepLoad, 1)],
      ...(night.restMemory
        ? [
            [
              `at rest, ${seconds(night.restAfterAsleepMs ?? 0)} later${morning ? ' (just before the window)' : ''}: RSS / heapUsed`,
              `${mb(night.restMemory.rss)} / ${mb(night.restMemory.heapUsed)}`,
            ],
            [
              'at rest: RSS anonymous / file-backed (before posting)',
              night.restMemory.kinds && night.baseline.kinds
                ? `${mb(night.restMemory.kinds.anonymous)} / ${mb(night.restMemory.kinds.files)} ` +
                  `(${mb(night.baseline.kinds.anonymous)} / ${mb(night.baseline.kinds.files)})`
                : '—',
            ],
            [
              'at rest: RSS per lead asleep / cached / forced evictions / load',
              `${num((night.restMemory.rss - night.baseline.rss) / Math.max(1, night.asleep) / 1024, 1)} KB / ` +
                `${night.restCache?.cached ?? '—'} / ${night.restCache?.forcedEvictions ?? '—'} / ${num(night.restLoad ?? Number.NaN, 1)}`,
            ],
          ]
        : []),
      [
        `dev server RSS before posting / with ${night.asleep} asleep`,
        `${mb(night.baseline.serverRss)} / ${mb(night.asleepMemory.serverRss)}`,
      ],
      [
        'SQLite file + -wal (+ -shm)',
        `${mb(night.db.db)} + ${mb(night.db.wal)} (+ ${mb(night.db.shm)}) = ${mb(night.db.db + night.db.wal)}`,
      ],
      ['night SMS sent / CRM leads created so far', `${night.nightSms} / ${night.crmLeadsSoFar}`],
      ['leads called before the window opened', night.callsAtNight],
      ...(morning
        ? morningRows(morning, n, night.configuredRate, night.wakeRate)
        : [['the morning', 'not run (--no-morning)']]),
    ],
  );
}

function morningRows(m: MorningResult, n: number, rate: number, wakeRate: number): (string | number)[][] {
  return [
    [
      'first call after window start',
      m.firstCallAfterMs === undefined ? '—' : seconds(m.firstCallAfterMs, 2),
    ],
    [
      `all ${n} calls after window start`,
      m.allCallsAfterMs === undefined
        ? `not all: ${m.missingCalls} missing${m.stalled ? ' (no new call for a while: gave up)' : ''}`
        : seconds(m.allCallsAfterMs),
    ],
    [
      `ideal at the configured rates (MORNING_LEADS_PER_SECOND=${wakeRate})`,
      seconds((n / Math.min(rate, wakeRate)) * 1000),
    ],
    [
      'max calls in one 1-s bucket / any sliding 1 s',
      `${m.maxPerSecondBucket} / ${m.maxPerSlidingSecond} (CALLS_PER_SECOND=${rate})`,
    ],
    [
      'calls per second, first call to last (mean)',
      m.meanCallsPerSecond === undefined ? '—' : m.meanCallsPerSecond.toFixed(1),
    ],
    [
      'called in the order they fell asleep (share of neighbours in order)',
      m.inPostingOrder === undefined ? '—' : `${(m.inPostingOrder * 100).toFixed(1)}%`,
    ],
    ['leads with exactly one call / more than one', `${m.exactlyOne} / ${m.moreThanOne}`],
    ['where the leads ended up (LeadStatus)', m.statuses],
    [
      'peak during the morning: process RSS / heapUsed / server RSS',
      `${mb(m.peak.rss)} / ${mb(m.peak.heapUsed)} / ${mb(m.peak.serverRss)}`,
    ],
  ];
}

function verdict(value: number, target: number, floor: number, lowerIsBetter: boolean): string {
  if (!Number.isFinite(value)) return 'missed (no data)';
  const meets = (limit: number) => (lowerIsBetter ? value <= limit : value >= limit);
  if (meets(target)) return 'met';
  return meets(floor) ? 'missed target (issue floor met)' : 'missed (floor too)';
}

export function summaryTable(r: {
  quick: boolean;
  floor: FloorRun[];
  instant: LatencyRun[];
  paced: LatencyRun[];
  steps: ThroughputStep[];
  night: SleeperResult;
}): string {
  const at50 = (runs: LatencyRun[]) => (runs.find((x) => x.rate === 50) ?? runs[runs.length - 1]!).latency;
  const instant = at50(r.instant);
  const paced = at50(r.paced);
  const bare = r.floor.find((f) => f.rate === 50)?.latency;
  const clean = r.steps.filter((s) => s.http5xx === 0 && s.noAnswer === 0);
  const bestAccepted = Math.max(0, ...clean.map((s) => s.acceptedPerSecond));
  const everyOnce = r.steps.every((s) => s.noCall === 0 && s.moreThanOne === 0);
  const { night } = r;
  const n = night.accepted;
  const quickNote = r.quick ? ` (quick mode: only ${n.toLocaleString('en')} asleep)` : '';
  return table(
    ['goal', 'measured', 'target', 'issue floor', 'result'],
    [
      [
        'bare workflow floor at 50/s, p50 / p99',
        `${ms(bare?.p50 ?? NaN)} / ${ms(bare?.p99 ?? NaN)}`,
        '—',
        '—',
        'reference',
      ],
      [
        'first call p50 at 50 leads/s, real pace',
        ms(paced.p50),
        '≤ 25 ms',
        '≤ 300 ms',
        verdict(paced.p50, 25, 300, true),
      ],
      [
        'first call p99 at 50 leads/s, real pace',
        ms(paced.p99),
        '≤ 100 ms',
        '≤ 1 s',
        verdict(paced.p99, 100, 1000, true),
      ],
      [
        'first call p50 / p99 at 50 leads/s, instant providers',
        `${ms(instant.p50)} / ${ms(instant.p99)}`,
        '≤ 25 / 100 ms',
        '≤ 300 ms / 1 s',
        `${verdict(instant.p50, 25, 300, true)} / ${verdict(instant.p99, 100, 1000, true)}`,
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
          ? `missed${quickNote}`
          : night.asleep < n
            ? `not shown: only ${night.asleep} fell asleep${quickNote}`
            : `met${quickNote}`,
      ],
      [
        'morning burst, max calls per second',
        night.morning ? String(night.morning.maxPerSecondBucket) : 'not run',
        `≤ ${night.configuredRate}`,
        '—',
        !night.morning
          ? '—'
          : night.morning.maxPerSecondBucket > night.configuredRate
            ? 'missed: over the rate'
            : night.morning.missingCalls > 0
              ? `rate kept, but ${night.morning.missingCalls} of ${n} calls never came`
              : 'met',
      ],
    ],
  );
}

export function burstTable(b: BurstRun): string {
  const when = (t: number | undefined, have: number) =>
    t !== undefined ? seconds(t) : `not all: ${have} of ${b.accepted} after ${seconds(b.waitedMs, 0)}`;
  const vsBound = (t: number | undefined) => (t !== undefined ? ratio(t, b.crmLowerBoundMs) : '—');
  const perSecond = (have: number, t: number | undefined) =>
    `${num((have / Math.max(1, t ?? b.waitedMs)) * 1000, 1)} leads/s`;
  return table(
    [`${b.leads} leads at ${b.rate}/s, real limits`, 'value', 'vs lower bound'],
    [
      ['leads posted / accepted / non-2xx', `${b.leads} / ${b.accepted} / ${b.non2xx}`, ''],
      ['posting time', seconds(b.postMs), ''],
      [
        `lower bound: ${b.leads} adds ÷ (${b.requestsPerSecond} requests/s × 50 commands)`,
        seconds(b.crmLowerBoundMs),
        '1.0×',
      ],
      [
        'every lead in the CRM (Bitrix24 emulator), from the first POST',
        when(b.allInCrmMs, b.inCrm),
        vsBound(b.allInCrmMs),
      ],
      [
        'half of them in the CRM',
        b.halfInCrmMs === undefined ? '—' : seconds(b.halfInCrmMs),
        vsBound(b.halfInCrmMs),
      ],
      ['CRM pace so far', perSecond(b.inCrm, b.allInCrmMs), ''],
      [
        'every lead named in a delivered Telegram message',
        when(b.allAlertedMs, b.alerted),
        vsBound(b.allAlertedMs),
      ],
      [
        'half of them named',
        b.halfAlertedMs === undefined ? '—' : seconds(b.halfAlertedMs),
        vsBound(b.halfAlertedMs),
      ],
      [
        'Telegram messages delivered / Bitrix24 requests received',
        `${b.messages} / ${b.bitrix24Requests}`,
        '',
      ],
      [
        'first call (POST → StartScenarios) p50 / p90 / p99',
        `${ms(b.firstCall.p50)} / ${ms(b.firstCall.p90)} / ${ms(b.firstCall.p99)}` +
          (b.missingCalls ? ` (${b.missingCalls} without a call)` : ''),
        '',
      ],
    ],
  );
}
