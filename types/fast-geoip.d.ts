declare module 'fast-geoip' {
  interface IpInfo {
    range: [number, number];
    country: string;
    region: string;
    eu: '0' | '1';
    timezone: string;
    city: string;
    ll: [number, number];
    metro: number;
    area: number;
  }
  const geoip: { lookup(ip: string): Promise<IpInfo | null> };
  export default geoip;
}
