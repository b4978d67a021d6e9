// City and time zone from the client's IP, for forms that send neither. fast-geoip ships its data
// and reads it from disk on demand, so the lookup costs no resident memory.
import net from 'node:net';
import geoip from 'fast-geoip';

export interface GeoHint {
  city?: string;
  timezone?: string;
}

function isPublicIp(ip: string): boolean {
  if (!net.isIP(ip)) return false;
  return !/^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|fc|fd|fe80:)/i.test(ip);
}

export async function lookupIp(ip: string): Promise<GeoHint | undefined> {
  const clean = ip.replace(/^::ffff:/, '');
  if (!isPublicIp(clean)) return undefined;
  try {
    const hit = await geoip.lookup(clean);
    if (!hit) return undefined;
    return { city: hit.city || undefined, timezone: hit.timezone || undefined };
  } catch {
    return undefined;
  }
}
