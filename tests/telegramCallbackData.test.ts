// The signed callback_data of the sellers' buttons: what a press may act on, within Telegram's 64
// bytes, and the setting that names who may press.
import { loadConfig } from '../config';
import { configProblems, tempDataDir } from './support/config';
import {
  BUTTON_ACTIONS,
  MAX_CALLBACK_DATA,
  signCallbackData,
  telegramCallbackKey,
  verifyCallbackData,
} from '../domain/telegramCallback';
import { renderDigest, sellerAlertKeyboard, type SellerAlert } from '../activities/telegramFormat';

const KEY = telegramCallbackKey('unit-test-result-secret-0123456789abcdef');
const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('signing and verifying', () => {
  test('a signed press gives back its action and ref, for every action and refs with any characters', () => {
    for (const action of BUTTON_ACTIONS) {
      for (const ref of ['79161234567', '203.0.113.7', 'order:42:b', 'заказ-№5', '🛒x', ' a b ']) {
        const data = signCallbackData(KEY, action, ref)!;
        expect(data).toMatch(/^[a-z_]+:.+:[A-Za-z0-9_-]{12}$/su);
        expect(verifyCallbackData(KEY, data)).toEqual({ action, ref });
      }
    }
  });

  test('another ref, another action, another key, a changed or missing MAC: nothing', () => {
    const data = signCallbackData(KEY, 'handled', '79161234567')!;
    const mac = data.slice(data.lastIndexOf(':') + 1);
    expect(mac).toHaveLength(12);
    const forged = [
      `handled:79161234568:${mac}`,
      `cancel:79161234567:${mac}`,
      `call_now:79161234567:${mac}`,
      `handled:79161234567`,
      `handled:79161234567:`,
      `handled:79161234567:${mac.slice(0, 11)}`,
      `handled:79161234567:${mac}A`,
      `handled:79161234567:${mac.toLowerCase() === mac ? mac.toUpperCase() : mac.toLowerCase()}`,
      // the ref moved into the MAC's place and back
      `handled:${mac}:79161234567`,
      `:79161234567:${mac}`,
      `delete:79161234567:${signCallbackData(KEY, 'handled', '79161234567')!.split(':')[2]}`,
      '',
      ':',
      '::',
    ];
    for (const f of forged)
      expect({ f, verified: verifyCallbackData(KEY, f) }).toEqual({ f, verified: undefined });
    const otherKey = telegramCallbackKey('another-result-secret-0123456789abcdef');
    expect(verifyCallbackData(otherKey, data)).toBeUndefined();
    // A MAC made under the other key for the same press does not pass under this one either.
    expect(verifyCallbackData(KEY, signCallbackData(otherKey, 'handled', '79161234567')!)).toBeUndefined();
  });

  test('the key is derived, not the secret itself, and the same on every process given that secret', () => {
    const secret = 'unit-test-result-secret-0123456789abcdef';
    expect(telegramCallbackKey(secret).equals(KEY)).toBe(true);
    expect(telegramCallbackKey(secret).length).toBe(32);
    expect(telegramCallbackKey(secret).equals(Buffer.from(secret))).toBe(false);
    // Signed with the secret itself (as call-report tokens are), a MAC does not verify.
    const underSecret = signCallbackData(Buffer.from(secret), 'cancel', 'r1')!;
    expect(verifyCallbackData(KEY, underSecret)).toBeUndefined();
  });
});

