// The callback_data of the sellers' buttons is chosen by whoever presses: a modified Telegram client
// can send any bytes under any message of the bot. So each button carries a MAC of its action and
// ref, and a press is taken only for an action and a lead the bot itself put under a message.
import crypto from 'node:crypto';
import { safeEqual } from './safeEqual';

export const BUTTON_ACTIONS = ['call_now', 'handled', 'cancel'] as const;
export type ButtonAction = (typeof BUTTON_ACTIONS)[number];

/** Telegram's limit for callback_data, in bytes. */
export const MAX_CALLBACK_DATA = 64;
/** 12 base64url characters: 72 bits, far beyond guessing through a rate-limited chat. */
const MAC_CHARS = 12;
const KEY_LABEL = 'speed-to-lead/telegram-callback-data/v1';

/**
 * The buttons' key, derived from VOXIMPLANT_RESULT_SECRET. The workers that build the buttons and
 * the API that checks them may run on different hosts, so the key must come from a secret every
 * process is given: production refuses to start without VOXIMPLANT_RESULT_SECRET for that very
 * reason (and a development host generates it once into DATA_DIR for all its processes). The bot
 * token is shared too, but outside production it is the emulator's public constant, it travels in
 * every request URL to Telegram, and it belongs to Telegram, not to us. An HMAC under a fixed label
 * keeps this key apart from the call-report tokens signed with the secret itself: a MAC made for
 * one can never pass as the other.
 */
export function telegramCallbackKey(sharedSecret: string): Buffer {
  return crypto.createHmac('sha256', sharedSecret).update(KEY_LABEL).digest();
}

function macOf(key: Buffer, signed: string): string {
  return crypto.createHmac('sha256', key).update(signed, 'utf8').digest('base64url').slice(0, MAC_CHARS);
}

/**
 * `${action}:${ref}:${mac}`, or undefined when it would not fit Telegram's 64 bytes (Telegram would
 * then refuse the whole message). The action has no `:` and the MAC is base64url, so a ref may hold
 * any character, `:` included.
 */
export function signCallbackData(key: Buffer, action: ButtonAction, ref: string): string | undefined {
  if (ref === '') return undefined;
  const signed = `${action}:${ref}`;
  const data = `${signed}:${macOf(key, signed)}`;
  return Buffer.byteLength(data, 'utf8') <= MAX_CALLBACK_DATA ? data : undefined;
}

/** The action and ref of callback_data this key signed; undefined for anything else. */
export function verifyCallbackData(
  key: Buffer,
  data: string,
): { action: ButtonAction; ref: string } | undefined {
  if (Buffer.byteLength(data, 'utf8') > MAX_CALLBACK_DATA) return undefined;
  const last = data.lastIndexOf(':');
  const first = data.indexOf(':');
  if (first <= 0 || last <= first + 1) return undefined;
  const signed = data.slice(0, last);
  if (!safeEqual(data.slice(last + 1), macOf(key, signed))) return undefined;
  const action = BUTTON_ACTIONS.find((a) => a === data.slice(0, first));
  return action ? { action, ref: data.slice(first + 1, last) } : undefined;
}
