// The sellers' chat under a burst of leads, against the Telegram emulator with its flood limits on
// and a virtual clock shared by both: every lead is named, Telegram never has to say 429, and a
// lead's CRM id finds its alert (merged, edited in, or told in a digest).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import axios, { type AxiosInstance } from 'axios';
import { MockActivityEnvironment } from '@temporalio/testing';
import { CancelledFailure } from '@temporalio/common';
import type { AppConfig } from '../config';
import { EMULATOR_CREDENTIALS } from '../emulators/credentials';
import { createTelegramEmulator, type EmulatedMessage, type TelegramEmulator } from '../emulators/telegram';
import {
  createTelegramActivities,
  telegramLimitName,
  telegramLimitPolicy,
  type SellerAlert,
} from '../activities/telegram';
import { TELEGRAM_MAX_MESSAGE } from '../activities/telegramFormat';
import { telegramCallbackKey, verifyCallbackData } from '../domain/telegramCallback';
import { openSharedLimitUncached, type SharedLimit } from '../support/sharedLimit';
import { VirtualClock } from './support/virtualClock';

const API = 'http://telegram.test';
const cfg: AppConfig['telegram'] = {
  mode: 'emulator',
  apiUrl: API,
  botToken: EMULATOR_CREDENTIALS.telegramBotToken,
  chatId: EMULATOR_CREDENTIALS.telegramChatId,
  messagesPerMinute: 20,
  operatorIds: [],
  callbackKey: telegramCallbackKey('outbox-test-result-secret-0123456789'),
};

/** Axios answered by the emulator in-process: a request takes no real time, so the clock decides. */
function inProcess(tg: TelegramEmulator): AxiosInstance {
  return axios.create({
    adapter: async (config) => {
      const url = String(config.url).slice(API.length);
      const params =
        typeof config.data === 'string' ? (JSON.parse(config.data) as Record<string, unknown>) : {};
      const answer = tg.invoke(url, params);
      return { data: answer.body, status: answer.status, statusText: '', headers: {}, config };
    },
  });
}

let n = 0;
function lead(over: Partial<SellerAlert> = {}): SellerAlert {
  n += 1;
  return {
    kind: 'new_lead',
    ref: `ref-${n}`,
    workflowId: `lead-ref-${n}`,
    name: `Клиент ${n}`,
    phone: `7916${String(1_000_000 + n).slice(-7)}`,
    city: 'Москва',
    partner: 'watchpartner',
    site: 'watches.example',
    orderAmount: 12990 + n,
    ...over,
  };
}

/** Moves the virtual clock until `done`, failing past `maxMs` of virtual time. */
async function runUntil(clock: VirtualClock, done: () => boolean, maxMs = 15 * 60_000, stepMs = 100) {
  const until = clock.now() + maxMs;
  while (!done()) {
    if (clock.now() > until) throw new Error('not done within the virtual time allowed');
    await clock.advance(stepMs);
  }
}

function tracked<T>(p: Promise<T>) {
  const t = { settled: false, value: undefined as T | undefined, error: undefined as unknown };
  p.then(
    (v) => Object.assign(t, { settled: true, value: v }),
    (e: unknown) => Object.assign(t, { settled: true, error: e }),
  );
  return t;
}

/** The most messages (sent or edited) that fall in any 60 s. */
function busiestMinute(times: number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    most = Math.max(most, sorted.filter((t) => t >= sorted[i]! && t < sorted[i]! + 60_000).length);
  }
  return most;
}

const postedTimes = (tg: TelegramEmulator) => [
  ...tg.state.messages.map((m) => m.at.getTime()),
  ...tg.state.edits.map((e) => e.at.getTime()),
];
const messageOf = (tg: TelegramEmulator, messageId: number | undefined): EmulatedMessage =>
  tg.state.messages.find((m) => m.messageId === messageId)!;

function setup(opts: { editPatienceMs?: number; heartbeatMs?: number } = {}) {
  const clock = new VirtualClock();
  const tg = createTelegramEmulator({ clock });
  // A limit of its own per test: the cached one is shared by every caller in this process.
  const limit = openSharedLimitUncached({
    name: telegramLimitName(cfg.chatId),
    policy: telegramLimitPolicy(cfg.messagesPerMinute),
    clock,
  });
  const activities = createTelegramActivities(cfg, { http: inProcess(tg), clock, limit, ...opts });
  return { clock, tg, activities };
}

