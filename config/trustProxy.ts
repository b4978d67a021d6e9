// TRUST_PROXY in the forms Express's "trust proxy" takes, checked at start. Express passes a string
// to proxy-addr as it is, so a typo fails only at the first request, and a bare `1` is read as the
// address 0.0.0.1 (ipaddr.js's long IPv4 form), trusting nobody, instead of one hop.
import net from 'node:net';
import proxyAddr from 'proxy-addr';

/** What Express is given: a hop count, no proxy at all, or the proxies' names and addresses. */
export type TrustProxy = number | false | string[];

const NAMES = ['loopback', 'linklocal', 'uniquelocal'];

export function parseTrustProxy(text: string): { value: TrustProxy } | { error: string } {
  const value = text.trim();
  if (/^\d+$/.test(value)) return { value: Number(value) };
  if (value === 'false') return { value: false };
  if (value === 'true') {
    // Every client could then name its own address in X-Forwarded-For: the per-IP limit and the
    // captcha's "one address" would be the stranger's choice.
    return {
      error:
        '"true" believes any client\'s X-Forwarded-For; name the proxy instead: loopback, a hop count (e.g. 1) or its addresses/CIDRs',
    };
  }
  const items = value.split(',').map((item) => item.trim());
  for (const item of items) {
    if (item === '') return { error: `an empty item in "${text}"` };
    if (NAMES.includes(item)) continue;
    if (/^\d+$/.test(item)) return { error: `a hop count (${item}) stands alone, not in a list` };
    // Only the usual notations: ipaddr.js (under proxy-addr) also takes "10.1" or "0x7f.1".
    const [address = '', mask, extra] = item.split('/');
    if (
      extra !== undefined ||
      net.isIP(address) === 0 ||
      (mask !== undefined && !/^\d+$/.test(mask) && net.isIPv4(mask) === false)
    ) {
      return {
        error: `"${item}" is none of loopback, linklocal, uniquelocal, a hop count, an IP address or a CIDR`,
      };
    }
  }
  try {
    // Express's own parser of the list: what it accepts here, it accepts at the first request.
    proxyAddr.compile(items);
  } catch (err) {
    return { error: (err as Error).message };
  }
  return { value: items };
}
