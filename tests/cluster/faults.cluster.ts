// The production-shaped cluster (scripts/cluster): Temporal built from source on PostgreSQL, two
// workers and two API instances as separate processes. Leads go in through both API instances; then
// one worker of two is killed with SIGKILL mid-flight, then the Temporal server itself. Every lead
// must still finish with exactly one call, and nothing the server had accepted may be lost.
// Run with `npm run test:cluster` (the first run builds the server: minutes).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { eventually, getJson, postJson, uniquePhone } from '../support/http';

const REPO = path.resolve(__dirname, '..', '..');
const SCRIPTS = path.join(REPO, 'scripts', 'cluster');
// Under the repo's data/ (ignored by git): PostgreSQL runs as another user when we are root and must
// be able to enter every parent folder, which a mkdtemp folder (0700) does not allow.
const DIR = process.env.CLUSTER_TEST_DIR ?? path.join(REPO, 'data', 'cluster-test');

// Ports of its own, so a cluster started by hand (npm run cluster) may keep running alongside.
const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  CLUSTER_DIR: DIR,
  CLUSTER_TEMPORAL_PORT: process.env.CLUSTER_TEST_TEMPORAL_PORT ?? '7343',
  CLUSTER_API_PORTS: process.env.CLUSTER_TEST_API_PORTS ?? '3111 3112',
  NODE_ENV: 'development',
  LOG_LEVEL: 'info',
  // Every lead is called at once, whatever the hour.
  WORKING_HOURS: '00:00-24:00',
  CALLS_PER_SECOND: '50',
  INTAKE_RATE_LIMIT_PER_MINUTE: '100000',
  // The test posts as the shop's backend: its refs name the leads (a browser's would not).
  INTAKE_API_KEY: process.env.INTAKE_API_KEY ?? 'cluster-test-intake-key-0123456789abcdef',
  // Calls "ring" this long before the scenario reports, so kills land while calls are in flight.
  EMULATOR_CALL_RESULT_DELAY_MS: '10000',
};

interface ClusterInfo {
  temporalAddress: string;
  apis: string[];
  emulators: { voximplant: string };
  pids: Record<string, number>;
}

/** Runs a cluster script, its output going to the test's output; resolves with how long it took. */
function script(name: string, args: string[] = [], timeoutMs = 30 * 60_000): Promise<number> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(SCRIPTS, name), ...args], {
      cwd: REPO,
      env: ENV,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Date.now() - started);
      else reject(new Error(`${name} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`));
    });
  });
}

/** The operator's header: OPERATOR_TOKEN, else the token the first API instance generated into the shared DATA_DIR. */
function operator(): Record<string, string> {
  const token =
    ENV.OPERATOR_TOKEN ?? fs.readFileSync(path.join(DIR, 'service', 'operator.token'), 'utf8').trim();
  return { authorization: `Bearer ${token}` };
}

function clusterInfo(): ClusterInfo {
  return JSON.parse(fs.readFileSync(path.join(DIR, 'cluster.json'), 'utf8')) as ClusterInfo;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state !== 'Z';
  } catch {
    return false;
  }
}

function rssMb(pid: number): number {
  const kb = /^VmRSS:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kb) / 1024);
}

async function waitDead(pid: number): Promise<void> {
  await eventually(() => expect(alive(pid)).toBe(false), 10_000);
}

/** The test's own Temporal client, for histories (set in beforeAll). */
let temporal: Client;

const tag = Date.now().toString(36);
let seq = 0;

interface Lead {
  ref: string;
  phone: string;
}

/** Posts `n` leads, alternating between the API instances; each must be accepted (202). */
async function postLeads(info: ClusterInfo, n: number): Promise<Lead[]> {
  const leads = Array.from({ length: n }, () => ({ ref: `cl-${tag}-${++seq}`, phone: uniquePhone() }));
  const answers = await Promise.all(
    leads.map((lead, i) =>
      postJson(
        `${info.apis[i % info.apis.length]}/api/leads`,
        {
          name: 'Кластер Тест',
          phone: lead.phone,
          ref: lead.ref,
          city: 'Москва',
        },
        { authorization: `Bearer ${ENV.INTAKE_API_KEY}` },
      ),
    ),
  );
  answers.forEach((a, i) =>
    expect({ ref: leads[i]!.ref, status: a.status }).toEqual({ ref: leads[i]!.ref, status: 202 }),
  );
  return leads;
}

/**
 * Waits until every lead reports `Answered` through the API instances (each lead asked of the other
 * instance than the one it was posted to); `completed` also wants its workflow closed, which comes
 * later (the CRM writes, at the portal's 2 requests/s, finish first). Resolves with the time taken.
 */