test('120 alerts at once: every lead named, no 429, at most 20 messages a minute', async () => {
  const { clock, tg, activities } = setup();
  const alerts = Array.from({ length: 120 }, () => lead());
  const sent = alerts.map((a) => tracked(activities.notifySellers(a)));
  expect(activities.waiting()).toBeGreaterThan(0);
  await runUntil(clock, () => sent.every((s) => s.settled));

  expect(sent.filter((s) => s.error !== undefined)).toEqual([]);
  for (const [i, a] of alerts.entries()) {
    const message = messageOf(tg, sent[i]!.value?.messageId);
    expect(message.plainText).toContain(a.ref);
    expect(message.plainText).toContain(a.name);
    expect(message.plainText).toContain(`+${a.phone}`);
  }
  expect(tg.state.tooManyRequests).toEqual([]);
  expect(tg.state.messages.length).toBeLessThan(120);
  expect(busiestMinute(postedTimes(tg))).toBeLessThanOrEqual(20);
  expect(activities.waiting()).toBe(0);
});

test('a steady stream for three minutes stays within 20 messages a minute and names every lead', async () => {
  const { clock, tg, activities } = setup();
  const sent: Array<{ alert: SellerAlert; t: ReturnType<typeof tracked<{ messageId: number }>> }> = [];
  for (let i = 0; i < 360; i++) {
    const alert = lead();
    sent.push({ alert, t: tracked(activities.notifySellers(alert)) });
    await clock.advance(500);
  }
  await runUntil(clock, () => sent.every((s) => s.t.settled));
  for (const { alert, t } of sent) expect(messageOf(tg, t.value?.messageId).plainText).toContain(alert.ref);
  expect(tg.state.tooManyRequests).toEqual([]);
  expect(tg.state.messages.length).toBeGreaterThan(40);
  expect(busiestMinute(postedTimes(tg))).toBeLessThanOrEqual(20);
});

test('manual-handling and service alerts go before new-lead alerts queued earlier, with buttons per lead', async () => {
  const { clock, tg, activities } = setup();
  // Wide entries, so a digest holds only a few of them and the queue lasts several messages.
  const wide = () =>
    lead({ name: 'Я'.repeat(100), city: 'Г'.repeat(60), partner: 'П'.repeat(100), site: 'с'.repeat(100) });
  const early = Array.from({ length: 40 }, () => tracked(activities.notifySellers(wide())));
  await clock.advance(10);
  const manual = [
    lead({ kind: 'manual_handling', reason: 'sms_failed: нет денег', actions: true }),
    lead({ kind: 'manual_handling', reason: 'crm_unavailable: 503', actions: true }),
  ];
  const urgent = manual.map((m) => tracked(activities.notifySellers(m)));
  const service = tracked(activities.notifySellersChat('🚫 <b>SMS клиентам не отправляются</b>'));
  await runUntil(clock, () => [...early, ...urgent, service].every((s) => s.settled));

  const ids = urgent.map((u) => u.value!.messageId);
  expect(new Set(ids).size).toBe(1);
  expect(service.value!.messageId).toBe(ids[0]);
  // Only the message already on its way when they arrived went before them.
  const before = early.filter((e) => e.value!.messageId < ids[0]!);
  expect(new Set(before.map((e) => e.value!.messageId)).size).toBeLessThanOrEqual(1);
  expect(tg.state.messages.findIndex((m) => m.messageId === ids[0])).toBe(before.length > 0 ? 1 : 0);
  expect(early.filter((e) => e.value!.messageId > ids[0]!).length).toBeGreaterThan(20);

  const digest = messageOf(tg, ids[0]);
  expect(digest.plainText).toContain('sms_failed: нет денег');
  expect(digest.plainText).toContain('SMS клиентам не отправляются');
  // Within the digest too, the leads that need a person come first.
  const firstNew = digest.plainText.indexOf('Новая заявка');
  expect(firstNew).toBeGreaterThan(0);
  for (const m of manual) expect(digest.plainText.indexOf(m.ref)).toBeLessThan(firstNew);
  const data = (
    digest.replyMarkup as { inline_keyboard: Array<Array<{ callback_data: string }>> }
  ).inline_keyboard.map((row) => row.map((b) => b.callback_data));
  // One row per lead, signed for the lead and action api/telegramWebhook.ts will act on.
  expect(data.map((row) => row.map((d) => verifyCallbackData(cfg.callbackKey, d)))).toEqual(
    manual.map((m) => [
      { action: 'call_now', ref: m.ref },
      { action: 'handled', ref: m.ref },
      { action: 'cancel', ref: m.ref },
    ]),
  );
  expect(tg.state.tooManyRequests).toEqual([]);
});

