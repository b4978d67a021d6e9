// Percentiles (HdrHistogram), process figures from /proc, formatting and plain-text tables for the
// benchmark's printout.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { build } from 'hdr-histogram-js';

export interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
}

/**
 * p50, p90 and p99 of whole milliseconds (or counts); NaN when there are none. A server event time
 * can precede our own clock reading by a millisecond, so negative values count as 0.
 */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { n: 0, p50: NaN, p90: NaN, p99: NaN };
  const h = build({ lowestDiscernibleValue: 1, highestTrackableValue: 2, autoResize: true });
  for (const v of values) h.recordValue(Math.max(0, Math.round(v)));
  const at = (p: number) => h.getValueAtPercentile(p);
  const out = { n: values.length, p50: at(50), p90: at(90), p99: at(99) };
  h.destroy();
  return out;
}

export const median = (values: readonly number[]) => percentiles(values).p50;

export function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  return v >= 10 ? `${Math.round(v)} ms` : `${v.toFixed(1)} ms`;
}

export const seconds = (msValue: number, digits = 1) => `${(msValue / 1000).toFixed(digits)} s`;

export function mb(bytes: number | undefined): string {
  return bytes === undefined ? '—' : `${(bytes / 1024 / 1024).toFixed(0)} MB`;
}

export function num(v: number, digits = 0): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}

/** First column left-aligned, the others right-aligned. */
export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

export const indent = (text: string, by = '  ') =>
  text
    .split('\n')
    .map((l) => by + l)
    .join('\n');

export const sleep = (msDelay: number) => new Promise<void>((r) => setTimeout(r, msDelay));

/** A full GC, so heap and RSS figures are not inflated by garbage the next collection would free. */
export const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  return () => gc?.();
})();

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function procFile(pid: number | undefined, file: string): string | undefined {
  if (pid === undefined) return undefined;
  try {
    return fs.readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/** Resident set of a process, bytes. */
export function rssOf(pid: number | undefined): number | undefined {
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(procFile(pid, 'status') ?? '')?.[1];
  return kb ? Number(kb) * 1024 : undefined;
}

/** A process's RSS split into anonymous memory (heaps, malloc, stacks) and file-backed mappings. */
export function rssKindsOf(pid: number | undefined): { anonymous: number; files: number } | undefined {
  const rollup = procFile(pid, 'smaps_rollup');
  const kb = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(rollup ?? '')?.[1] ?? NaN) * 1024;
  const rss = kb('Rss');
  const anonymous = kb('Anonymous');
  return Number.isFinite(rss) && Number.isFinite(anonymous)
    ? { anonymous, files: rss - anonymous }
    : undefined;
}

/** User + system CPU seconds a process has used so far. */
export function cpuSecondsOf(pid: number | undefined): number | undefined {
  const stat = procFile(pid, 'stat');
  if (!stat) return undefined;
  // After the command's closing parenthesis come field 3 (state) onwards; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** Event-loop delay and CPU use over one phase: is the single Node thread the bottleneck? */
export function startProbe(serverCpuSeconds: () => number | undefined) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const cpu0 = process.cpuUsage();
  const server0 = serverCpuSeconds();
  const t0 = performance.now();
  return () => {
    loop.disable();
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const server1 = serverCpuSeconds();
    return {
      loopP50: loop.percentile(50) / 1e6,
      loopP99: loop.percentile(99) / 1e6,
      loopMax: loop.max / 1e6,
      nodeCores: (cpu.user + cpu.system) / 1e6 / wall,
      serverCores: server0 !== undefined && server1 !== undefined ? (server1 - server0) / wall : Number.NaN,
      rss: process.memoryUsage().rss,
      load1: os.loadavg()[0]!,
    };
  };
}
export type Probe = ReturnType<ReturnType<typeof startProbe>>;

export interface Cpu {
  node: number;
  server: number;
}

/** CPU seconds used so far by this process (all threads) and by the dev server. */
export function cpuNow(serverCpuSeconds: () => number | undefined): Cpu {
  const c = process.cpuUsage();
  return { node: (c.user + c.system) / 1e6, server: serverCpuSeconds() ?? Number.NaN };
}

/** CPU seconds per item between two readings. */
export const cpuPer = (from: Cpu, to: Cpu, items: number): Cpu => ({
  node: (to.node - from.node) / Math.max(1, items),
  server: (to.server - from.server) / Math.max(1, items),
});

export function probeText(p: Probe): string {
  return (
    `CPU: node process ${num(p.nodeCores, 2)} cores, temporal server ${num(p.serverCores, 2)} cores; ` +
    `event-loop delay p50 ${ms(p.loopP50)}, p99 ${ms(p.loopP99)}, max ${ms(p.loopMax)}; ` +
    `node RSS ${mb(p.rss)}; machine load (1 min) ${num(p.load1, 1)}`
  );
}
