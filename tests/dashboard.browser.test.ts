// The dashboard page in a real browser: Debian's Chromium (driven by playwright-core) opens
// /dashboard of the real service on a real Temporal dev server, logs in with the operator's token,
// and the test checks what the PAGE shows — lead counts, ru-RU order totals, status chips — against
// the leads it made, then makes one more lead and waits for the page's own 5-second refresh to show
// it, without a reload.
//
// Chromium comes from scripts/install-chromium.sh (installs Debian's package when root with apt).
// UPDATE_SCREENSHOT=1 also writes the full page to docs/dashboard.png.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';

const ROOT = path.join(__dirname, '..');
const SCREENSHOT = path.join(ROOT, 'docs', 'dashboard.png');
/** What the page formats with `Intl.NumberFormat('ru-RU')`: a no-break space between thousands, a decimal comma. */
const NBSP = '\u00a0';

// Unique per run, so the rows the test looks for can only be its own.
const run = Date.now().toString(36);
const partnerA = `mebel-${run}`;
const partnerB = `remont-${run}`;
const siteA = `divan-${run}.ru`;
const siteB = `kuhni-${run}.ru`;
const NO_PARTNER = '(без партнёра)';

let env: TestWorkflowEnvironment | undefined;
let stack: TestStack;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

function chromiumPath(): string {
  // First run as root on Debian installs the package (about half a minute); afterwards it only prints the path.
  const out = execFileSync('bash', [path.join(ROOT, 'scripts', 'install-chromium.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim();
}

beforeAll(async () => {
  const executablePath = chromiumPath();
  env = await startDevServer();
  stack = await startStack(env, {
    // Long enough that no report is ever raced against it, however busy the machine.
    CALL_RESULT_TIMEOUT: '10m',
    CALL_MAX_ATTEMPTS: '2',
    CALL_RETRY_DELAY: '200ms',
  });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless', '--disable-gpu'] });
  const context = await browser.newContext({
    viewport: { width: 1024, height: 600 }, // fullPage grows it to the content's height
    locale: 'ru-RU',
    // The operators' clock, far east of UTC: the page must still count leads made "today" there.
    timezoneId: 'Asia/Vladivostok',
  });
  page = await context.newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // Failed loads are reported (with their URL) by the response handler below.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    // The page declares no icon, so the browser's own /favicon.ico probe 404s: not the page's doing.
    if (res.status() >= 400 && new URL(res.url()).pathname !== '/favicon.ico') {
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

interface LeadInput {
  partner?: string;
  site: string;
  orderAmount?: number;
  /** scripted so that the call fails twice: the lead ends in ManualHandling */
  unreachable?: boolean;
}

async function makeLead(input: LeadInput): Promise<string> {
  const phone = uniquePhone();
  if (input.unreachable) {
    stack.emulators.voximplant.control.scriptFor(phone, [
      { result: 'busy', delayMs: 5 },
      { result: 'no_answer', delayMs: 5 },
    ]);
  }
  const { status, body } = await postJson(`${stack.url}/api/leads`, {
    name: 'Браузер',
    phone,
    site: input.site,
    ...(input.partner ? { partner: input.partner } : {}),
    ...(input.orderAmount !== undefined ? { orderAmount: input.orderAmount } : {}),
  });
  expect(status).toBe(202);
  return String(body.ref);
}

/** Waits until the service reports the lead in the given status, so the page has something final to show. */
async function settled(ref: string, status: string): Promise<void> {
  await eventually(
    async () =>
      expect(
        (await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator)).body.status,
      ).toBe(status),
    30_000,
  );
}

interface RowView {
  name: string;
  leads: string;
  amount: string;
  /** chip texts, sorted, e.g. "Answered: 2" */
  statuses: string[];
  /** chip texts whose chip carries the ManualHandling class (the red one) */
  highlighted: string[];
}

/** One row of the partners or sites table as the page renders it, or undefined while it is absent. */
async function readRow(table: 'partners' | 'sites', key: string): Promise<RowView | undefined> {
  const tr = page.locator(`#${table} tbody tr[data-key="${key}"]`);
  if ((await tr.count()) !== 1) return undefined;
  const [name = '', leads = '', amount = ''] = await tr.locator('td').allTextContents();
  const chips = tr.locator('span.status');
  const statuses: string[] = [];
  const highlighted: string[] = [];
  for (let i = 0, n = await chips.count(); i < n; i += 1) {
    const chip = chips.nth(i);
    const text = (await chip.textContent()) ?? '';
    statuses.push(text);
    if ((await chip.getAttribute('class'))?.split(/\s+/).includes('ManualHandling')) highlighted.push(text);
  }
  return { name, leads, amount, statuses: statuses.sort(), highlighted };
}

async function text(selector: string): Promise<string> {
  return ((await page.locator(selector).textContent()) ?? '').trim();
}

/** Polls the page (no reload) until every expected row reads as expected. */
async function expectRows(expected: Array<[table: 'partners' | 'sites', key: string, row: RowView]>) {
  await eventually(
    async () => {
      for (const [table, key, row] of expected) {
        expect({ table, key, row: await readRow(table, key) }).toEqual({ table, key, row });
      }
    },
    30_000,
    250,
  );
}

test('the page shows each partner’s and site’s leads, ru-RU totals and statuses, and refreshes itself', async () => {
  const refs = {
    a1: await makeLead({ partner: partnerA, site: siteA, orderAmount: 45990 }),
    a2: await makeLead({ partner: partnerA, site: siteA, orderAmount: 12500.5 }),
    b1: await makeLead({ partner: partnerB, site: siteB, orderAmount: 2500, unreachable: true }),
    none: await makeLead({ site: siteB }),
  };
  await Promise.all([
    settled(refs.a1, 'Answered'),
    settled(refs.a2, 'Answered'),
    settled(refs.b1, 'ManualHandling'),
    settled(refs.none, 'Answered'),
  ]);

  let dashboardFetches = 0;
  page.on('response', (res) => {
    if (new URL(res.url()).pathname === '/api/dashboard' && res.ok()) dashboardFetches += 1;
  });
  // Without a session the page is the operator's login form (401); a wrong token is refused there,
  // the right one sets the session cookie and brings the dashboard.
  const login = await page.goto(`${stack.url}/dashboard`);
  expect(login?.status()).toBe(401);
  await page.fill('#token', 'not-the-operator-token');
  const refused = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(refused[0]?.status()).toBe(401);
  expect(await text('.error')).toBe('Неверный токен оператора.');
  await page.fill('#token', stack.operatorToken);
  const [response] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  expect(response?.status()).toBe(200);
  expect(new URL(page.url()).pathname).toBe('/dashboard');
  const session = (await page.context().cookies()).find((c) => c.name === 'stl_operator');
  expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' });
  // Those two 401s were the login's; from here on the page must load and refresh without an error.
  expect(pageErrors.splice(0)).toEqual([
    `HTTP 401 ${stack.url}/dashboard`,
    `HTTP 401 ${stack.url}/operator/login`,
  ]);
  let navigations = 0;
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) navigations += 1;
  });
  // Survives only as long as the document does: a reload would lose it.
  await page.evaluate('window.__sameDocument = "yes"');

  await expectRows([
    [
      'partners',
      partnerA,
      {
        name: partnerA,
        leads: '2',
        amount: `58${NBSP}490,5`,
        statuses: ['Answered: 2'],
        highlighted: [],
      },
    ],
    [
      'partners',
      partnerB,
      {
        name: partnerB,
        leads: '1',
        amount: `2${NBSP}500`,
        statuses: ['ManualHandling: 1'],
        highlighted: ['ManualHandling: 1'],
      },
    ],
    [
      'partners',
      NO_PARTNER,
      { name: NO_PARTNER, leads: '1', amount: '0', statuses: ['Answered: 1'], highlighted: [] },
    ],
    [
      'sites',
      siteA,
      { name: siteA, leads: '2', amount: `58${NBSP}490,5`, statuses: ['Answered: 2'], highlighted: [] },
    ],
    [
      'sites',
      siteB,
      {
        name: siteB,
        leads: '2',
        amount: `2${NBSP}500`,
        statuses: ['Answered: 1', 'ManualHandling: 1'],
        highlighted: ['ManualHandling: 1'],
      },
    ],
  ]);
  // This dev server is the test's own: the cards count exactly its leads.
  expect(await text('#total-leads')).toBe('4');
  expect(await text('#total-amount')).toBe(`60${NBSP}990,5`);
  expect(await text('#total-manual')).toBe('1');
  expect(await text('#updated')).toMatch(/^обновлено \d{1,2}:\d{2}:\d{2}$/);
  // Biggest first: partner A (2 leads) heads the table.
  expect(await page.locator('#partners tbody tr').first().getAttribute('data-key')).toBe(partnerA);

  // One more lead: the page picks it up on its own.
  const fetchesBefore = dashboardFetches;
  const late = await makeLead({ partner: partnerA, site: siteB, orderAmount: 990 });
  await settled(late, 'Answered');
  await expectRows([
    [
      'partners',
      partnerA,
      { name: partnerA, leads: '3', amount: `59${NBSP}480,5`, statuses: ['Answered: 3'], highlighted: [] },
    ],
    [
      'sites',
      siteB,
      {
        name: siteB,
        leads: '3',
        amount: `3${NBSP}490`,
        statuses: ['Answered: 2', 'ManualHandling: 1'],
        highlighted: ['ManualHandling: 1'],
      },
    ],
    [
      'sites',
      siteA,
      { name: siteA, leads: '2', amount: `58${NBSP}490,5`, statuses: ['Answered: 2'], highlighted: [] },
    ],
  ]);
  expect(await text('#total-leads')).toBe('5');
  expect(await text('#total-amount')).toBe(`61${NBSP}980,5`);
  expect(await text('#total-manual')).toBe('1');
  expect(navigations).toBe(0);
  expect(await page.evaluate('window.__sameDocument')).toBe('yes');
  expect(dashboardFetches).toBeGreaterThan(fetchesBefore);
  expect(pageErrors).toEqual([]);

  if (process.env.UPDATE_SCREENSHOT === '1') {
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }
}, 60_000);