test('a digest of leads with huge fields never exceeds 4096 characters and loses no lead', async () => {
  const { clock, tg, activities } = setup();
  const alerts = Array.from({ length: 30 }, (_, i) =>
    lead({
      kind: i % 3 === 0 ? 'manual_handling' : 'new_lead',
      name: `<${i}>`.repeat(2000),
      city: '&'.repeat(3000),
      reason: i % 3 === 0 ? '"'.repeat(9000) : undefined,
      actions: i % 3 === 0,
    }),
  );
  const sent = alerts.map((a) => tracked(activities.notifySellers(a)));
  await runUntil(clock, () => sent.every((s) => s.settled));
  expect(sent.filter((s) => s.error !== undefined)).toEqual([]);
  expect(tg.state.messages.length).toBeLessThan(30);
  // Telegram's limit counts the text after its HTML is parsed (the emulator's plainText).
  for (const m of tg.state.messages) expect(m.plainText.length).toBeLessThanOrEqual(TELEGRAM_MAX_MESSAGE);
  for (const [i, a] of alerts.entries())
    expect(messageOf(tg, sent[i]!.value?.messageId).plainText).toContain(a.ref);
});

test('a digest is filled up to what Telegram counts (the text after its HTML is parsed), not the HTML', async () => {
  const { clock, tg, activities } = setup();
  const first = tracked(activities.notifySellers(lead()));
  await runUntil(clock, () => first.settled);
  // Leads arriving while the chat's budget is spent go in digests.
  const alerts = Array.from({ length: 120 }, () => lead());
  const sent = alerts.map((a) => tracked(activities.notifySellers(a)));
  await runUntil(clock, () => sent.every((s) => s.settled));
  expect(sent.filter((s) => s.error !== undefined)).toEqual([]);
  const digests = tg.state.messages.slice(1);
  for (const m of digests) expect(m.plainText.length).toBeLessThanOrEqual(TELEGRAM_MAX_MESSAGE);
  // Every digest but the last is well filled (each entry keeps room for the CRM id an edit may add
  // later), and its HTML source may be longer than the limit, which Telegram does not count. Sized
  // by the HTML they held about a third fewer leads (2,820 characters of text each).
  for (const m of digests.slice(0, -1))
    expect(m.plainText.length).toBeGreaterThan(0.8 * TELEGRAM_MAX_MESSAGE);
  expect(Math.max(...digests.map((m) => m.text.length))).toBeGreaterThan(TELEGRAM_MAX_MESSAGE);
  for (const [i, a] of alerts.entries())
    expect(messageOf(tg, sent[i]!.value?.messageId).plainText).toContain(a.ref);
});

test('a 429 holds every sender for its retry_after and the alerts stay queued until they go', async () => {
  const { clock, tg, activities } = setup();
  tg.control.setMode('rate_limit', { times: 1, retryAfter: 60 });
  const alerts = Array.from({ length: 5 }, () => lead());
  const sent = alerts.map((a) => tracked(activities.notifySellers(a)));
  await runUntil(clock, () => sent.every((s) => s.settled));
  expect(sent.filter((s) => s.error !== undefined)).toEqual([]);
  expect(tg.state.tooManyRequests).toHaveLength(1);
  const refusedAt = tg.state.tooManyRequests[0]!.at.getTime();
  const next = tg.state.requests.filter((r) => r.at.getTime() > refusedAt || r.at.getTime() === refusedAt);
  // The refused request, then nothing for a minute.
  expect(next[1]!.at.getTime() - refusedAt).toBeGreaterThanOrEqual(60_000);
  for (const [i, a] of alerts.entries())
    expect(messageOf(tg, sent[i]!.value?.messageId).plainText).toContain(a.ref);
});

