// SMS.ru account errors (no money, a wrong key, a sender not approved, the day's limit): the lead
// goes to a person, the sellers hear of it once per kind per hour, and the metric counts each.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createSmsAccountAlerts } from '../activities/smsAccountAlerts';
import { startDevServer, startStack, type TestStack } from './support/env';
import { eventually, getJson, postJson, uniquePhone } from './support/http';

describe('one alert per kind per hour', () => {
  function alerts(send: (html: string) => Promise<unknown> = async () => undefined) {
    let now = 1_000_000;
    const sent: string[] = [];
    const a = createSmsAccountAlerts({
      send: async (html) => {
        sent.push(html);
        return send(html);
      },
      now: () => now,
    });
    return { a, sent, advance: (ms: number) => (now += ms) };
  }

  test('repeats within the hour are dropped; another kind, or the next hour, alerts again', async () => {
    const { a, sent, advance } = alerts();
    expect(await Promise.all([a.raise('no_money', 'x'), a.raise('no_money', 'y')])).toEqual([true, false]);
    advance(3_599_999);
    expect(await a.raise('no_money', 'z')).toBe(false);
    expect(await a.raise('daily_limit', 'd')).toBe(true);
    advance(1);
    expect(await a.raise('no_money', 'w')).toBe(true);
    expect(sent).toHaveLength(3);
    expect(sent[0]).toContain('не хватает денег');
    expect(sent[1]).toContain('дневной лимит');
  });

  test('an alert that could not go out is tried again by the next failure', async () => {
    let fail = true;
    const { a, sent } = alerts(async () => {
      if (fail) throw new Error('telegram down');
    });
    expect(await a.raise('auth', 'x')).toBe(false);
    fail = false;
    expect(await a.raise('auth', 'x')).toBe(true);
    expect(sent).toHaveLength(2);
  });
});

describe('SMS.ru answering 201 (no money) on a running service', () => {
  let env: TestWorkflowEnvironment;
  let stack: TestStack;
  beforeAll(async () => {
    env = await startDevServer();
    stack = await startStack(env);
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await env?.teardown();
  });

  async function metric(name: string): Promise<number> {
    const text = await (await fetch(stack.metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith(name));
    return line ? Number(line.split(' ').pop()) : 0;
  }

  test('two leads: both flagged sms_failed, one alert to the sellers, the metric counts both', async () => {
    stack.emulators.smsru.control.setBalance(0);
    const phones = [uniquePhone(), uniquePhone()];
    const refs: string[] = [];
    for (const [i, phone] of phones.entries()) {
      const { body } = await postJson(`${stack.url}/api/leads`, { name: `Клиент ${i}`, phone });
      refs.push(String(body.ref));
    }
    for (const ref of refs) {
      await eventually(async () => {
        const { body } = await getJson(`${stack.url}/api/leads/${encodeURIComponent(ref)}`, stack.operator);
        expect(body).toMatchObject({ manualReason: 'sms_failed' });
      }, 30_000);
    }
    expect(await metric('stl_sms_account_errors_total{kind="no_money"}')).toBe(2);
    const accountAlerts = () =>
      stack.emulators.telegram.state.messages.filter((m) => m.text.includes('SMS клиентам не отправляются'));
    // Each lead's manual-handling alert goes out after its SMS failed, so by the time both are
    // here a second account alert would have been sent too.
    const messages = () => stack.emulators.telegram.state.messages.map((m) => m.text);
    for (const phone of phones) {
      await eventually(() =>
        expect(messages().some((t) => t.includes('ручная обработка') && t.includes(phone.slice(-4)))).toBe(
          true,
        ),
      );
    }
    await eventually(() => expect(accountAlerts()).toHaveLength(1));
    expect(accountAlerts()).toHaveLength(1);
    expect(accountAlerts()[0]!.text).toContain('не хватает денег');
    expect(accountAlerts()[0]!.text).toMatch(/201/);
    expect(stack.emulators.smsru.state.sms).toHaveLength(0);
  });
});
