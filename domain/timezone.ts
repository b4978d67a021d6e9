// IANA zone validation through Intl, which knows exactly the zones the runtime can convert.
export function isValidTimeZone(zone: string): boolean {
  if (!zone || typeof zone !== 'string') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
