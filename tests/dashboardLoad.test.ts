// Many open dashboards and consoles on a real dev server: what they cost is counted on the Temporal
// side (every visibility list, query, history read and task-queue describe the API's client sends),
// and must be one refresh per interval, whatever the number of tabs. The API's clock is virtual, so
// "after the interval" is a step of the test, not a wait.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';
import { VirtualClock } from './support/virtualClock';
import { LeadStatusKey } from '../workflows/searchAttributes';

let env: TestWorkflowEnvironment;
let stack: TestStack;
const clock = new VirtualClock(Date.now());

const run = Date.now().toString(36);
const site = `load-${run}.ru`;
const partner = `load${run}`;

/** The client's RPCs that read leads: what a view costs Temporal. */
const READS = [
  'listWorkflowExecutions',
  'countWorkflowExecutions',
  'scanWorkflowExecutions',
  'queryWorkflow',
  'describeWorkflowExecution',
  'getWorkflowExecutionHistory',
  'describeTaskQueue',
] as const;
type Read = (typeof READS)[number];
const counts = new Map<Read, number>();
const count = (name: Read) => counts.get(name) ?? 0;
const total = () => [...counts.values()].reduce((a, b) => a + b, 0);
/** The next visibility list fails, as when the store is briefly down. */
let failNextList = false;

beforeAll(async () => {
  env = await startDevServer();
  stack = await startStack(
    env,
    { CALL_RESULT_TIMEOUT: '10m', CALL_MAX_ATTEMPTS: '2', CALL_RETRY_DELAY: '200ms' },
    { clock },
  );
  const service = stack.service.client.workflowService as unknown as Record<
    Read,
    (...args: unknown[]) => Promise<unknown>
  >;
  for (const name of READS) {
    const original = service[name].bind(service);
    service[name] = (...args: unknown[]) => {
      counts.set(name, count(name) + 1);
      if (name === 'listWorkflowExecutions' && failNextList) {
        failNextList = false;
        return Promise.reject(new Error('visibility unavailable'));
      }
      return original(...args);
    };
  }
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await env?.teardown();
});

const refreshMs = () => stack.config.dashboard.refreshMs;

async function makeLead(kind: 'answered' | 'manual' | 'unreported', body: Record<string, unknown>) {
  const phone = uniquePhone();
  const vox = stack.emulators.voximplant.control;
  if (kind === 'manual') {
    vox.scriptFor(phone, [
      { result: 'busy', delayMs: 5 },
      { result: 'no_answer', delayMs: 5 },
    ]);
  } else if (kind === 'unreported') {
    vox.scriptFor(phone, [{ result: 'answered', report: 'none', delayMs: 5 }]);
  }
  const res = await postJson(`${stack.url}/api/leads`, { name: 'Нагрузка', phone, site, ...body });
  expect(res.status).toBe(202);
  return String(res.body.ref);
}

async function settled(ref: string, check: (s: Record<string, unknown>) => boolean): Promise<void> {
  await eventually(async () => {
    const s = (await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator)).body;
    expect(check(s)).toBe(true);
  }, 30_000);
}

/** Waits until visibility itself lists the site's leads with these statuses (the API is not asked). */
async function visible(statuses: string[]): Promise<void> {
  await eventually(async () => {
    const seen: string[] = [];
    for await (const wf of stack.service.client.workflow.list({ query: `LeadSite = '${site}'` })) {
      seen.push(wf.typedSearchAttributes.get(LeadStatusKey) ?? 'New');
    }
    expect(seen.sort()).toEqual([...statuses].sort());
  }, 30_000);
  counts.clear();
}

const dashboardView = [
  '/api/dashboard',
  '/api/dashboard/leads-over-time',
  '/api/dashboard/first-call',
  '/api/dashboard/reached',
  '/api/dashboard/backlog',
];

async function get(route: string): Promise<Record<string, unknown>> {
  const { status, body } = await getJson(`${stack.url}${route}`, stack.operator);
  expect({ route, status }).toEqual({ route, status: 200 });
  return body;
}

type Group = { key: string; leads: number; orderTotal: number; byStatus: Record<string, number> };
const siteOf = (d: Record<string, unknown>) => (d.sites as Group[]).find((g) => g.key === site);
const partnerOf = (d: Record<string, unknown>) => (d.partners as Group[]).find((g) => g.key === partner);

const refs: Record<string, string> = {};

