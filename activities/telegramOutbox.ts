// One queue per worker process for everything the sellers' chat is told. Telegram takes 20
// messages a minute to a group, for all the bot's processes together, so a message goes only when
// the limit shared through DATA_DIR lets it; whatever waits by then goes in that one message (a
// digest naming every lead), service notices and leads that need a person first. A caller's
// promise settles when its text has been delivered, in whichever message. A 429 holds the shared
// limit for its retry_after and the items stay queued; nothing is dropped.
import { asyncLocalStorage, type Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import { systemClock, type Clock } from '../support/clock';
import { logger } from '../support/logger';
import { keepAlive } from './keepAlive';
import type { SharedLimit } from '../support/sharedLimit';
import {
  digestFits,
  formatSellerAlert,
  renderDigest,
  sellerAlertKeyboard,
  type DigestPart,
  type InlineKeyboard,
  type SellerAlert,
} from './telegramFormat';

export type SendOutcome =
  | { kind: 'sent'; messageId: number }
  | { kind: 'rate_limited'; retryAfterS: number }
  /** `aboutContent`: Telegram refused this text or markup (400), not the chat or the bot */
  | { kind: 'refused'; failure: unknown; aboutContent: boolean };

export interface OutboxTransport {
  send(text: string, keyboard: InlineKeyboard | undefined): Promise<SendOutcome>;
  edit(messageId: number, text: string, keyboard: InlineKeyboard | undefined): Promise<SendOutcome>;
}

export interface OutboxMetrics {
  alertsWaiting?: { inc(value?: number): void; dec(value?: number): void };
  intakeToAlert?: { observe(value: number): void };
}

export interface CrmLeadLink {
  ref: string;
  workflowId: string;
  name: string;
  crmLeadId: number;
  partner?: string;
  receivedAt?: number;
}

export interface Delivered {
  messageId: number;
}

export interface OutboxOptions {
  transport: OutboxTransport;
  /** signs the buttons' callback_data (domain/telegramCallback.ts) */
  callbackKey: Buffer;
  limit: SharedLimit;
  clock?: Clock;
  metrics?: OutboxMetrics;
  /**
   * How long a CRM id waits for a slot no alert needs, to be edited into its alert, before it
   * rides in the next digest as a line of its own.
   */
  editPatienceMs?: number;
  /** How long this process edits a sent alert to add its CRM id. */
  editWindowMs?: number;
  /** How often a queued item heartbeats its activity (which is how a cancellation reaches it). */
  heartbeatMs?: number;
}

interface Waiter {
  resolve(value: Delivered): void;
  reject(err: unknown): void;
  ctx?: Context;
  stop(): void;
}

interface Item {
  seq: number;
  /**
   * Its place in line: when the workflow first scheduled the activity, so an alert whose attempt
   * timed out in the queue keeps its place when Temporal retries it.
   */
  order: number;
  part: DigestPart;
  /** a CRM link's lead */
  workflowId?: string;
  /** a CRM link to edit into this sent message */
  target?: SentMessage;
  since: number;
  owner: Waiter;
  /** CRM-link callers whose id was merged into this alert */
  extras: Waiter[];
  inFlight: boolean;
  /** its activity was cancelled while it was on its way */
  cancelled: boolean;
  /** a digest holding it was refused: it goes in a message of its own */
  alone: boolean;
  afterFlight: Array<() => void>;
}

interface SentMessage {
  messageId: number;
  parts: DigestPart[];
  single: boolean;
  keyboard?: InlineKeyboard;
  sentAt: number;
}

type Batch =
  | { kind: 'single'; items: Item[] }
  | { kind: 'digest'; items: Item[] }
  | { kind: 'edit'; items: Item[]; target: SentMessage };

const REMEMBERED_MESSAGES = 2000;

export function createOutbox(opts: OutboxOptions) {
  const clock = opts.clock ?? systemClock;
  const editPatienceMs = opts.editPatienceMs ?? 15_000;
  const editWindowMs = opts.editWindowMs ?? 3_600_000;
  const heartbeatMs = opts.heartbeatMs ?? 5_000;
  const queue: Item[] = [];
  /** The message holding each lead's new-lead alert, by workflow id, oldest first. */
  const sentByWorkflow = new Map<string, SentMessage>();
  let seq = 0;
  let running = false;
  const log = logger.child({ component: 'telegramOutbox' });

  const isAlert = (item: Item) => item.part.type !== 'link';
  const rank = (item: Item) =>
    item.part.type === 'chat' || (item.part.type === 'alert' && item.part.alert.kind === 'manual_handling')
      ? 0
      : item.part.type === 'alert'
        ? 1
        : 2;

  function waiter(
    resolve: (value: Delivered) => void,
    reject: (err: unknown) => void,
    ctx: Context | undefined,
    onCancel: (w: Waiter) => void,
  ): Waiter {
    let timer: ReturnType<typeof setInterval> | undefined;
    const abort = () => onCancel(w);
    const w: Waiter = {
      ctx,
      stop() {
        if (timer) clearInterval(timer);
        ctx?.cancellationSignal.removeEventListener('abort', abort);
      },
      resolve(value) {
        w.stop();
        resolve(value);
      },
      reject(err) {
        w.stop();
        reject(err);
      },
    };
    if (ctx) {
      keepAlive(ctx, undefined, clock.now());
      timer = setInterval(() => keepAlive(ctx, undefined, clock.now()), heartbeatMs);
      timer.unref();
      ctx.cancellationSignal.addEventListener('abort', abort);
    }
    return w;
  }

  function remove(item: Item): void {
    const i = queue.indexOf(item);
    if (i < 0) return;
    queue.splice(i, 1);
    if (isAlert(item)) opts.metrics?.alertsWaiting?.dec();
  }

  function add(part: DigestPart, ctx: Context | undefined, extra: Partial<Item> = {}): Promise<Delivered> {
    return new Promise<Delivered>((resolve, reject) => {
      const owner = waiter(resolve, reject, ctx, () => ownerCancelled(item));
      const item: Item = {
        seq: seq++,
        order: ctx?.info.scheduledTimestampMs ?? clock.now(),
        part,
        since: clock.now(),
        owner,
        extras: [],
        inFlight: false,
        cancelled: false,
        alone: false,
        afterFlight: [],
        ...extra,
      };
      queue.push(item);
      if (isAlert(item)) opts.metrics?.alertsWaiting?.inc();
      kick();
    });
  }

  function ownerCancelled(item: Item): void {
    if (item.inFlight) {
      item.cancelled = true;
      return;
    }
    if (!queue.includes(item)) return;
    const next = item.part.type === 'link' ? item.extras.shift() : undefined;
    if (next) {
      // Another call is waiting for the same CRM id (a retry): the line is still owed to it.
      item.owner.reject(new CancelledFailure('cancelled while waiting for Telegram'));
      item.owner = next;
      return;
    }
    remove(item);
    item.owner.reject(new CancelledFailure('cancelled while waiting for Telegram'));
    // The CRM ids merged into a cancelled alert are still owed to the sellers.
    if (item.part.type === 'alert' && item.part.alert.crmLeadId !== undefined) {
      for (const w of item.extras) {
        const a = item.part.alert;
        enqueueLink(
          { ref: a.ref, workflowId: a.workflowId, name: a.name, crmLeadId: a.crmLeadId!, partner: a.partner },
          w,
          undefined,
        );
      }
    }
  }

  function enqueueLink(link: CrmLeadLink, w: Waiter, target: SentMessage | undefined): void {
    const item: Item = {
      seq: seq++,
      order: w.ctx?.info.scheduledTimestampMs ?? clock.now(),
      part: {
        type: 'link',
        name: link.name,
        ref: link.ref,
        crmLeadId: link.crmLeadId,
        partner: link.partner,
      },
      workflowId: link.workflowId,
      target,
      since: clock.now(),
      owner: w,
      extras: [],
      inFlight: false,
      cancelled: false,
      alone: false,
      afterFlight: [],
    };
    queue.push(item);
    kick();
  }

  function placeLink(link: CrmLeadLink, w: Waiter): void {
    const queued = queue.find(
      (i) =>
        i.part.type === 'alert' &&
        i.part.alert.kind === 'new_lead' &&
        i.part.alert.workflowId === link.workflowId,
    );
    if (queued?.inFlight) {
      queued.afterFlight.push(() => placeLink(link, w));
      return;
    }
    if (queued && queued.part.type === 'alert') {
      queued.part.alert.crmLeadId = link.crmLeadId;
      queued.extras.push(w);
      return;
    }
    const same = queue.find(
      (i) =>
        !i.inFlight &&
        i.workflowId === link.workflowId &&
        i.part.type === 'link' &&
        i.part.crmLeadId === link.crmLeadId,
    );
    if (same) {
      same.extras.push(w);
      return;
    }
    const sent = sentByWorkflow.get(link.workflowId);
    if (sent && clock.now() - sent.sentAt < editWindowMs) {
      const shown = alertIn(sent, link.workflowId);
      if (shown?.crmLeadId === link.crmLeadId) {
        w.resolve({ messageId: sent.messageId });
        return;
      }
      enqueueLink(link, w, sent);
      return;
    }
    enqueueLink(link, w, undefined);
  }

  function linkCancelled(w: Waiter): void {
    for (const item of queue) {
      if (item.owner === w) {
        ownerCancelled(item);
        return;
      }
      if (!item.inFlight && item.extras.includes(w)) {
        item.extras.splice(item.extras.indexOf(w), 1);
        w.reject(new CancelledFailure('cancelled while waiting for Telegram'));
        return;
      }
    }
  }

  function kick(): void {
    if (running || queue.length === 0) return;
    running = true;
    // Outside the caller's activity context: one activity's cancellation must not abort a
    // message that carries other leads too.
    asyncLocalStorage.exit(() => void run());
  }

  async function run(): Promise<void> {
    try {
      while (queue.some((i) => !i.inFlight)) {
        // The chat's minimum gap counts from Telegram's answer to this message, not from now.
        const answered = await opts.limit.take();
        try {
          const batch = pick();
          if (batch) await deliver(batch);
        } finally {
          await answered();
        }
      }
    } catch (err) {
      // The shared limit could not be read (DATA_DIR unwritable?): try again shortly, not in a loop.
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'telegram outbox paused');
      await clock.sleep(1000).catch(() => undefined);
    } finally {
      running = false;
    }
    kick();
  }

  function pick(): Batch | undefined {
    const now = clock.now();
    const ready = queue
      .filter((i) => !i.inFlight)
      .sort((a, b) => rank(a) - rank(b) || a.order - b.order || a.seq - b.seq);
    const alerts = ready.filter(isAlert);
    const links = ready.filter((i) => !isAlert(i));
    const followUps = links.filter((l) => !l.target || now - l.since >= editPatienceMs);
    if (alerts.length > 0) {
      const first = alerts[0]!;
      if (first.alone || (alerts.length === 1 && followUps.length === 0))
        return { kind: 'single', items: [first] };
      const chosen = pack([...alerts.filter((a) => !a.alone), ...followUps]);
      // The first in line goes now, in a digest or (too big for one) alone.
      if (chosen[0] !== first || chosen.length === 1) return { kind: 'single', items: [first] };
      return { kind: 'digest', items: chosen };
    }
    const first = links[0];
    if (!first) return undefined;
    if (first.target) {
      const target = first.target;
      return { kind: 'edit', items: links.filter((l) => l.target === target), target };
    }
    return { kind: 'digest', items: pack(links.filter((l) => !l.target)) };
  }

  function pack(candidates: Item[]): Item[] {
    const chosen: Item[] = [];
    const parts: DigestPart[] = [];
    for (const item of candidates) {
      if (!digestFits([...parts, item.part], opts.callbackKey)) continue;
      chosen.push(item);
      parts.push(item.part);
    }
    return chosen;
  }

  function render(batch: Batch): { text: string; keyboard?: InlineKeyboard; parts: DigestPart[] } {
    if (batch.kind === 'edit') {
      const parts = batch.target.parts.map((p) => {
        if (p.type !== 'alert') return p;
        const link = batch.items.find((l) => l.workflowId === p.alert.workflowId && l.part.type === 'link');
        return link && link.part.type === 'link'
          ? { ...p, alert: { ...p.alert, crmLeadId: link.part.crmLeadId } }
          : p;
      });
      const only = parts[0];
      const text =
        batch.target.single && only?.type === 'alert'
          ? formatSellerAlert(only.alert)
          : renderDigest(parts, opts.callbackKey).text;
      return { text, keyboard: batch.target.keyboard, parts };
    }
    const parts = batch.items.map((i) => snapshot(i.part));
    const only = parts[0]!;
    if (batch.kind === 'single') {
      if (only.type === 'chat') return { text: only.html, parts };
      if (only.type === 'alert') {
        const keyboard = only.alert.actions
          ? sellerAlertKeyboard(only.alert.ref, opts.callbackKey)
          : undefined;
        if (only.alert.actions && !keyboard) log.warn({ ref: only.alert.ref }, 'ref too long for buttons');
        return { text: formatSellerAlert(only.alert), keyboard, parts };
      }
    }
    return { ...renderDigest(parts, opts.callbackKey), parts };
  }

  async function deliver(batch: Batch): Promise<void> {
    for (const item of batch.items) item.inFlight = true;
    const { text, keyboard, parts } = render(batch);
    let outcome: SendOutcome;
    try {
      outcome =
        batch.kind === 'edit'
          ? await opts.transport.edit(batch.target.messageId, text, keyboard)
          : await opts.transport.send(text, keyboard);
    } catch (err) {
      outcome = { kind: 'refused', failure: err, aboutContent: false };
    }
    for (const item of batch.items) item.inFlight = false;

    if (outcome.kind === 'sent') {
      const deliveredAt = clock.now();
      if (batch.kind === 'edit') batch.target.parts = parts;
      else
        remember({
          messageId: outcome.messageId,
          parts,
          single: batch.kind === 'single',
          keyboard,
          sentAt: deliveredAt,
        });
      for (const item of batch.items) {
        remove(item);
        if (item.part.type === 'alert' && item.part.alert.kind === 'new_lead' && item.part.alert.receivedAt) {
          opts.metrics?.intakeToAlert?.observe((deliveredAt - item.part.alert.receivedAt) / 1000);
        }
        for (const w of [item.owner, ...item.extras]) w.resolve({ messageId: outcome.messageId });
      }
      log.info({ messageId: outcome.messageId, items: batch.items.length, kind: batch.kind }, 'sellers told');
    } else if (outcome.kind === 'rate_limited') {
      log.warn({ retryAfter: outcome.retryAfterS }, 'telegram rate limit; holding the shared limit');
      await opts.limit.holdUntil(clock.now() + outcome.retryAfterS * 1000);
      for (const item of batch.items) if (item.cancelled) ownerCancelled(item);
    } else if (batch.kind === 'edit') {
      // The message cannot be edited (deleted, too old, chat moved): the id goes in a digest.
      log.warn({ messageId: batch.target.messageId }, 'could not edit the alert; CRM id follows in a digest');
      for (const item of batch.items) {
        item.target = undefined;
        if (item.cancelled) ownerCancelled(item);
      }
    } else if (batch.items.length > 1 && outcome.aboutContent) {
      log.error({ items: batch.items.length }, 'telegram refused a digest; sending its alerts one by one');
      for (const item of batch.items) {
        item.alone = true;
        if (item.cancelled) ownerCancelled(item);
      }
    } else {
      for (const item of batch.items) {
        remove(item);
        for (const w of [item.owner, ...item.extras]) w.reject(outcome.failure);
      }
    }
    for (const item of batch.items) {
      const then = item.afterFlight.splice(0);
      for (const f of then) f();
    }
  }

  function remember(message: SentMessage): void {
    for (const part of message.parts) {
      if (part.type !== 'alert' || part.alert.kind !== 'new_lead') continue;
      sentByWorkflow.delete(part.alert.workflowId);
      sentByWorkflow.set(part.alert.workflowId, message);
    }
    while (sentByWorkflow.size > REMEMBERED_MESSAGES)
      sentByWorkflow.delete(sentByWorkflow.keys().next().value!);
  }

  return {
    notify(alert: SellerAlert, ctx?: Context): Promise<Delivered> {
      return add({ type: 'alert', alert: { ...alert } }, ctx);
    },
    chat(html: string, ctx?: Context): Promise<Delivered> {
      return add({ type: 'chat', html }, ctx);
    },
    /** The lead's CRM id, merged into its alert if still queued, else edited into it, else told in a digest. */
    crmLead(link: CrmLeadLink, ctx?: Context): Promise<Delivered> {
      return new Promise<Delivered>((resolve, reject) => {
        const w: Waiter = waiter(resolve, reject, ctx, () => linkCancelled(w));
        placeLink(link, w);
        kick();
      });
    },
    /** Alerts queued in this process and not yet delivered. */
    waiting(): number {
      return queue.filter(isAlert).length;
    },
  };
}

function alertIn(message: SentMessage, workflowId: string): SellerAlert | undefined {
  for (const part of message.parts)
    if (part.type === 'alert' && part.alert.workflowId === workflowId) return part.alert;
  return undefined;
}

/** A copy as sent: a CRM id merged later must not change what the message record says was sent. */
function snapshot(part: DigestPart): DigestPart {
  return part.type === 'alert' ? { type: 'alert', alert: { ...part.alert } } : part;
}