test('an alert whose activity is cancelled while queued leaves the queue; it heartbeats once its wait has lasted', async () => {
  const { clock, tg, activities } = setup({ heartbeatMs: 5 });
  const first = tracked(activities.notifySellers(lead()));
  await runUntil(clock, () => first.settled);
  // The next message may go only a second after the first: these two wait. A heartbeat timeout of
  // 400 ms keeps the alert quiet for its first 100 ms of waiting.
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 400 });
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  const gone = lead();
  const cancelled = tracked(env.run(activities.notifySellers, gone));
  const after = tracked(activities.notifySellers(lead()));
  await clock.advance(0);
  await new Promise((resolve) => setTimeout(resolve, 50)); // ten of the outbox's heartbeat ticks
  expect(beats).toEqual([]);
  await clock.advance(200);
  while (beats.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  env.cancel();
  await runUntil(clock, () => cancelled.settled && after.settled);
  expect(cancelled.error).toBeInstanceOf(CancelledFailure);
  expect(tg.state.messages.some((m) => m.plainText.includes(gone.ref))).toBe(false);
  expect(messageOf(tg, after.value?.messageId)).toBeDefined();
  expect(activities.waiting()).toBe(0);
});

describe('the CRM id follows the alert', () => {
  test('merged into its alert while queued; the call resolves with that message', async () => {
    const { clock, tg, activities } = setup();
    const a = lead();
    const b = lead();
    const c = lead();
    const sent = [a, b, c].map((x) => tracked(activities.notifySellers(x)));
    const link = tracked(
      activities.notifySellersCrmLead({
        ref: b.ref,
        workflowId: b.workflowId,
        name: b.name,
        crmLeadId: 4711,
      }),
    );
    await runUntil(clock, () => [...sent, link].every((s) => s.settled));
    expect(link.value!.messageId).toBe(sent[1]!.value!.messageId);
    expect(messageOf(tg, sent[1]!.value?.messageId).plainText).toContain('CRM #4711');
    expect(tg.state.edits).toEqual([]);
  });

  test('edited into the sent message, several ids in one edit', async () => {
    const { clock, tg, activities } = setup();
    // One goes alone, the next two share a digest.
    const [a, b, c] = [lead(), lead(), lead()];
    const sent = [tracked(activities.notifySellers(a!))];
    await runUntil(clock, () => sent[0]!.settled);
    sent.push(tracked(activities.notifySellers(b!)), tracked(activities.notifySellers(c!)));
    await runUntil(clock, () => sent.every((s) => s.settled));
    expect(sent[0]!.value!.messageId).not.toBe(sent[1]!.value!.messageId);
    expect(sent[1]!.value!.messageId).toBe(sent[2]!.value!.messageId);
    const links = [
      tracked(
        activities.notifySellersCrmLead({
          ref: a!.ref,
          workflowId: a!.workflowId,
          name: a!.name,
          crmLeadId: 1,
        }),
      ),
      tracked(
        activities.notifySellersCrmLead({
          ref: b!.ref,
          workflowId: b!.workflowId,
          name: b!.name,
          crmLeadId: 22,
        }),
      ),
      tracked(
        activities.notifySellersCrmLead({
          ref: c!.ref,
          workflowId: c!.workflowId,
          name: c!.name,
          crmLeadId: 333,
        }),
      ),
    ];
    await runUntil(clock, () => links.every((s) => s.settled));
    expect(links.map((l) => l.value!.messageId)).toEqual(sent.map((s) => s.value!.messageId));
    expect(tg.state.edits.map((e) => e.messageId).sort()).toEqual(
      [sent[0]!.value!.messageId, sent[1]!.value!.messageId].sort(),
    );
    expect(messageOf(tg, sent[0]!.value?.messageId).plainText).toContain('Лид в CRM: #1');
    const digest = messageOf(tg, sent[1]!.value?.messageId).plainText;
    expect(digest).toContain('CRM #22');
    expect(digest).toContain('CRM #333');
    expect(tg.state.messages).toHaveLength(2);
    expect(tg.state.tooManyRequests).toEqual([]);
    // Told again (a retried activity), nothing more is sent.
    await activities.notifySellersCrmLead({
      ref: a!.ref,
      workflowId: a!.workflowId,
      name: a!.name,
      crmLeadId: 1,
    });
    expect(tg.state.edits).toHaveLength(2);
  });

  test('a lead this process did not alert gets a line of its own', async () => {
    const { clock, tg, activities } = setup();
    const link = tracked(
      activities.notifySellersCrmLead({
        ref: 'elsewhere',
        workflowId: 'lead-elsewhere',
        name: 'Ольга',
        crmLeadId: 99,
        partner: 'p1',
      }),
    );
    await runUntil(clock, () => link.settled);
    const m = messageOf(tg, link.value?.messageId);
    expect(m.plainText).toContain('Лид в CRM #99');
    expect(m.plainText).toContain('Ольга');
    expect(m.plainText).toContain('elsewhere');
  });

  test('a retried call for the same id waits for the same line; a cancelled one leaves it', async () => {
    const { clock, tg, activities } = setup();
    const first = tracked(activities.notifySellers(lead()));
    await runUntil(clock, () => first.settled);
    const link = { ref: 'r-retry', workflowId: 'lead-r-retry', name: 'Пётр', crmLeadId: 777 };
    const env = new MockActivityEnvironment();
    const cancelled = tracked(env.run(activities.notifySellersCrmLead, link));
    const retried = tracked(activities.notifySellersCrmLead(link));
    await clock.advance(0);
    env.cancel();
    await runUntil(clock, () => cancelled.settled && retried.settled);
    expect(cancelled.error).toBeInstanceOf(CancelledFailure);
    expect(messageOf(tg, retried.value?.messageId).plainText).toContain('Лид в CRM #777');
    expect(tg.state.messages.filter((m) => m.plainText.includes('#777'))).toHaveLength(1);
  });

  test('while alerts keep coming, a waiting id rides in the next digest instead of an edit', async () => {
    const { clock, tg, activities } = setup({ editPatienceMs: 5_000 });
    const a = lead();
    const first = tracked(activities.notifySellers(a));
    await runUntil(clock, () => first.settled);
    const link = tracked(
      activities.notifySellersCrmLead({ ref: a.ref, workflowId: a.workflowId, name: a.name, crmLeadId: 555 }),
    );
    const stream: Array<ReturnType<typeof tracked<{ messageId: number }>>> = [];
    for (let i = 0; i < 40; i++) {
      stream.push(tracked(activities.notifySellers(lead())));
      await clock.advance(500);
    }
    await runUntil(clock, () => link.settled && stream.every((s) => s.settled));
    expect(tg.state.edits).toEqual([]);
    const carrier = messageOf(tg, link.value?.messageId);
    expect(carrier.messageId).not.toBe(first.value!.messageId);
    expect(carrier.plainText).toContain('Лид в CRM #555');
    expect(stream.some((s) => s.value!.messageId === carrier.messageId)).toBe(true);
  });
});