test('20 dashboards and 20 consoles open at once cost Temporal one refresh, and show what was posted', async () => {
  refs.answered = await makeLead('answered', { partner, orderAmount: 1000 });
  refs.manual = await makeLead('manual', { partner, orderAmount: 2500.5 });
  refs.unreported = await makeLead('unreported', {});
  await settled(refs.answered, (s) => s.status === 'Answered');
  await settled(refs.manual, (s) => s.status === 'ManualHandling');
  // Dialled (the lead hears of the claim when the attempt ends), and no report will come.
  await settled(
    refs.unreported,
    (s) =>
      s.status === 'WaitingForResult' &&
      stack.emulators.voximplant.state.calls.some(
        (c) => c.customData?.phone === refs.unreported && c.dialledAt,
      ),
  );
  // Visibility shows a call being awaited as Calling.
  await visible(['Answered', 'ManualHandling', 'Calling']);

  const dashboards = Array.from({ length: 20 }, () => Promise.all(dashboardView.map(get)));
  const consoles = Array.from({ length: 20 }, () => get('/api/operators/queue'));
  const [views, queues] = await Promise.all([Promise.all(dashboards), Promise.all(consoles)]);

  // One read of the recent leads and one of the console's queue, two task-queue describes, and at
  // most one read per lead for each of the two pieces: not 20 of each.
  expect(count('listWorkflowExecutions')).toBe(2);
  expect(count('describeTaskQueue')).toBe(2);
  expect(count('countWorkflowExecutions') + count('scanWorkflowExecutions')).toBe(0);
  const perLead =
    count('queryWorkflow') + count('getWorkflowExecutionHistory') + count('describeWorkflowExecution');
  expect(perLead).toBeGreaterThan(0);
  expect(perLead).toBeLessThanOrEqual(2 * 3);

  // Every tab got the same read, and the numbers of what was posted.
  const asOf = new Date(clock.now()).toISOString();
  for (const [numbers, overTime, firstCall, reached, backlog] of views) {
    expect(numbers!.asOf).toBe(asOf);
    expect(siteOf(numbers!)).toEqual({
      key: site,
      leads: 3,
      orderTotal: 3500.5,
      byStatus: { Answered: 1, ManualHandling: 1, Calling: 1 },
    });
    expect(partnerOf(numbers!)).toMatchObject({ leads: 2, orderTotal: 3500.5 });
    expect(overTime!.asOf).toBe(asOf);
    // This dev server is the test's own: all three leads were called today.
    expect((firstCall!.calls as number[]).at(-1)).toBe(3);
    expect((reached!.sites as Array<{ key: string; reached: number }>).find((g) => g.key === site)).toEqual({
      key: site,
      leads: 3,
      reached: 1,
      share: 0.333,
    });
    expect(backlog!).toMatchObject({ at: asOf, crm: expect.any(Number), alerts: expect.any(Number) });
  }
  for (const queue of queues) {
    expect(queue.asOf).toBe(asOf);
    expect(queue.manual).toEqual([
      expect.objectContaining({
        ref: refs.manual,
        status: 'ManualHandling',
        reason: 'attempts_exhausted',
        attempts: 2,
        lastResult: 'no_answer',
        partner,
        site,
      }),
    ]);
    expect(queue.active).toEqual([
      expect.objectContaining({ ref: refs.unreported, status: 'Calling', attempts: 1, site }),
    ]);
  }

  // The same tabs polling again within the interval cost nothing at all.
  counts.clear();
  await Promise.all([
    ...Array.from({ length: 20 }, () => Promise.all(dashboardView.map(get))),
    ...Array.from({ length: 20 }, () => get('/api/operators/queue')),
  ]);
  expect(total()).toBe(0);

  // A period older than the recent read is read on demand, once for all who ask for it.
  const old = '/api/dashboard?from=2020-01-01&to=2020-02-01';
  const olds = await Promise.all(Array.from({ length: 10 }, () => get(old)));
  expect(count('listWorkflowExecutions')).toBe(1);
  expect(olds.map((d) => (d.total as { leads: number }).leads)).toEqual(Array(10).fill(0));
}, 90_000);

test('a lead posted later shows once the interval has passed, not before', async () => {
  const before = await get('/api/dashboard');
  const late = await makeLead('answered', { partner, orderAmount: 990 });
  await settled(late, (s) => s.status === 'Answered');
  await visible(['Answered', 'Answered', 'ManualHandling', 'Calling']);

  // Within the interval: the same read, however often it is asked.
  const same = await get('/api/dashboard');
  expect(same.asOf).toBe(before.asOf);
  expect(siteOf(same)!.leads).toBe(3);
  expect(count('listWorkflowExecutions')).toBe(0);

  await clock.advance(refreshMs() + 1);
  const fresh = await Promise.all(Array.from({ length: 10 }, () => get('/api/dashboard')));
  expect(count('listWorkflowExecutions')).toBe(1);
  for (const d of fresh) {
    expect(d.asOf).toBe(new Date(clock.now()).toISOString());
    expect(siteOf(d)).toMatchObject({ leads: 4, orderTotal: 4490.5, byStatus: { Answered: 2 } });
    expect(partnerOf(d)).toMatchObject({ leads: 3, orderTotal: 4490.5 });
  }
});

test('a failed refresh answers with the last good numbers and their time; the next request tries again', async () => {
  const good = await get('/api/dashboard');
  await clock.advance(refreshMs() + 1);
  counts.clear();
  failNextList = true;
  const during = await get('/api/dashboard');
  expect(count('listWorkflowExecutions')).toBe(1);
  expect(during.asOf).toBe(good.asOf);
  expect(siteOf(during)!.leads).toBe(4);
  // Not remembered as a refresh: the very next request reads again, at the same instant.
  const after = await get('/api/dashboard');
  expect(count('listWorkflowExecutions')).toBe(2);
  expect(after.asOf).toBe(new Date(clock.now()).toISOString());
  expect(after.asOf).not.toBe(good.asOf);
});
