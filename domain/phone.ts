// Phone rules of the original process (leading 8 → 7; ten digits starting with 9 → prefix 7; more
// than 11 digits → do not call), with libphonenumber-js deciding what those rules cannot: whether a
// number that is not Russian-shaped is dialable at all, and whether it is a person's. The full
// ("max") metadata is what tells a mobile or fixed line from premium-rate, shared-cost, toll-free
// and other ranges where a call or an SMS costs the shop money or reaches nobody.
import { parsePhoneNumberFromString, type NumberType } from 'libphonenumber-js/max';

export type NotDialableReason = 'phone_too_long' | 'not_a_dialable_number' | 'not_a_personal_number';

export type PhoneVerdict =
  | { ok: true; digits: string; callable: true; type: PersonalNumberType }
  | { ok: true; digits: string; callable: false; reason: NotDialableReason; type?: NumberType }
  | { ok: false; error: string };

/** The number types a shop may ring or text: a person's line. */
export const PERSONAL_NUMBER_TYPES = ['MOBILE', 'FIXED_LINE', 'FIXED_LINE_OR_MOBILE'] as const;
export type PersonalNumberType = (typeof PERSONAL_NUMBER_TYPES)[number];
const isPersonal = (type: NumberType): type is PersonalNumberType =>
  (PERSONAL_NUMBER_TYPES as readonly string[]).includes(type ?? '');

export const MIN_PHONE_DIGITS = 10;
export const MAX_DIALABLE_DIGITS = 11;

/**
 * The one rule for the length of a number the robot may dial: the intake asks it before a lead is
 * called, and the call activity again before it rings anyone. Undefined: the length allows a call.
 */
export function lengthProblem(digits: string): 'not_digits' | 'too_short' | 'phone_too_long' | undefined {
  if (!/^\d*$/.test(digits)) return 'not_digits';
  if (digits.length < MIN_PHONE_DIGITS) return 'too_short';
  if (digits.length > MAX_DIALABLE_DIGITS) return 'phone_too_long';
  return undefined;
}

export function normalizePhone(raw: unknown): PhoneVerdict {
  if (typeof raw !== 'string' && typeof raw !== 'number') return { ok: false, error: 'must be a string' };
  const text = String(raw).trim();
  if (text === '') return { ok: false, error: 'is required' };
  if (text.length > 40) return { ok: false, error: 'is too long to be a phone number' };
  // People type spaces, dashes, dots, brackets and a leading plus; anything else is not a phone.
  if (!/^\+?[\d\s\-().]+$/.test(text))
    return { ok: false, error: 'may contain only digits, spaces, +, -, ( and )' };
  let digits = text.replace(/\D/g, '');
  // After a "+", an 8 is a country code (+880 Bangladesh, +882 international networks), not the
  // Russian trunk prefix; "+8 916 …" is a Russian number typed with a stray plus, and is no valid
  // international number.
  const international = text.startsWith('+') && !!parsePhoneNumberFromString(`+${digits}`)?.isValid();
  if (digits.length === 11 && digits.startsWith('8') && !international) digits = `7${digits.slice(1)}`;
  if (digits.length === 10 && digits.startsWith('9')) digits = `7${digits}`;
  const problem = lengthProblem(digits);
  if (problem === 'too_short')
    return { ok: false, error: `has too few digits (at least ${MIN_PHONE_DIGITS})` };
  if (problem === 'phone_too_long') return { ok: true, digits, callable: false, reason: 'phone_too_long' };
  const parsed = parsePhoneNumberFromString(`+${digits}`);
  if (!parsed || !parsed.isPossible()) {
    return { ok: true, digits, callable: false, reason: 'not_a_dialable_number' };
  }
  // The library may drop a trunk zero ("+61 0…"): the number dialled must pass the rule too.
  const dialled = parsed.number.slice(1);
  if (lengthProblem(dialled)) return { ok: true, digits, callable: false, reason: 'not_a_dialable_number' };
  // Undefined for a number in no range the plan assigns (an unallocated block): nobody's either.
  const type = parsed.getType();
  if (!isPersonal(type)) {
    return { ok: true, digits: dialled, callable: false, reason: 'not_a_personal_number', type };
  }
  return { ok: true, digits: dialled, callable: true, type };
}

/**
 * The country a dialable number belongs to (ISO 3166-1 alpha-2), from the number plan itself: +7 7…
 * is Kazakhstan and +7 9… Russia, +44 70… a UK "personal number". Undefined for a number of no
 * country (+800, +882 and the other international networks) and for one the plan does not know.
 */
export function phoneCountry(digits: string): string | undefined {
  return parsePhoneNumberFromString(`+${digits}`)?.country;
}
