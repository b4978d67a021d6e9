// The lead form with the captcha on, in a real browser (Debian's Chromium through playwright-core,
// as tests/dashboard.browser.test.ts): the page loads the widget under its Content-Security-Policy,
// a lead sent without solving it is refused and the visitor told why, a solved one is accepted,
// and the widget asks for a new solve after each try (a token is good once).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startDevServer, startStack, type TestStack } from './support/env';
import { uniquePhone } from './support/http';

let env: TestWorkflowEnvironment | undefined;
let stack: TestStack;
let browser: Browser | undefined;
let page: Page;
const pageErrors: string[] = [];

beforeAll(async () => {
  const executablePath = execFileSync(
    'bash',
    [path.join(__dirname, '..', 'scripts', 'install-chromium.sh')],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  ).trim();
  env = await startDevServer();
  stack = await startStack(env, { CAPTCHA_PROVIDER: 'smartcaptcha' }, { role: 'api' });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--headless', '--disable-gpu'] });
  page = await (await browser.newContext({ locale: 'ru-RU' })).newPage();
  page.on('pageerror', (err) => pageErrors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    if (res.status() >= 400 && new URL(res.url()).pathname !== '/favicon.ico') {
      pageErrors.push(`HTTP ${res.status()} ${new URL(res.url()).pathname}`);
    }
  });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  await env?.teardown();
});

async function send(phone: string): Promise<string> {
  await page.fill('#name', 'Браузер');
  await page.fill('#phone', phone);
  const [answer] = await Promise.all([
    page.waitForResponse((res) => new URL(res.url()).pathname === '/api/leads'),
    page.click('button[type=submit]'),
  ]);
  // Page code as strings: the tests compile without the DOM's types.
  await page.locator('#result.ok, #result.err').waitFor();
  const shown = (await page.locator('#result').textContent()) ?? '';
  await page.evaluate("document.getElementById('result').className = ''");
  return `${answer.status()} ${shown}`;
}

/**
 * Polls from the test's side: the page's CSP forbids eval, which waitForFunction needs whenever its
 * predicate is not already true at the first look.
 */
async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('the page never got there');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('unsolved: refused and told; solved: accepted; each try needs a new solve', async () => {
  await page.goto(`${stack.url}/`);
  const widget = page.locator('.smart-captcha button.captcha-emulator');
  await widget.waitFor();
  expect(await widget.textContent()).toBe('Я не робот (эмулятор капчи)');

  expect(await send(uniquePhone())).toBe('403 Подтвердите, что вы не робот, и отправьте заявку ещё раз.');

  await widget.click();
  await until(async () => (await page.inputValue('input[name="smart-token"]')) !== '');
  expect(await widget.textContent()).toBe('✓ Проверка пройдена');
  const phone = uniquePhone();
  expect(await send(phone)).toBe(`202 Спасибо! Заявка принята, номер: ${phone}`);

  // The token went with that lead: the widget is back to unsolved, and a second lead needs it again.
  expect(await page.inputValue('input[name="smart-token"]')).toBe('');
  expect(await send(uniquePhone())).toMatch(/^403 /);
  expect(stack.emulators.captcha.state.verifications.map((v) => v.ok)).toEqual([true]);

  // The only errors are the two refusals the test provoked: the widget itself loads and runs cleanly.
  expect(pageErrors).toEqual(['HTTP 403 /api/leads', 'HTTP 403 /api/leads']);
}, 60_000);