describe("Telegram's 64-byte bound", () => {
  test('callback_data never exceeds 64 bytes; a ref that cannot fit gets no buttons', () => {
    // "call_now" is the longest action: 8 + 2 colons + 12 of MAC leave 42 bytes of ref.
    const longest = 'r'.repeat(42);
    for (const action of BUTTON_ACTIONS)
      expect(bytes(signCallbackData(KEY, action, longest)!)).toBeLessThanOrEqual(64);
    expect(bytes(signCallbackData(KEY, 'call_now', longest)!)).toBe(MAX_CALLBACK_DATA);
    expect(signCallbackData(KEY, 'call_now', `${longest}r`)).toBeUndefined();
    expect(sellerAlertKeyboard(longest, KEY)).toBeDefined();
    // One button that cannot fit takes the others away: a lead gets all three or none.
    expect(signCallbackData(KEY, 'cancel', `${longest}r`)).toBeDefined();
    expect(sellerAlertKeyboard(`${longest}r`, KEY)).toBeUndefined();
  });

  test('multibyte refs are measured in bytes, not characters', () => {
    // Cyrillic letters take 2 bytes each, an emoji 4: 21 letters are 42 bytes, 22 are 44.
    expect(signCallbackData(KEY, 'call_now', 'ж'.repeat(21))).toBeDefined();
    expect(signCallbackData(KEY, 'call_now', 'ж'.repeat(22))).toBeUndefined();
    expect(signCallbackData(KEY, 'call_now', '🛒'.repeat(10))).toBeDefined();
    expect(signCallbackData(KEY, 'call_now', `${'🛒'.repeat(10)}ab`)).toBeDefined();
    expect(signCallbackData(KEY, 'call_now', `${'🛒'.repeat(10)}abc`)).toBeUndefined();
    for (const ref of ['ж'.repeat(21), '🛒'.repeat(10)]) {
      const keyboard = sellerAlertKeyboard(ref, KEY)!;
      for (const b of keyboard.inline_keyboard.flat()) {
        expect(bytes(b.callback_data)).toBeLessThanOrEqual(MAX_CALLBACK_DATA);
        expect(verifyCallbackData(KEY, b.callback_data)?.ref).toBe(ref);
      }
    }
    // Data longer than Telegram allows cannot have come from one of our buttons.
    expect(verifyCallbackData(KEY, `call_now:${'ж'.repeat(22)}:${'A'.repeat(12)}`)).toBeUndefined();
  });

  test('a digest signs each lead’s row for that lead; a lead whose ref cannot fit has no row', () => {
    const alert = (ref: string): SellerAlert => ({
      kind: 'manual_handling',
      ref,
      workflowId: `lead-${ref}`,
      name: 'Иван',
      phone: '79161234567',
      actions: true,
    });
    const refs = ['79161234567', 'ж'.repeat(30), 'order:7'];
    const { keyboard } = renderDigest(
      refs.map((ref) => ({ type: 'alert', alert: alert(ref) })),
      KEY,
    );
    const rows = keyboard!.inline_keyboard.map((row) =>
      row.map((b) => verifyCallbackData(KEY, b.callback_data)),
    );
    expect(rows).toEqual(
      ['79161234567', 'order:7'].map((ref) => BUTTON_ACTIONS.map((action) => ({ action, ref }))),
    );
    // The numbers on the buttons follow the entries, the skipped lead's number included.
    expect(keyboard!.inline_keyboard[1]![0]!.text).toMatch(/ 3$/);
  });
});

describe('TELEGRAM_OPERATOR_IDS', () => {
  const dataDir = tempDataDir;
  const problemsOf = (value: string): string[] => configProblems({ TELEGRAM_OPERATOR_IDS: value });

  test('comma-separated user ids; unset or blank: nobody is singled out', () => {
    const ids = (value?: string) =>
      loadConfig({ DATA_DIR: dataDir(), ...(value === undefined ? {} : { TELEGRAM_OPERATOR_IDS: value }) })
        .telegram.operatorIds;
    expect(ids('123456789, 5012345678 ,42')).toEqual([123456789, 5012345678, 42]);
    expect(ids()).toEqual([]);
    expect(ids('')).toEqual([]);
  });

  test('anything but positive integer ids stops the start, naming the setting and the culprit', () => {
    for (const bad of ['@seller_olga', '-1001234567890', '12.5', '0', '1e9', '99999999999999999', '42,abc']) {
      const problems = problemsOf(bad);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^TELEGRAM_OPERATOR_IDS: Telegram user ids .*not: /);
    }
  });

  test('the buttons’ key comes from VOXIMPLANT_RESULT_SECRET: the same on every host given it', () => {
    const secret = 'shared-result-secret-0123456789abcdef';
    const a = loadConfig({ DATA_DIR: dataDir(), VOXIMPLANT_RESULT_SECRET: secret });
    const b = loadConfig({ DATA_DIR: dataDir(), VOXIMPLANT_RESULT_SECRET: secret });
    expect(a.telegram.callbackKey.equals(b.telegram.callbackKey)).toBe(true);
    expect(a.telegram.callbackKey.equals(telegramCallbackKey(secret))).toBe(true);
    // Without it, a host generates one into DATA_DIR: all its processes share it.
    const dir = dataDir();
    const c = loadConfig({ DATA_DIR: dir });
    expect(loadConfig({ DATA_DIR: dir }).telegram.callbackKey.equals(c.telegram.callbackKey)).toBe(true);
    expect(c.telegram.callbackKey.equals(a.telegram.callbackKey)).toBe(false);
  });
});
