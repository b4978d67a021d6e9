// The service's pino output (warn and above, the SDK's and Core's logs included) goes to a file so
// the tables stay readable; what it said is tallied by message and printed per phase.
import fs from 'node:fs';
import pino from 'pino';
import { logger } from '../../support/logger';

interface Tally {
  n: number;
  runs: Set<string>;
}

function signature(entry: Record<string, unknown>): string {
  const level = pino.levels.labels[Number(entry.level)] ?? String(entry.level);
  const msg = String(entry.msg ?? '')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(:\d+:\d+)?/gi, '<run>')
    .replace(/\d+/g, 'N');
  const failure =
    typeof entry.failure === 'string' ? /message: \\?"(.*?)\\?", source/.exec(entry.failure) : null;
  const err = typeof entry.err === 'string' ? entry.err : typeof entry.error === 'string' ? entry.error : '';
  const detail = failure?.[1] ?? err.slice(0, 120);
  return `${level}: ${msg}${detail ? ` — ${detail}` : ''}`;
}

export class ServiceLog {
  private readonly fd: number;
  private readonly tallies = new Map<string, Tally>();
  private mark = new Map<string, number>();
  private buffer = '';

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'a');
    // pino keeps its destination under this symbol; children made before or after share it.
    const stream = { write: (chunk: string) => this.write(chunk) };
    (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = stream;
  }

  private write(chunk: string): void {
    fs.writeSync(this.fd, chunk);
    this.buffer += chunk;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      const key = signature(entry);
      const t = this.tallies.get(key) ?? { n: 0, runs: new Set<string>() };
      t.n += 1;
      if (typeof entry.runId === 'string') t.runs.add(entry.runId);
      this.tallies.set(key, t);
    }
  }

  /** What was logged since the previous call, most frequent first. */
  sinceLast(top = 5): string[] {
    const rows: Array<[string, number, number]> = [];
    for (const [key, t] of this.tallies) {
      const n = t.n - (this.mark.get(key) ?? 0);
      if (n > 0) rows.push([key, n, t.runs.size]);
    }
    this.mark = new Map([...this.tallies].map(([k, t]) => [k, t.n]));
    rows.sort((a, b) => b[1] - a[1]);
    return rows
      .slice(0, top)
      .map(([key, n, runs]) => `${n}× ${key.slice(0, 200)}${runs ? ` [${runs} workflow runs so far]` : ''}`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
