// What a customer typed into the shop's form may reach the customer's own phone (an SMS, the
// robot's speech) only when it reads as a person's name. A stranger who posts a lead with a
// victim's number otherwise gets the shop's SMS sender and robot to deliver any text they like
// ("Order cancelled, refund here: <link>"). Pure and deterministic: workflows import it.

/** The most characters (UTF-16 code units, as SMS UCS-2 counts them) a name may have. */
export const MAX_NAME_LENGTH = 40;

/**
 * The longest name a message may have to carry: letters outside GSM-7, so they also force the
 * whole SMS into UCS-2. Start-up checks fill each template with it.
 */
export const LONGEST_NAME = 'Ж'.repeat(MAX_NAME_LENGTH);

// Letters of any script with their combining marks (accents, Devanagari vowel signs), spaces,
// hyphens and both apostrophes (O'Neil, О’Нил). No digits, punctuation, symbols, emoji, format
// or bidi control characters: nothing a link, a number or a sentence can be made of.
const NAME = /^[\p{L}\p{M}' ’-]+$/u;
const LETTER = /\p{L}/u;

/**
 * The name as it may be said or texted to the customer (trimmed, inner whitespace made one
 * space), or undefined when the text is not a plausible name.
 */
export function plausibleName(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const name = text.normalize('NFC').trim().replace(/\s+/gu, ' ');
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return undefined;
  if (!NAME.test(name) || !LETTER.test(name)) return undefined;
  return name;
}

// `{name}` with what separates it from the word before: ", {name}" in "Здравствуйте, {name}!".
const NAME_WITH_SEPARATOR = /[ \t]*,?[ \t]*\{name\}/gu;
// `{name}` opening the text, with the separator after it: "{name}, ваш заказ принят".
const LEADING_NAME = /^\s*\{name\}[ \t]*,?[ \t]*/u;

/**
 * A message template with `{name}` filled with the customer's name when it is plausible, else
 * removed together with its separator ("Здравствуйте, {name}! Ваш заказ…" becomes
 * "Здравствуйте! Ваш заказ…"). `values` fill the other placeholders (`{hours}`): the shop's own
 * configuration, never the customer's text.
 */
export function fillTemplate(
  template: string,
  customerName: string | undefined,
  values: Readonly<Record<string, string>> = {},
): string {
  const name = plausibleName(customerName);
  // A plausible name has no braces, so filling it first cannot create another placeholder.
  let text =
    name === undefined
      ? template.replace(LEADING_NAME, '').replace(NAME_WITH_SEPARATOR, '')
      : template.replaceAll('{name}', name);
  for (const [key, value] of Object.entries(values)) text = text.replaceAll(`{${key}}`, value);
  return text;
}