async function expectAnswered(
  info: ClusterInfo,
  leads: Lead[],
  timeoutMs: number,
  completed = true,
): Promise<number> {
  const started = Date.now();
  await eventually(
    async () => {
      const states = await Promise.all(
        leads.map(async (lead, i) => {
          const res = await getJson(
            `${info.apis[(i + 1) % info.apis.length]}/api/leads/${lead.ref}`,
            operator(),
          );
          return { ref: lead.ref, http: res.status, execution: res.body.execution, status: res.body.status };
        }),
      );
      const unfinished = states.filter(
        (s) => s.status !== 'Answered' || (completed && s.execution !== 'COMPLETED'),
      );
      // A lead that does not move on may be stuck on a failing workflow task: say why.
      const stuck = Date.now() - started > timeoutMs - 2_000 ? await whyStuck(unfinished) : [];
      expect({ unfinished, stuck }).toEqual({ unfinished: [], stuck: [] });
    },
    timeoutMs,
    500,
  );
  return Date.now() - started;
}

/** The last workflow-task failure of each lead's workflow, if any (a bug in the workflow code). */
async function whyStuck(leads: Array<{ ref: string }>): Promise<string[]> {
  const out: string[] = [];
  for (const { ref } of leads) {
    const workflowId = `lead-${ref}`;
    try {
      const history = await temporal.workflow.getHandle(workflowId).fetchHistory();
      const failed = (history.events ?? [])
        .map((e) => e.workflowTaskFailedEventAttributes?.failure)
        .filter(Boolean)
        .pop();
      if (failed)
        out.push(`${workflowId}: workflow task fails: ${failed.message}\n${failed.stackTrace ?? ''}`);
    } catch (err) {
      out.push(`${workflowId}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** How many times each lead's customer was rung since `since`: sessions whose claim was granted. */
async function callsPerLead(info: ClusterInfo, since: number): Promise<Map<string, number>> {
  const calls = (await (await fetch(new URL('/emulator/calls', info.emulators.voximplant))).json()) as Array<{
    ref?: string;
    dialled: boolean;
    startedAt: number;
  }>;
  const counts = new Map<string, number>();
  for (const call of calls) {
    if (!call.dialled || !call.ref || call.startedAt < since - 60_000) continue;
    counts.set(call.ref, (counts.get(call.ref) ?? 0) + 1);
  }
  return counts;
}

async function expectOneCallEach(info: ClusterInfo, leads: Lead[], since: number): Promise<void> {
  const counts = await callsPerLead(info, since);
  const wrong = leads
    .map((l) => ({ ref: l.ref, calls: counts.get(l.ref) ?? 0 }))
    .filter((c) => c.calls !== 1);
  expect(wrong).toEqual([]);
}

/** Which processes (worker identities, pid@host) ran tasks of these leads' workflows. */
async function identitiesOf(client: Client, leads: Lead[]): Promise<Map<string, Set<string>>> {
  const byLead = new Map<string, Set<string>>();
  for (const lead of leads) {
    const ids = new Set<string>();
    const history = await client.workflow.getHandle(`lead-${lead.ref}`).fetchHistory();
    for (const e of history.events ?? []) {
      const identity =
        e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
      if (identity) ids.add(identity);
    }
    byLead.set(lead.ref, ids);
  }
  return byLead;
}

describe('production-shaped cluster: Temporal on PostgreSQL, 2 workers, 2 API instances', () => {
  let info: ClusterInfo;
  let connection: Connection;
  let client: Client;
  const accepted: Lead[] = [];
  const since = Date.now();

  beforeAll(async () => {
    const provisionMs = await script('provision.sh');
    // A clean database each run; the folder is left after the run (logs) and removed by the next.
    await script('down.sh', ['--purge']);
    fs.mkdirSync(DIR, { recursive: true, mode: 0o755 });
    const upMs = await script('up.sh');
    info = clusterInfo();
    connection = await Connection.connect({ address: info.temporalAddress });
    client = new Client({ connection, namespace: 'default' });
    temporal = client;
    console.log(
      `[cluster] provision ${provisionMs} ms, first up ${upMs} ms; server RSS ${rssMb(info.pids.temporal!)} MB`,
    );
  }, 45 * 60_000);

  afterAll(async () => {
    await connection?.close();
    await script('down.sh').catch((err: unknown) => console.error(err));
  }, 3 * 60_000);

  it('kill -9 of one worker of two: its leads finish on the other, one call each', async () => {
    const victim = info.pids['worker-1']!;
    const survivor = info.pids['worker-2']!;
    const leads = await postLeads(info, 20);
    accepted.push(...leads);
    const hostSuffix = (pid: number) => new RegExp(`^${pid}@`);
    const victimsLeads = async () => {
      const identities = await identitiesOf(client, leads);
      return leads.filter((l) => [...identities.get(l.ref)!].some((id) => hostSuffix(victim).test(id)));
    };
    // The calls ring for ten seconds: kill once the victim has taken part, while they ring.
    await eventually(async () => expect((await victimsLeads()).length).toBeGreaterThan(0), 60_000);
    process.kill(victim, 'SIGKILL');
    await waitDead(victim);
    const killedAt = Date.now();

    await expectAnswered(info, leads, 4 * 60_000, false);
    const answeredMs = Date.now() - killedAt;
    await expectAnswered(info, leads, 4 * 60_000);
    console.log(
      `[cluster] after the kill of worker-1: all 20 answered in ${answeredMs} ms, all completed in ${Date.now() - killedAt} ms`,
    );
    await expectOneCallEach(info, leads, since);

    // The dead worker had taken part (so the survivor took its leads over), and the survivor alone
    // did everything after the kill.
    const identities = await identitiesOf(client, leads);
    const touchedByVictim = await victimsLeads();
    expect(touchedByVictim.length).toBeGreaterThan(0);
    for (const lead of touchedByVictim) {
      expect([...identities.get(lead.ref)!].some((id) => hostSuffix(survivor).test(id))).toBe(true);
    }
    console.log(`[cluster] worker-1 had worked on ${touchedByVictim.length} of 20 leads before its kill`);
    expect(alive(survivor)).toBe(true);
  });

  it('kill -9 of the Temporal server: nothing lost, leads in flight finish, new leads accepted', async () => {
    const server = info.pids.temporal!;
    const rssBefore = rssMb(server);
    const leads = await postLeads(info, 10);
    accepted.push(...leads);
    // Kill while the leads are in flight: each has placed its call, which rings for ten seconds.
    await eventually(async () => {
      const counts = await callsPerLead(info, since);
      expect(leads.filter((l) => !counts.has(l.ref))).toEqual([]);
    }, 60_000);
    process.kill(server, 'SIGKILL');
    await waitDead(server);
    const killedAt = Date.now();

    // up.sh starts what is not running (the server, and the worker killed above) on the same
    // database. The leads are watched meanwhile: the surviving processes carry on as soon as the server
    // answers, without waiting for the restarted worker.
    const restart = script('up.sh');
    const answeredMs = await expectAnswered(info, leads, 4 * 60_000, false).then(() => Date.now() - killedAt);
    const restartMs = await restart;
    info = clusterInfo();
    expect(info.pids.temporal).not.toBe(server);
    await expectAnswered(info, accepted, 4 * 60_000);
    console.log(
      `[cluster] server RSS before its kill ${rssBefore} MB; up.sh again in ${restartMs} ms; the 10 leads in flight all answered ${answeredMs} ms after the kill`,
    );
    await expectOneCallEach(info, accepted, since);

    const after = await postLeads(info, 5);
    accepted.push(...after);
    await expectAnswered(info, after, 2 * 60_000);
    await expectOneCallEach(info, after, since);
    console.log(`[cluster] server RSS after ${accepted.length} leads: ${rssMb(info.pids.temporal!)} MB`);
  });

  it('down and up again: the same database, every lead still there', async () => {
    const before = clusterInfo().pids;
    const downMs = await script('down.sh');
    for (const pid of Object.values(before)) expect(alive(pid)).toBe(false);
    const upMs = await script('up.sh');
    info = clusterInfo();
    console.log(`[cluster] down ${downMs} ms, up again on the existing database ${upMs} ms`);
    await connection.close();
    connection = await Connection.connect({ address: info.temporalAddress });
    client = new Client({ connection, namespace: 'default' });
    temporal = client;
    await expectAnswered(info, accepted, 60_000);
    // The emulators are new (their call history went with the old ones): a restart calls nobody
    // again. Every lead's workflow has completed, so none can place a call later.
    expect([...(await callsPerLead(info, since)).values()].reduce((a, b) => a + b, 0)).toBe(0);
    // The custom search attributes were registered and the visibility store kept them.
    await eventually(async () => {
      const counted = await client.workflow.count(`WorkflowType = 'processLead' AND LeadStatus = 'Answered'`);
      expect(counted.count).toBe(accepted.length);
    }, 30_000);
  });
});
