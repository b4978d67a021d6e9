import { defaultZoneOfCountry, isZoneOfCountry } from '../domain/timezone';

describe("a lead's zone is one of its number's country", () => {
  test.each([
    ['Europe/Moscow', 'RU', true],
    ['Asia/Novosibirsk', 'RU', true],
    ['W-SU', 'RU', true],
    ['Europe/Kiev', 'UA', true],
    ['Pacific/Honolulu', 'RU', false],
    ['Etc/GMT-3', 'RU', false],
    ['UTC', 'RU', false],
    ['Europe/Moscow', 'KZ', false],
    ['Not/AZone', 'RU', false],
  ])('%s in %s: %s', (zone, country, expected) => {
    expect(isZoneOfCountry(zone, country)).toBe(expected);
  });

  test("the shop's DEFAULT_TIMEZONE for its own country, else the country's most populous zone", () => {
    expect(defaultZoneOfCountry('RU', 'Europe/Moscow')).toBe('Europe/Moscow');
    expect(defaultZoneOfCountry('RU', 'Asia/Yekaterinburg')).toBe('Asia/Yekaterinburg');
    expect(defaultZoneOfCountry('RU', 'Asia/Almaty')).toBe('Europe/Moscow');
    expect(defaultZoneOfCountry('KZ', 'Europe/Moscow')).toBe('Asia/Almaty');
    expect(defaultZoneOfCountry('US', 'Europe/Moscow')).toBe('America/New_York');
    expect(defaultZoneOfCountry('BY', 'Europe/Moscow')).toBe('Europe/Minsk');
    expect(defaultZoneOfCountry('XX', 'Europe/Moscow')).toBeUndefined();
  });
});
