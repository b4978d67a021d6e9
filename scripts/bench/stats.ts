// Percentiles, formatting and plain-text tables for the benchmark's printout.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

/** Nearest-rank percentile of unsorted values; NaN when there are none. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  return v >= 10 ? `${Math.round(v)} ms` : `${v.toFixed(1)} ms`;
}

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

export const sleep = (msDelay: number) => new Promise<void>((r) => setTimeout(r, msDelay));

/** A full GC, so heap and RSS figures are not inflated by garbage the next collection would free. */
export const collectGarbage: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (() => void) | undefined;
  return () => gc?.();
})();

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

/** CPU seconds used so far by this process (all threads) and by the dev server. */
export function cpuNow(serverCpuSeconds: () => number | undefined): { node: number; server: number } {
  const c = process.cpuUsage();
  return { node: (c.user + c.system) / 1e6, server: serverCpuSeconds() ?? Number.NaN };
}

export function probeText(p: Probe): string {
  return (
    `CPU: node process ${num(p.nodeCores, 2)} cores, temporal server ${num(p.serverCores, 2)} cores; ` +
    `event-loop delay p50 ${ms(p.loopP50)}, p99 ${ms(p.loopP99)}, max ${ms(p.loopMax)}; ` +
    `node RSS ${mb(p.rss)}; machine load (1 min) ${num(p.load1, 1)}`
  );
}
