// IANA zone validation through Intl, which knows exactly the zones the runtime can convert, and the
// zones a phone number's country lives in, from tzdata's country table (countries-and-timezones):
// a lead's night is the night of where its number is, not of whatever zone a post names.
import { getCountry, getTimezone } from 'countries-and-timezones';

export function isValidTimeZone(zone: string): boolean {
  if (!zone || typeof zone !== 'string') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Whether `zone` (or the zone it is an old name of) is one of the country's. */
export function isZoneOfCountry(zone: string, country: string): boolean {
  return (getTimezone(zone)?.countries as string[] | undefined)?.includes(country.toUpperCase()) ?? false;
}

/**
 * The zone most of a country's people live in, where the country has several: tzdata's table is
 * alphabetical (Asia/Anadyr first for Russia), and its zone.tab puts the westernmost first.
 * Countries not listed here have one zone, or a first one that is right.
 */
const MOST_POPULOUS_ZONE: Readonly<Record<string, string>> = {
  AR: 'America/Argentina/Buenos_Aires',
  AU: 'Australia/Sydney',
  BR: 'America/Sao_Paulo',
  CA: 'America/Toronto',
  CD: 'Africa/Kinshasa',
  CL: 'America/Santiago',
  CN: 'Asia/Shanghai',
  DE: 'Europe/Berlin',
  EC: 'America/Guayaquil',
  ES: 'Europe/Madrid',
  ID: 'Asia/Jakarta',
  KZ: 'Asia/Almaty',
  MN: 'Asia/Ulaanbaatar',
  MX: 'America/Mexico_City',
  MY: 'Asia/Kuala_Lumpur',
  NZ: 'Pacific/Auckland',
  PT: 'Europe/Lisbon',
  RU: 'Europe/Moscow',
  UA: 'Europe/Kyiv',
  US: 'America/New_York',
  UZ: 'Asia/Tashkent',
};

/**
 * The zone a number of `country` is called in when the lead named none of the country's:
 * `shopZone` (DEFAULT_TIMEZONE) when it is one of them, else the country's most populous one.
 * Undefined for a country tzdata does not know.
 */
export function defaultZoneOfCountry(country: string, shopZone: string): string | undefined {
  const code = country.toUpperCase();
  if (isZoneOfCountry(shopZone, code)) return shopZone;
  const zones = ((getCountry(code)?.timezones ?? []) as string[]).filter(isValidTimeZone);
  const preferred = MOST_POPULOUS_ZONE[code];
  if (preferred && zones.includes(preferred)) return preferred;
  return zones[0];
}
