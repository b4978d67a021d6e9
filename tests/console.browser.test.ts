// The operators' console and the dashboard's charts in a real browser (Debian's Chromium driven by
// playwright-core, as in dashboard.browser.test.ts) on the real service and a real Temporal dev
// server. The test makes its own leads — some that end in manual handling, one whose call is never
// reported (so it stays "being called" for the whole test), some answered — and checks what the
// pages show, then acts from the console and waits for the page's own refresh to show the change.
// The charts are checked through the data of their uPlot instances, not through pixels.
//
// UPDATE_SCREENSHOT=1 also writes docs/operators.png and docs/dashboard.png.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';

const ROOT = path.join(__dirname, '..');
const run = Date.now().toString(36);
const partnerP = `mebel-${run}`;
const partnerQ = `okna-${run}`;
const site1 = `divan-${run}.ru`;
const site2 = `kuhni-${run}.ru`;

let env: TestWorkflowEnvironment | undefined;
let stack: TestStack;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

function chromiumPath(): string {
  return execFileSync('bash', [path.join(ROOT, 'scripts', 'install-chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

beforeAll(async () => {
  const executablePath = chromiumPath();
  env = await startDevServer();
  stack = await startStack(env, {
    // The unreported call waits for its result this long: far beyond the test, so nothing races it.
    CALL_RESULT_TIMEOUT: '10m',
    CALL_MAX_ATTEMPTS: '2',
    CALL_RETRY_DELAY: '200ms',
  });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless', '--disable-gpu'] });
  const context = await browser.newContext({
    viewport: { width: 1280, height: 700 },
    locale: 'ru-RU',
    timezoneId: 'Asia/Vladivostok',
  });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    const { pathname } = new URL(res.url());
    // The login's 401 and the refusal the test provokes on purpose are checked where they happen.
    const expected = res.status() === 401 || (res.status() === 409 && pathname.endsWith('/call-now'));
    if (res.status() >= 400 && pathname !== '/favicon.ico' && !expected) {
      pageErrors.push(`HTTP ${res.status()} ${res.url()}`);
    }
  });
  page.on('requestfailed', (req) =>
    pageErrors.push(`request failed: ${req.url()} ${req.failure()?.errorText}`),
  );
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await env?.teardown();
});

type Kind = 'manual' | 'answered' | 'unreported';

async function makeLead(kind: Kind, partner: string, site: string): Promise<string> {
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
  const { status, body } = await postJson(`${stack.url}/api/leads`, { name: 'Пульт', phone, site, partner });
  expect(status).toBe(202);
  return String(body.ref);
}

async function leadState(ref: string): Promise<Record<string, unknown>> {
  return (await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator)).body;
}

/** Waits for the lead's own state to prove the outcome (no sleeping on the wall clock). */
async function settled(ref: string, check: (state: Record<string, unknown>) => boolean): Promise<void> {
  await eventually(async () => expect(check(await leadState(ref))).toBe(true), 30_000, 100);
}

/** The rows of a console table: ref → the cells' texts. */
async function rows(table: 'manual' | 'active'): Promise<Record<string, string[]>> {
  // A string, not a function: the project's types have no DOM.
  return page.evaluate<Record<string, string[]>>(`(() => {
    const out = {};
    for (const tr of document.querySelectorAll('#${table} tbody tr')) {
      out[tr.dataset.ref ?? tr.dataset.workflowId ?? '?'] = [...tr.cells].map((td) => td.innerText.trim());
    }
    return out;
  })()`);
}

interface ChartView {
  labels: string[];
  data: Array<Array<number | null>>;
}

async function chart(name: string): Promise<ChartView> {
  return page.evaluate<ChartView>(`(() => {
    const u = window.__charts && window.__charts[${JSON.stringify(name)}];
    if (!u) throw new Error('no chart ${name}');
    return { labels: u.series.map((s) => String(s.label)), data: u.data.map((d) => [...d]) };
  })()`);
}

const refs: Record<string, string> = {};

test('the console lists the leads that need a person and those being called, acts on them, and shows refusals', async () => {
  refs.m1 = await makeLead('manual', partnerP, site1);
  refs.m2 = await makeLead('manual', partnerP, site2);
  refs.m3 = await makeLead('manual', partnerP, site2);
  refs.a1 = await makeLead('answered', partnerP, site1);
  refs.a2 = await makeLead('answered', partnerP, site1);
  refs.u1 = await makeLead('unreported', partnerQ, site2);
  for (const r of ['m1', 'm2', 'm3']) await settled(refs[r]!, (s) => s.status === 'ManualHandling');
  for (const r of ['a1', 'a2']) await settled(refs[r]!, (s) => s.status === 'Answered');
  // Its call was claimed (the scenario dialled: the lead hears of the claim when the attempt ends)
  // and no report will come.
  await settled(
    refs.u1!,
    (s) =>
      s.status === 'WaitingForResult' &&
      stack.emulators.voximplant.state.calls.some((c) => c.customData?.phone === refs.u1 && c.dialledAt),
  );

  // Every route behind the pages wants the operator's token.
  for (const route of [
    '/api/operators/queue',
    '/api/dashboard/leads-over-time',
    '/api/dashboard/first-call',
    '/api/dashboard/reached',
    '/api/dashboard/backlog',
  ]) {
    expect({ route, status: (await fetch(`${stack.url}${route}`)).status }).toEqual({ route, status: 401 });
  }
  expect((await getJson(`${stack.url}/api/operators/queue`, stack.operator)).status).toBe(200);

  const login = await page.goto(`${stack.url}/operators`);
  expect(login?.status()).toBe(401);
  await page.fill('#token', stack.operatorToken);
  const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(response?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toBe('/operators');
  await page.evaluate('window.__sameDocument = "yes"');

  // Oldest first, each with its reason, attempts, last result and partner.
  await eventually(
    async () => expect(Object.keys(await rows('manual'))).toEqual([refs.m1, refs.m2, refs.m3]),
    15_000,
    200,
  );
  const manual = await rows('manual');
  expect(manual[refs.m1!]!.slice(1, 5)).toEqual(['попытки исчерпаны', '2', 'не ответил', partnerP]);
  const active = await rows('active');
  expect(Object.keys(active)).toEqual([refs.u1]);
  expect(active[refs.u1!]!.slice(1, 3)).toEqual(['звоним', '1']);
  expect(active[refs.u1!]![5]).toBe(partnerQ);
  // Each lead links to its history in the Web UI.
  const link = await page.locator(`#manual tr[data-ref="${refs.m1}"] a.history`).getAttribute('href');
  expect(link).toMatch(
    new RegExp(
      `^http://127\\.0\\.0\\.1:${stack.config.temporal.uiPort}/namespaces/default/workflows/lead-k[0-9a-f]{24}/[0-9a-f-]{36}/history$`,
    ),
  );

  // A refused action shows the workflow's reason: no second call while one is in progress.
  await page.click(`#active tr[data-ref="${refs.u1}"] button[data-action="call-now"]`);
  await eventually(
    async () =>
      expect(await page.locator('#message').innerText()).toBe(
        `Позвонить ещё: ${refs.u1} — отказ (409): cannot call again while the lead is WaitingForResult`,
      ),
    10_000,
    100,
  );
  expect(await page.locator('#message').getAttribute('class')).toBe('error');

  // "Handled", with who and a note: the lead leaves the queue without a reload.
  await page.fill('#by', 'Анна');
  await page.fill('#note', 'перезвонила сама');
  await page.click(`#manual tr[data-ref="${refs.m2}"] button[data-action="handled"]`);
  await eventually(
    async () => expect(Object.keys(await rows('manual'))).toEqual([refs.m1, refs.m3]),
    15_000,
    200,
  );
  expect(await page.locator('#message').innerText()).toBe(`Обработан: ${refs.m2} — принято`);
  const handled = await leadState(refs.m2!);
  expect(handled.status).toBe('Handled');
  expect((handled.history as Array<{ what: string }>).map((e) => e.what)).toContain(
    'оператор: handled (Анна): перезвонила сама',
  );

  // Cancel the lead being called; and a lead handled elsewhere disappears on the next refresh by itself.
  await page.click(`#active tr[data-ref="${refs.u1}"] button[data-action="cancel"]`);
  await eventually(async () => expect(await rows('active')).toEqual({}), 15_000, 200);
  await settled(refs.u1!, (s) => s.status === 'Cancelled');
  const elsewhere = await postJson(
    `${stack.url}/api/leads/${refs.m3}/handled`,
    { by: 'бот' },
    stack.operator,
  );
  expect(elsewhere.status).toBe(200);
  await eventually(async () => expect(Object.keys(await rows('manual'))).toEqual([refs.m1]), 15_000, 200);
  expect(await page.evaluate('window.__sameDocument')).toBe('yes');

  if (process.env.UPDATE_SCREENSHOT === '1') {
    await page.screenshot({ path: path.join(ROOT, 'docs', 'operators.png'), fullPage: true });
  }
  expect(pageErrors).toEqual([]);
}, 120_000);

test('the dashboard’s charts show the test’s leads by outcome, time to first call, reach and backlogs', async () => {
  await page.goto(`${stack.url}/dashboard`);
  const sum = (xs: Array<number | null>) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
  // Final counts of this run: 2 answered, 1 left in manual handling, 2 handled, 1 cancelled.
  const expectedByOutcome = {
    ответили: 2,
    'нужен человек': 1,
    'обработаны вручную': 2,
    отменены: 1,
  };
  for (const name of ['hourly', 'daily']) {
    await eventually(
      async () => {
        const c = await chart(name);
        const totals = Object.fromEntries(c.labels.slice(1).map((l, i) => [l, sum(c.data[i + 1]!)]));
        expect(totals).toEqual(expectedByOutcome);
      },
      15_000,
      200,
    );
  }
  const daily = await chart('daily');
  // Every lead of the run is from today (in the operator's zone): the last day holds them all.
  const last = daily.data[0]!.length - 1;
  expect(sum(daily.data.slice(1).map((s) => s[last]!))).toBe(6);

  const firstCall = await chart('first-call');
  expect(firstCall.labels.slice(1)).toEqual(['медиана (p50), с', '90-й процентиль (p90), с']);
  const p50 = firstCall.data[1]![last];
  const p90 = firstCall.data[2]![last];
  expect(typeof p50).toBe('number');
  expect(p90).toBeGreaterThanOrEqual(p50!);
  const fc = (await getJson(`${stack.url}/api/dashboard/first-call?tz=Asia/Vladivostok`, stack.operator))
    .body;
  // All six leads were called; the JSON behind the chart is the same as what it draws.
  expect((fc.calls as number[]).at(-1)).toBe(6);
  expect((fc.p50 as number[]).at(-1)).toBe(p50);

  // Reached = Answered or Voicemail: partner P 2 of 5, partner Q 0 of 1; site 1 2 of 3, site 2 0 of 3.
  const reached = async (name: string, keys: string[]) => {
    const json = (await getJson(`${stack.url}/api/dashboard/reached`, stack.operator)).body as Record<
      string,
      Array<{ key: string; share: number }>
    >;
    const c = await chart(name);
    const groups = json[name === 'reached-sites' ? 'sites' : 'partners']!;
    return keys.map((k) => c.data[1]![groups.findIndex((g) => g.key === k)]);
  };
  expect(await reached('reached-partners', [partnerP, partnerQ])).toEqual([40, 0]);
  expect(await reached('reached-sites', [site1, site2])).toEqual([66.7, 0]);

  // The backlogs are sampled on each refresh: the page keeps adding points without a reload.
  const before = (await chart('backlog')).data[0]!.length;
  await eventually(
    async () => expect((await chart('backlog')).data[0]!.length).toBeGreaterThan(before),
    15_000,
    200,
  );
  const backlog = await chart('backlog');
  expect(backlog.labels.slice(1)).toEqual(['CRM (Bitrix24)', 'уведомления и SMS']);
  for (const s of backlog.data.slice(1)) for (const v of s) expect(typeof v).toBe('number');

  if (process.env.UPDATE_SCREENSHOT === '1') {
    await page.screenshot({ path: path.join(ROOT, 'docs', 'dashboard.png'), fullPage: true });
  }
  expect(pageErrors).toEqual([]);
}, 60_000);
