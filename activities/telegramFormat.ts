// How seller alerts read in Telegram (HTML parse mode). Lead fields come from a public web form, so
// every one is HTML-escaped: an unescaped `<` would make Telegram reject the whole alert ("can't
// parse entities") and the sellers would see nothing.
//
// Telegram lets a bot post only 20 messages a minute to a group, so a burst of leads is told in
// digests; each lead still gets its own entry with everything a seller acts on (name, phone, city,
// partner, site, amount, CRM id, ref), and a lead that needs a person keeps its buttons, one
// numbered row per lead.
import { signCallbackData } from '../domain/telegramCallback';

export interface SellerAlert {
  kind: 'new_lead' | 'manual_handling';
  ref: string;
  workflowId: string;
  name: string;
  phone: string;
  city?: string;
  partner?: string;
  site?: string;
  orderAmount?: number;
  crmLeadId?: number;
  reason?: string;
  webUiUrl?: string;
  /** when the lead was accepted (epoch ms): measures intake to alert */
  receivedAt?: number;
  /** add inline buttons call_now/handled/cancel with signed callback_data (domain/telegramCallback.ts) */
  actions?: boolean;
}

const TITLES: Record<SellerAlert['kind'], string> = {
  new_lead: '🆕 <b>Новая заявка</b>',
  manual_handling: '⚠️ <b>Нужна ручная обработка</b>',
};

const BUTTONS = [
  { action: 'call_now', text: '📞 Позвонить сейчас' },
  { action: 'handled', text: '✅ Обработано' },
  { action: 'cancel', text: '✖️ Отменить' },
] as const;

// Per-field budgets of escaped characters: together with the fixed text they stay under the
// 4096-character message limit whatever the fields contain.
const LIMIT = {
  name: 200,
  phone: 40,
  city: 120,
  partner: 200,
  site: 200,
  ref: 120,
  wf: 200,
  url: 600,
  reason: 1500,
};
export const TELEGRAM_MAX_MESSAGE = 4096;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

