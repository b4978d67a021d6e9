// Who may read leads and act on them: whoever holds OPERATOR_TOKEN. Programs send it as a bearer
// token; a person logs in on a page once, and the browser then carries a session cookie that is
// HttpOnly (page scripts cannot read it) and SameSite=Strict (no other site's page can make the
// browser send it, so a cookie-authenticated action cannot be forged from elsewhere).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { safeEqual } from '../domain/safeEqual';
import { HttpError, type AppDeps } from './http';

export const OPERATOR_COOKIE = 'stl_operator';
export const LOGIN_PATH = '/operator/login';
export const LOGOUT_PATH = '/operator/logout';
/** How long a login lasts; a new OPERATOR_TOKEN ends every session at once. */
const SESSION_MS = 12 * 3_600_000;

/** The bearer token of `Authorization: Bearer <token>`, if the header is of that form. */
export function bearerToken(req: Request): string | undefined {
  const match = /^Bearer +([^\s]+) *$/i.exec(req.get('authorization') ?? '');
  return match?.[1];
}

/**
 * A session is `<expiry ms>.<HMAC of the expiry keyed by the token>`: nothing to store on the
 * server, nothing of the token in the browser, and it expires by itself.
 */
function sessionMac(token: string, expires: number): string {
  return crypto.createHmac('sha256', token).update(`operator-session:${expires}`).digest('base64url');
}

export function operatorSession(token: string, now: number): { value: string; maxAgeMs: number } {
  const expires = now + SESSION_MS;
  return { value: `${expires}.${sessionMac(token, expires)}`, maxAgeMs: SESSION_MS };
}

function validSession(value: unknown, token: string, now: number): boolean {
  if (typeof value !== 'string') return false;
  const match = /^(\d{13,15})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return false;
  const expires = Number(match[1]);
  return expires > now && safeEqual(match[2]!, sessionMac(token, expires));
}

/** Where a login may send the browser next: a path of this site, nothing else. */
function safeNext(value: unknown): string {
  return typeof value === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(value) ? value : '/dashboard';
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface OperatorAuth {
  /** For API routes: 401 JSON without a valid bearer token or session. */
  requireOperator: RequestHandler;
  /** For operator pages: the login page (401) without a valid token or session. */
  requireOperatorPage: RequestHandler;
  /** The login and logout routes. */
  routes: Router;
}

export function operatorAuth({ config, metrics }: AppDeps): OperatorAuth {
  const token = config.operator.token;
  const loginPage = fs.readFileSync(path.join(__dirname, 'pages', 'login.html'), 'utf8');

  const isOperator = (req: Request): boolean => {
    const bearer = bearerToken(req);
    if (bearer !== undefined) return safeEqual(bearer, token);
    return validSession(
      (req.cookies as Record<string, unknown> | undefined)?.[OPERATOR_COOKIE],
      token,
      Date.now(),
    );
  };

  const showLogin = (res: Response, next: string, failed: boolean): void => {
    res
      .status(401)
      .set('cache-control', 'no-store')
      .type('html')
      .send(
        loginPage
          .replace('{{next}}', escapeHtml(next))
          .replace('{{error}}', failed ? '<p class="error" role="alert">Неверный токен оператора.</p>' : ''),
      );
  };

  const requireOperator: RequestHandler = (req, res, next) => {
    if (isOperator(req)) {
      next();
      return;
    }
    metrics.refusals.inc({ rule: 'operator_auth' });
    res.set('www-authenticate', 'Bearer realm="operator"');
    next(new HttpError(401, 'operator routes need "Authorization: Bearer <OPERATOR_TOKEN>"'));
  };

  const requireOperatorPage: RequestHandler = (req, res, next) => {
    if (isOperator(req)) {
      next();
      return;
    }
    metrics.refusals.inc({ rule: 'operator_auth' });
    showLogin(res, req.originalUrl, false);
  };

  const routes = Router();
  // The token is 32 random bytes unless someone chose it; this makes guessing a chosen one slow too.
  const loginLimiter = rateLimit({
    windowMs: 60_000,
    limit: 20,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      metrics.refusals.inc({ rule: 'ip_rate_limit' });
      res.status(429).json({ error: 'too many login attempts from this address, try again in a minute' });
    },
  });
  routes.post(
    LOGIN_PATH,
    loginLimiter,
    express.urlencoded({ limit: '4kb', extended: false, parameterLimit: 5 }),
    express.json({ limit: '4kb' }),
    (req: Request, res: Response) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const given = typeof body.token === 'string' ? body.token.trim() : '';
      const next = safeNext(body.next);
      const wantsJson = Boolean(req.is('application/json'));
      if (!given || !safeEqual(given, token)) {
        metrics.refusals.inc({ rule: 'operator_login' });
        if (wantsJson) {
          res.status(401).json({ error: 'wrong operator token' });
          return;
        }
        showLogin(res, next, true);
        return;
      }
      const session = operatorSession(token, Date.now());
      res.cookie(OPERATOR_COOKIE, session.value, {
        httpOnly: true,
        sameSite: 'strict',
        secure: req.secure,
        path: '/',
        maxAge: session.maxAgeMs,
      });
      if (wantsJson) res.status(204).end();
      else res.redirect(303, next);
    },
  );
  routes.post(LOGOUT_PATH, (_req: Request, res: Response) => {
    res.clearCookie(OPERATOR_COOKIE, { httpOnly: true, sameSite: 'strict', path: '/' });
    res.redirect(303, '/dashboard');
  });
  return { requireOperator, requireOperatorPage, routes };
}
