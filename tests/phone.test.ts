import fc from 'fast-check';
import { lengthProblem, normalizePhone } from '../domain/phone';

describe('phone rules of the original process', () => {
  test.each([
    ['89161234567', '79161234567'],
    ['8 (916) 123-45-67', '79161234567'],
    ['9161234567', '79161234567'],
    ['+7 916 123 45 67', '79161234567'],
    ['7-916-123-45-67', '79161234567'],
    ['+1 202 555 0147', '12025550147'],
  ])('%s → %s, callable', (raw, digits) => {
    expect(normalizePhone(raw)).toMatchObject({ ok: true, digits, callable: true });
  });

  test('more than 11 digits is kept for the CRM but not called', () => {
    expect(normalizePhone('+380 44 123 4567')).toEqual({
      ok: true,
      digits: '380441234567',
      callable: false,
      reason: 'phone_too_long',
    });
    expect(normalizePhone('791612345678')).toMatchObject({ callable: false, reason: 'phone_too_long' });
  });

  test('one length rule: 10 or 11 digits are dialled, 12 are too long, 9 too few', () => {
    expect(lengthProblem('7916123456')).toBeUndefined();
    expect(lengthProblem('79161234567')).toBeUndefined();
    expect(lengthProblem('791612345678')).toBe('phone_too_long');
    expect(lengthProblem('916123456')).toBe('too_short');
    expect(lengthProblem('+79161234567')).toBe('not_digits');
  });

  test('property: a callable phone passes the length rule, a phone_too_long one fails it', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\+?\d{10,14}$/), (raw) => {
        const v = normalizePhone(raw);
        if (!v.ok) return false;
        if (v.callable) return lengthProblem(v.digits) === undefined;
        return v.reason !== 'phone_too_long' || lengthProblem(v.digits) === 'phone_too_long';
      }),
    );
  });

  test('a number the library shortens below the rule is not called', () => {
    expect(normalizePhone('6100000000')).toEqual({
      ok: true,
      digits: '6100000000',
      callable: false,
      reason: 'not_a_dialable_number',
    });
  });

  test('a leading 8 is replaced only on an 11-digit number', () => {
    expect(normalizePhone('8123456789')).toMatchObject({ ok: true, digits: '8123456789' });
  });

  test.each([
    ['', 'is required'],
    ['12345', 'has too few digits (at least 10)'],
    ['8916abc4567', 'may contain only digits, spaces, +, -, ( and )'],
    ['<script>alert(1)</script>', 'may contain only digits, spaces, +, -, ( and )'],
  ])('%j is rejected', (raw, error) => {
    expect(normalizePhone(raw)).toEqual({ ok: false, error });
  });

  test('non-strings are rejected', () => {
    expect(normalizePhone({})).toEqual({ ok: false, error: 'must be a string' });
    expect(normalizePhone(null)).toEqual({ ok: false, error: 'must be a string' });
  });

  test('property: any accepted phone is all digits, 10+ long, and a callable one is at most 11', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (raw) => {
        const v = normalizePhone(raw);
        if (!v.ok) return true;
        return /^\d{10,}$/.test(v.digits) && (!v.callable || v.digits.length <= 11);
      }),
    );
  });

  test('property: formatting characters never change the result', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^9\d{9}$/), fc.constantFrom(' ', '-', '(', ')'), (digits, sep) => {
        const spaced = digits.split('').join(sep);
        const a = normalizePhone(digits);
        const b = normalizePhone(spaced);
        return a.ok && b.ok && a.digits === b.digits && a.digits === `7${digits}`;
      }),
    );
  });
});

describe('only a person’s number is called or texted', () => {
  test.each([
    ['+7 916 123-45-67', 'MOBILE'],
    ['+7 495 123-45-67', 'FIXED_LINE'],
    ['+1 202 555 0147', 'FIXED_LINE_OR_MOBILE'],
  ])('%s is %s: callable', (raw, type) => {
    expect(normalizePhone(raw)).toMatchObject({ ok: true, callable: true, type });
  });

  test.each([
    ['8 809 123-45-67', '78091234567', 'PREMIUM_RATE'],
    ['8 803 123-45-67', '78031234567', 'PREMIUM_RATE'],
    ['8 800 123-45-67', '78001234567', 'TOLL_FREE'],
    ['+1 500 555 1234', '15005551234', 'PERSONAL_NUMBER'],
    ['+31 85 123 4567', '31851234567', 'VOIP'],
    ['+33 8 06 12 34 56', '33806123456', 'UAN'],
    ['+46 771 123 456', '46771123456', 'SHARED_COST'],
    ['+1 900 555 1234', '19005551234', 'PREMIUM_RATE'],
  ])('%s (%s) is %s: recorded, not called', (raw, digits, type) => {
    expect(normalizePhone(raw)).toEqual({
      ok: true,
      digits,
      callable: false,
      reason: 'not_a_personal_number',
      type,
    });
  });

  test('a number in no range the plan assigns is nobody’s', () => {
    expect(normalizePhone('+7 880 123-45-67')).toMatchObject({
      callable: false,
      reason: 'not_a_personal_number',
      type: undefined,
    });
  });
});