test('two processes sharing DATA_DIR stay within the limit together', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tg-outbox-'));
  try {
    const clock = new VirtualClock();
    const tg = createTelegramEmulator({ clock });
    // The budget lives in a file: virtual time moves only while no take() is reading or writing
    // it (each is then asleep on the clock), as real time would not jump during a file write.
    let inLimit = 0;
    const counted = (limit: SharedLimit): SharedLimit => ({
      take: async () => {
        inLimit += 1;
        try {
          return await limit.take();
        } finally {
          inLimit -= 1;
        }
      },
      holdUntil: async (ms) => {
        inLimit += 1;
        try {
          await limit.holdUntil(ms);
        } finally {
          inLimit -= 1;
        }
      },
      waiting: () => limit.waiting(),
    });
    const outboxes = [0, 1].map(() =>
      createTelegramActivities(cfg, {
        http: inProcess(tg),
        clock,
        limit: counted(
          openSharedLimitUncached({
            name: telegramLimitName(cfg.chatId),
            dir,
            policy: telegramLimitPolicy(cfg.messagesPerMinute),
            clock,
          }),
        ),
      }),
    );
    const realTick = () => new Promise((resolve) => setTimeout(resolve, 1));
    const step = async () => {
      while (inLimit > clock.pending().length) await realTick();
      await clock.advance(10);
    };
    const sent: Array<{ alert: SellerAlert; t: ReturnType<typeof tracked<{ messageId: number }>> }> = [];
    for (let i = 0; i < 100; i++) {
      for (const o of outboxes) {
        const alert = lead();
        sent.push({ alert, t: tracked(o.notifySellers(alert)) });
      }
      for (let k = 0; k < 100; k++) await step();
    }
    const until = clock.now() + 10 * 60_000;
    while (!sent.every((s) => s.t.settled) && clock.now() < until) await step();
    for (const { alert, t } of sent) expect(messageOf(tg, t.value?.messageId).plainText).toContain(alert.ref);
    expect(tg.state.tooManyRequests).toEqual([]);
    expect(tg.state.messages.length).toBeGreaterThan(25);
    expect(busiestMinute(postedTimes(tg))).toBeLessThanOrEqual(20);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the outbox reports the alerts waiting and the time from intake to each new-lead alert', async () => {
  const clock = new VirtualClock();
  const tg = createTelegramEmulator({ clock });
  let waiting = 0;
  let most = 0;
  const observed: number[] = [];
  const metrics = {
    alertsWaiting: {
      inc: () => void (most = Math.max(most, ++waiting)),
      dec: () => void waiting--,
    },
    intakeToAlert: { observe: (s: number) => void observed.push(s) },
  };
  const limit = openSharedLimitUncached({
    name: telegramLimitName(cfg.chatId),
    policy: telegramLimitPolicy(cfg.messagesPerMinute),
    clock,
  });
  const activities = createTelegramActivities(cfg, { http: inProcess(tg), clock, limit, metrics });
  const receivedAt = clock.now() - 2_000;
  const first = tracked(activities.notifySellers(lead({ receivedAt })));
  await runUntil(clock, () => first.settled);
  const rest = [
    tracked(activities.notifySellers(lead({ receivedAt }))),
    tracked(activities.notifySellers(lead({ kind: 'manual_handling', receivedAt }))),
    tracked(activities.notifySellersChat('служебное')),
  ];
  expect(waiting).toBe(3);
  await runUntil(clock, () => rest.every((s) => s.settled));
  expect(most).toBe(3);
  expect(waiting).toBe(0);
  // Only new-lead alerts are measured; the second waited for the first message's gap.
  expect(observed).toHaveLength(2);
  expect(observed[0]).toBe(2);
  expect(observed[1]).toBeGreaterThan(3);
});