/** Escapes for Telegram HTML and cuts to `max` escaped characters without splitting an entity. */
export function escapeHtml(value: string, max = Number.POSITIVE_INFINITY): string {
  const escape = (ch: string) => ESCAPES[ch] ?? ch;
  const full = value.replace(/[&<>"]/g, escape);
  if (full.length <= max) return full;
  let out = '';
  for (const ch of value) {
    const piece = escape(ch);
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return `${out}…`;
}

export function formatSellerAlert(alert: SellerAlert): string {
  const lines: string[] = [TITLES[alert.kind], ''];
  const field = (label: string, value: string | undefined, max: number) => {
    if (value !== undefined && value.trim() !== '') lines.push(`${label}: ${escapeHtml(value.trim(), max)}`);
  };
  field('👤 Имя', alert.name, LIMIT.name);
  const digits = alert.phone.replace(/\D/g, '');
  lines.push(
    `📞 Телефон: ${digits ? `+${digits.slice(0, LIMIT.phone)}` : escapeHtml(alert.phone, LIMIT.phone)}`,
  );
  field('🏙 Город', alert.city, LIMIT.city);
  field('🤝 Партнёр', alert.partner, LIMIT.partner);
  field('🌐 Сайт', alert.site, LIMIT.site);
  if (alert.orderAmount !== undefined && Number.isFinite(alert.orderAmount)) {
    lines.push(`💰 Сумма заказа: ${new Intl.NumberFormat('ru-RU').format(alert.orderAmount)} ₽`);
  }
  if (alert.crmLeadId !== undefined) lines.push(`📋 Лид в CRM: #${Math.trunc(alert.crmLeadId)}`);
  if (alert.reason !== undefined && alert.reason.trim() !== '') {
    lines.push('', `❗ Причина: ${escapeHtml(alert.reason.trim(), LIMIT.reason)}`);
  }
  lines.push('', `🔖 Заявка: <code>${escapeHtml(alert.ref, LIMIT.ref)}</code>`);
  const wf = escapeHtml(alert.workflowId, LIMIT.wf);
  // A link only to a web page, and only whole: a cut URL would lead nowhere.
  const href = alert.webUiUrl && /^https?:\/\//i.test(alert.webUiUrl) ? escapeHtml(alert.webUiUrl) : '';
  lines.push(
    href && href.length <= LIMIT.url
      ? `⚙️ Процесс: <a href="${href}">${wf}</a>`
      : `⚙️ Процесс: <code>${wf}</code>`,
  );
  return lines.join('\n');
}

export interface InlineKeyboard {
  inline_keyboard: Array<Array<{ text: string; callback_data: string }>>;
}

/** The buttons under a lead's alert, signed with `key`; none when the ref is too long for them. */
export function sellerAlertKeyboard(ref: string, key: Buffer): InlineKeyboard | undefined {
  const data = BUTTONS.map((b) => signCallbackData(key, b.action, ref));
  // A ref too long for callback_data would make Telegram reject the whole message.
  if (data.some((d) => d === undefined)) return undefined;
  const [callNow, handled, cancel] = BUTTONS.map((b, i) => ({ text: b.text, callback_data: data[i]! }));
  return { inline_keyboard: [[callNow!, handled!], [cancel!]] };
}

/** One piece of a digest: a lead's alert, a service message, or a lead's CRM id told later. */
export type DigestPart =
  | { type: 'alert'; alert: SellerAlert }
  | { type: 'chat'; html: string }
  | { type: 'link'; name: string; ref: string; crmLeadId: number; partner?: string };

/** Inline keyboards hold up to 100 buttons; a lead's row has three. */
export const MAX_BUTTON_ROWS = 33;

// Budgets of escaped characters per field in a digest entry: a lead's entry stays a few hundred
// characters, so a digest carries a dozen or more leads, and no field can crowd out the others.
const DIGEST_LIMIT = {
  name: 100,
  phone: 40,
  city: 60,
  partner: 100,
  site: 100,
  ref: 120,
  reason: 400,
  url: 600,
};
/** Room kept for a CRM id that may be edited in later: the widest id a Bitrix24 lead has. */
const CRM_ID_PLACEHOLDER = 9_999_999_999;

const DIGEST_TITLE = '📬 <b>Сводка заявок</b>';

function amount(value: number): string {
  return `${new Intl.NumberFormat('ru-RU').format(value)} ₽`;
}

function phoneOf(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits ? `+${digits.slice(0, DIGEST_LIMIT.phone)}` : escapeHtml(phone, DIGEST_LIMIT.phone);
}

/** A lead's entry: `n` numbers it for its row of buttons. */
export function formatDigestEntry(alert: SellerAlert, n: number, reserveCrmId = false): string {
  const title = alert.kind === 'manual_handling' ? '⚠️ Нужна ручная обработка' : '🆕 Новая заявка';
  const fields: string[] = [`📞 ${phoneOf(alert.phone)}`];
  const field = (icon: string, value: string | undefined, max: number) => {
    if (value !== undefined && value.trim() !== '') fields.push(`${icon} ${escapeHtml(value.trim(), max)}`);
  };
  field('🏙', alert.city, DIGEST_LIMIT.city);
  field('🤝', alert.partner, DIGEST_LIMIT.partner);
  field('🌐', alert.site, DIGEST_LIMIT.site);
  if (alert.orderAmount !== undefined && Number.isFinite(alert.orderAmount)) {
    fields.push(`💰 ${amount(alert.orderAmount)}`);
  }
  const crmId = alert.crmLeadId ?? (reserveCrmId ? CRM_ID_PLACEHOLDER : undefined);
  if (crmId !== undefined) fields.push(`📋 CRM #${Math.trunc(crmId)}`);
  const name = alert.name.trim() === '' ? '—' : escapeHtml(alert.name.trim(), DIGEST_LIMIT.name);
  const lines = [`<b>${n}.</b> ${title}: <b>${name}</b>`, fields.join(' · ')];
  if (alert.reason !== undefined && alert.reason.trim() !== '') {
    lines.push(`❗ ${escapeHtml(alert.reason.trim(), DIGEST_LIMIT.reason)}`);
  }
  const ref = `🔖 <code>${escapeHtml(alert.ref, DIGEST_LIMIT.ref)}</code>`;
  const href = alert.webUiUrl && /^https?:\/\//i.test(alert.webUiUrl) ? escapeHtml(alert.webUiUrl) : '';
  // The workflow's page only where a person has to act, and only whole.
  lines.push(
    alert.kind === 'manual_handling' && href && href.length <= DIGEST_LIMIT.url
      ? `${ref} · <a href="${href}">процесс</a>`
      : ref,
  );
  return lines.join('\n');
}

export function formatLinkLine(part: Extract<DigestPart, { type: 'link' }>): string {
  const partner = part.partner?.trim()
    ? ` · 🤝 ${escapeHtml(part.partner.trim(), DIGEST_LIMIT.partner)}`
    : '';
  const name = part.name.trim() === '' ? '—' : escapeHtml(part.name.trim(), DIGEST_LIMIT.name);
  return `📋 Лид в CRM #${Math.trunc(part.crmLeadId)}: <b>${name}</b>${partner} · 🔖 <code>${escapeHtml(part.ref, DIGEST_LIMIT.ref)}</code>`;
}

/**
 * The digest's HTML and buttons (signed with `key`). `reserveCrmIds` sizes it as if every lead
 * without a CRM id had one, so an edit adding the ids later cannot push it past Telegram's limit.
 */
export function renderDigest(
  parts: DigestPart[],
  key: Buffer,
  reserveCrmIds = false,
): { text: string; keyboard?: InlineKeyboard } {
  const blocks: string[] = [DIGEST_TITLE];
  const links: string[] = [];
  const rows: InlineKeyboard['inline_keyboard'] = [];
  let n = 0;
  for (const part of parts) {
    if (part.type === 'chat') blocks.push(part.html);
    else if (part.type === 'link') links.push(formatLinkLine(part));
    else {
      n += 1;
      const reserve = reserveCrmIds && part.alert.kind === 'new_lead';
      blocks.push(formatDigestEntry(part.alert, n, reserve));
      const keyboard = part.alert.actions ? sellerAlertKeyboard(part.alert.ref, key) : undefined;
      if (keyboard) {
        const buttons = keyboard.inline_keyboard.flat();
        rows.push(
          buttons.map((b) => ({ text: `${b.text.split(' ')[0]} ${n}`, callback_data: b.callback_data })),
        );
      }
    }
  }
  if (links.length > 0) blocks.push(links.join('\n'));
  return { text: blocks.join('\n\n'), ...(rows.length > 0 ? { keyboard: { inline_keyboard: rows } } : {}) };
}

/**
 * The length Telegram holds against its 4096-character limit: the text after its HTML is parsed
 * (tags gone, each entity one character), in UTF-16 code units like a JS string. Our HTML has only
 * the tags and the four entities `escapeHtml` writes.
 */
export function telegramTextLength(html: string): number {
  return html.replace(/<[^>]*>/g, '').replace(/&(?:amp|lt|gt|quot);/g, '&').length;
}

/** Whether `parts` fit one message (text and buttons), sized for the CRM ids still to come. */
export function digestFits(parts: DigestPart[], key: Buffer): boolean {
  const { text, keyboard } = renderDigest(parts, key, true);
  return (
    telegramTextLength(text) <= TELEGRAM_MAX_MESSAGE &&
    (keyboard?.inline_keyboard.length ?? 0) <= MAX_BUTTON_ROWS
  );
}
