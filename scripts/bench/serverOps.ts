// What the Temporal server did for a workflow, counted from its own metrics: the persistence
// requests (each a SQLite query or transaction, the server's main cost on one node), the
// visibility writes and the RPCs it served, by operation. CPU says how much; these say what for.
export type Ops = Map<string, number>;

const COUNTERS = ['persistence_requests', 'visibility_persistence_requests', 'service_requests'] as const;
const SHORT: Record<(typeof COUNTERS)[number], string> = {
  persistence_requests: 'db',
  visibility_persistence_requests: 'visibility',
  service_requests: 'rpc',
};
const LINE = /^(\w+)\{([^}]*)\} (\S+)$/;

/** The server's counters now, keyed "db CreateWorkflowExecution", "rpc StartWorkflowExecution", … */
export async function serverOps(metricsUrl: string): Promise<Ops> {
  const text = await fetch(metricsUrl).then(
    (r) => r.text(),
    () => '',
  );
  const ops: Ops = new Map();
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m || !(COUNTERS as readonly string[]).includes(m[1]!)) continue;
    const operation = /operation="([^"]*)"/.exec(m[2]!)?.[1];
    if (!operation) continue;
    // An RPC is counted by each service it passes (frontend, then history or matching): the
    // frontend's count is the clients' requests.
    if (m[1] === 'service_requests' && !/service_name="frontend"/.test(m[2]!)) continue;
    const key = `${SHORT[m[1] as (typeof COUNTERS)[number]]} ${operation}`;
    ops.set(key, (ops.get(key) ?? 0) + Number(m[3]));
  }
  return ops;
}

/** Operations per unit (workflow, lead) between two readings. */
export function opsPer(before: Ops, after: Ops, units: number): Ops {
  const per: Ops = new Map();
  for (const [key, value] of after) {
    const delta = (value - (before.get(key) ?? 0)) / Math.max(1, units);
    if (delta > 0) per.set(key, delta);
  }
  return per;
}

/** Total of one kind ("db", "visibility", "rpc"). */
export function opsTotal(ops: Ops, kind: string): number {
  let total = 0;
  for (const [key, value] of ops) if (key.startsWith(`${kind} `)) total += value;
  return total;
}

/** Side by side, the busiest operations of a lead against a bare workflow's. */
export function opsTable(bare: Ops, lead: Ops, rows = 16): string {
  const keys = [...new Set([...bare.keys(), ...lead.keys()])]
    .filter((k) => !k.startsWith('rpc Poll')) // long polls: waiting, not work
    .sort((a, b) => (lead.get(b) ?? 0) - (lead.get(a) ?? 0))
    .slice(0, rows);
  const width = Math.max(30, ...keys.map((k) => k.length));
  const num = (v: number | undefined) => (v ?? 0).toFixed(1).padStart(7);
  const lines = [
    `${'server operation (per workflow / per lead)'.padEnd(width)}     bare     lead`,
    ...['db', 'visibility', 'rpc'].map(
      (kind) =>
        `${`all ${kind} requests`.padEnd(width)}  ${num(opsTotal(bare, kind))}  ${num(opsTotal(lead, kind))}`,
    ),
    ...keys.map((k) => `${k.padEnd(width)}  ${num(bare.get(k))}  ${num(lead.get(k))}`),
  ];
  return lines.join('\n');
}
