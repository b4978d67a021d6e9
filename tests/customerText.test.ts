// What of a customer's text may be texted or said to them, how a template loses a name it cannot
// carry, how many paid segments an SMS takes, and the start-up check that ties them together.
import { configProblems } from './support/config';
import { fillTemplate, LONGEST_NAME, MAX_NAME_LENGTH, plausibleName } from '../domain/customerText';
import { smsSize } from '../domain/smsSegments';

describe('plausibleName', () => {
  test.each([
    ['Иван', 'Иван'],
    ['Анна-Мария О’Нил', 'Анна-Мария О’Нил'],
    ["Shaquille O'Neal", "Shaquille O'Neal"],
    ['  Jean   Pierre\t', 'Jean Pierre'],
    ['Zoë Ångström', 'Zoë Ångström'],
    // Decomposed accents are combining marks: kept, and composed like the rest of the text.
    ['Zoe\u0308', 'Zoë'],
    ['Ли Мэй', 'Ли Мэй'],
    ['李小龍', '李小龍'],
    ['देवनागरी', 'देवनागरी'],
    ['Ж'.repeat(MAX_NAME_LENGTH), 'Ж'.repeat(MAX_NAME_LENGTH)],
  ])('%j is a name: %j', (text, name) => {
    expect(plausibleName(text)).toBe(name);
  });

  test.each([
    'Order cancelled, refund here: https://evil.example/x',
    'evil.example',
    'Позвоните 88005553535',
    'Иван!',
    'Иван, перезвоните',
    'Агент 007',
    'Иван 😀',
    'Ж'.repeat(MAX_NAME_LENGTH + 1),
    '',
    '   ',
    "-'’",
    'Иван <b>',
    '{hours}',
    // A right-to-left override would make the SMS read differently from what it says.
    'Иван\u202eнавИ',
    'Ива\u200bн',
  ])('%j is not a name', (text) => {
    expect(plausibleName(text)).toBeUndefined();
  });

  test('40 characters means UTF-16 code units, as SMS counts them: an astral letter is two', () => {
    const astral = '𠀀'; // a CJK letter outside the BMP
    expect(plausibleName(astral.repeat(20))).toBe(astral.repeat(20));
    expect(plausibleName(astral.repeat(21))).toBeUndefined();
  });

  test('undefined stays undefined', () => {
    expect(plausibleName(undefined)).toBeUndefined();
  });
});

describe('fillTemplate', () => {
  const hours = { hours: '09:00-21:00' };

  test('a plausible name fills every {name}; the other placeholders come from the values', () => {
    expect(fillTemplate('Здравствуйте, {name}! Звоним с {hours}. {name}, ждите.', ' Анна ', hours)).toBe(
      'Здравствуйте, Анна! Звоним с 09:00-21:00. Анна, ждите.',
    );
  });

  test.each([
    ['Здравствуйте, {name}! Ваш заказ принят.', 'Здравствуйте! Ваш заказ принят.'],
    ['Здравствуйте {name}! Ваш заказ принят.', 'Здравствуйте! Ваш заказ принят.'],
    ['Здравствуйте{name}! Ваш заказ принят.', 'Здравствуйте! Ваш заказ принят.'],
    ['Dear {name}, your order is in.', 'Dear, your order is in.'],
    ['{name}, ваш заказ принят.', 'ваш заказ принят.'],
    ['Ваш заказ принят, {name}.', 'Ваш заказ принят.'],
    ['Ваш заказ принят.', 'Ваш заказ принят.'],
  ])('without a plausible name %j becomes %j', (template, text) => {
    expect(fillTemplate(template, 'Order cancelled, refund here: https://evil.example/x')).toBe(text);
    expect(fillTemplate(template, undefined)).toBe(text);
  });

  test('the default texts without a name', () => {
    expect(
      fillTemplate(
        'Здравствуйте, {name}! Ваш заказ принят. Мы перезвоним вам в рабочее время ({hours}).',
        'https://evil.example/x',
        hours,
      ),
    ).toBe('Здравствуйте! Ваш заказ принят. Мы перезвоним вам в рабочее время (09:00-21:00).');
  });
});