describe('the emulator enforces Telegram flood limits', () => {
  const send = (tg: TelegramEmulator, text: string) =>
    tg.invoke(`/bot${EMULATOR_CREDENTIALS.telegramBotToken}/sendMessage`, {
      chat_id: EMULATOR_CREDENTIALS.telegramChatId,
      text,
    });

  test('about a second between messages, 20 a minute to a group, edits counted, retry_after telling when', async () => {
    const clock = new VirtualClock();
    const tg = createTelegramEmulator({ clock });
    expect(send(tg, 'a').status).toBe(200);
    const tooSoon = send(tg, 'b');
    expect(tooSoon).toEqual({
      status: 429,
      body: {
        ok: false,
        error_code: 429,
        description: 'Too Many Requests: retry after 1',
        parameters: { retry_after: 1 },
      },
    });
    await clock.advance(1000);
    const edit = tg.invoke(`/bot${EMULATOR_CREDENTIALS.telegramBotToken}/editMessageText`, {
      chat_id: EMULATOR_CREDENTIALS.telegramChatId,
      message_id: 1,
      text: 'a, edited',
    });
    expect(edit.status).toBe(200);
    expect(tg.state.messages[0]).toMatchObject({ plainText: 'a, edited', edits: 1 });
    for (let i = 0; i < 18; i++) {
      await clock.advance(1000);
      expect(send(tg, `m${i}`).status).toBe(200);
    }
    // 20 in the last 19 seconds: the next may go when the first is a minute old.
    await clock.advance(1000);
    const full = send(tg, 'over');
    expect(full.status).toBe(429);
    expect(full.body.parameters).toEqual({ retry_after: 40 });
    expect(tg.state.tooManyRequests.map((r) => r.cause)).toEqual(['limit', 'limit']);
    await clock.advance(40_000);
    expect(send(tg, 'now').status).toBe(200);
  });

  test('a test that needs an instant provider can turn the limits off', () => {
    const tg = createTelegramEmulator({ rateLimits: false });
    for (let i = 0; i < 30; i++) expect(send(tg, `m${i}`).status).toBe(200);
    tg.control.setRateLimits({});
    expect(send(tg, 'limited again').status).toBe(429);
    expect(tg.state.tooManyRequests).toHaveLength(1);
  });
});
