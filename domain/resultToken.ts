// The token the VoxImplant scenario sends back with its result. It names the workflow and the
// attempt and is HMAC-signed, so a report can neither be forged nor redirected to another lead or
// attempt, and it expires so an old leaked token is useless.
import crypto from 'node:crypto';
import { safeEqual } from './safeEqual';

export interface ResultTokenClaims {
  /** workflow id of the robot-call workflow */
  wf: string;
  /** its run id: a later lead with the same ref is another run and must not take this report */
  run?: string;
  /** call attempt number, from 1 */
  a: number;
  /** expiry, epoch seconds */
  exp: number;
  /**
   * Set for an attempt whose claim Temporal decides alone (support/callClaims): the end of the
   * customer's working window (epoch ms), after which no claim is granted, so nobody is rung at
   * night however late the claim comes.
   */
  du?: number;
  /** With `du`: the scenario's claimUntil (epoch ms); a claim after it would leave no time to report. */
  cu?: number;
  /** Set when the attempt's report goes to the lead as a signal (see api/voximplantResult). */
  rs?: 1;
}

export type TokenCheck =
  | { ok: true; claims: ResultTokenClaims }
  | { ok: false; reason: 'missing' | 'malformed' | 'bad_signature' | 'expired' };

function sign(payload: string, secret: string): string {
  return crypto.createHmac('sha256', secret).update(payload).digest('base64url');
}

export function signResultToken(claims: ResultTokenClaims, secret: string): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${sign(payload, secret)}`;
}

export function verifyResultToken(token: unknown, secret: string, nowMs = Date.now()): TokenCheck {
  if (typeof token !== 'string' || token.length === 0) return { ok: false, reason: 'missing' };
  const [payload, signature, extra] = token.split('.');
  if (!payload || !signature || extra !== undefined || token.length > 2048) {
    return { ok: false, reason: 'malformed' };
  }
  if (!safeEqual(signature, sign(payload, secret))) {
    return { ok: false, reason: 'bad_signature' };
  }
  let claims: ResultTokenClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ResultTokenClaims;
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (
    typeof claims.wf !== 'string' ||
    claims.wf.length === 0 ||
    claims.wf.length > 300 ||
    (claims.run !== undefined && (typeof claims.run !== 'string' || !/^[0-9a-f-]{36}$/i.test(claims.run))) ||
    !Number.isInteger(claims.a) ||
    claims.a < 1 ||
    typeof claims.exp !== 'number' ||
    (claims.du !== undefined && typeof claims.du !== 'number') ||
    (claims.cu !== undefined && typeof claims.cu !== 'number') ||
    (claims.rs !== undefined && claims.rs !== 1)
  ) {
    return { ok: false, reason: 'malformed' };
  }
  if (claims.exp * 1000 < nowMs) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}