describe('smsSize', () => {
  // [what, encoding, segments, text]
  test.each([
    ['160 Latin letters', 'GSM-7', 1, 'a'.repeat(160)],
    ['161 Latin letters', 'GSM-7', 2, 'a'.repeat(161)],
    ['306 Latin letters', 'GSM-7', 2, 'a'.repeat(306)],
    ['307 Latin letters', 'GSM-7', 3, 'a'.repeat(307)],
    // The extension table's characters take two septets.
    ['80 euro signs', 'GSM-7', 1, '€'.repeat(80)],
    ['81 euro signs', 'GSM-7', 2, '€'.repeat(81)],
    ['159 Latin letters and a brace', 'GSM-7', 2, 'a'.repeat(159) + '{'],
    ['70 Cyrillic letters', 'UCS-2', 1, 'а'.repeat(70)],
    ['71 Cyrillic letters', 'UCS-2', 2, 'а'.repeat(71)],
    ['134 Cyrillic letters', 'UCS-2', 2, 'а'.repeat(134)],
    ['135 Cyrillic letters', 'UCS-2', 3, 'а'.repeat(135)],
    // One character outside GSM-7 turns the whole text into UCS-2.
    ['70 Latin letters and a typographic apostrophe', 'UCS-2', 2, 'a'.repeat(70) + '’'],
    // An emoji is two UTF-16 code units.
    ['35 emoji', 'UCS-2', 1, '😀'.repeat(35)],
    ['36 emoji', 'UCS-2', 2, '😀'.repeat(36)],
  ])('%s: %s in %i segment(s)', (_what, encoding, segments, text) => {
    expect(smsSize(text)).toEqual({ encoding, segments });
  });
});

describe('SMS_MAX_SEGMENTS at start', () => {
  const problemsOf = configProblems;

  test('the default texts fit two segments with the longest name, and SMS_MAX_SEGMENTS defaults to 2', () => {
    expect(problemsOf({})).toEqual([]);
    const night = 'Здравствуйте, {name}! Ваш заказ принят. Мы перезвоним вам в рабочее время ({hours}).';
    expect(smsSize(fillTemplate(night, LONGEST_NAME, { hours: '09:00-21:00' }))).toEqual({
      encoding: 'UCS-2',
      segments: 2,
    });
    // One segment is too few for them: the check names each template and its count.
    expect(problemsOf({ SMS_MAX_SEGMENTS: '1' })).toEqual([
      expect.stringMatching(/^SMS_NIGHT_TEXT: takes 2 SMS segments \(UCS-2\).*SMS_MAX_SEGMENTS is 1/),
      expect.stringMatching(/^SMS_CONFIRMATION_TEXT: takes 2 SMS segments/),
      expect.stringMatching(/^SMS_VOICEMAIL_TEXT: takes 2 SMS segments/),
    ]);
  });

  test('a text that fits only without the name is refused; a higher SMS_MAX_SEGMENTS lets it start', () => {
    // 100 Cyrillic characters: two segments on their own, three with 40 more letters of a name.
    const text = `{name}${'ы'.repeat(100)}`;
    expect(smsSize(fillTemplate(text, undefined))).toEqual({ encoding: 'UCS-2', segments: 2 });
    expect(problemsOf({ SMS_VOICEMAIL_TEXT: text })).toEqual([
      expect.stringMatching(/^SMS_VOICEMAIL_TEXT: takes 3 SMS segments \(UCS-2\)/),
    ]);
    expect(problemsOf({ SMS_VOICEMAIL_TEXT: text, SMS_MAX_SEGMENTS: '3' })).toEqual([]);
  });

  test('a Latin template counts as UCS-2 once a Cyrillic name is in it; WORKING_HOURS is filled in', () => {
    // GSM-7 alone: 150 septets, one segment; with a Cyrillic name, 190 UCS-2 units: three.
    const latin = `Hello {name}! ${'x'.repeat(122)} ({hours})`;
    expect(smsSize(fillTemplate(latin, undefined, { hours: '09:00-21:00' })).segments).toBe(1);
    expect(problemsOf({ SMS_NIGHT_TEXT: latin })).toEqual([
      expect.stringMatching(/^SMS_NIGHT_TEXT: takes 3 SMS segments \(UCS-2\)/),
    ]);
  });

  test.each(['0', '11', '1.5', 'two'])('SMS_MAX_SEGMENTS=%s is refused', (value) => {
    expect(problemsOf({ SMS_MAX_SEGMENTS: value })).toEqual([expect.stringMatching(/^SMS_MAX_SEGMENTS: /)]);
  });
});
