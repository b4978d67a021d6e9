// What a lead must get past before it is parsed: the per-IP limit (lifted by the shop backend's
// INTAKE_API_KEY) and, once it is valid, the captcha of a browser lead. A key that is present but
// wrong is refused, so a misconfigured shop hears of it instead of being throttled like a browser.
import type { Request, RequestHandler, Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { safeEqual } from '../domain/safeEqual';
import { CAPTCHA_FIELDS, verifyCaptcha } from './captcha';
import { HttpError, type AppDeps } from './http';
import { bearerToken } from './operatorAuth';

export interface IntakeGuards {
  /** Before the body is read: the key, the per-IP limit (wrong keys count toward it), 401 for a wrong key. */
  beforeBody: RequestHandler[];
  /** The captcha check of a browser lead (no valid intake key); throws the 403. */
  requireCaptcha(req: Request, res: Response): Promise<void>;
}

export function intakeGuards({ config, logger, metrics }: AppDeps): IntakeGuards {
  const intakeKey: RequestHandler = (req, res, next) => {
    const bearer = bearerToken(req);
    res.locals.intakeKey =
      bearer === undefined || !config.intakeApiKey
        ? 'none'
        : safeEqual(bearer, config.intakeApiKey)
          ? 'valid'
          : 'wrong';
    next();
  };
  const intakeLimiter = rateLimit({
    windowMs: 60_000,
    limit: config.intakeRateLimitPerMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    skip: (_req, res) => res.locals.intakeKey === 'valid',
    handler: (_req, res) => {
      metrics.refusals.inc({ rule: 'ip_rate_limit' });
      res.status(429).json({ error: 'too many leads from this address, try again in a minute' });
    },
  });
  const refuseWrongKey: RequestHandler = (_req, res, next) => {
    if (res.locals.intakeKey !== 'wrong') {
      next();
      return;
    }
    metrics.refusals.inc({ rule: 'intake_key' });
    res.set('www-authenticate', 'Bearer realm="intake"');
    next(
      new HttpError(
        401,
        'wrong intake key: "Authorization: Bearer <INTAKE_API_KEY>", or no Authorization header',
      ),
    );
  };

  async function requireCaptcha(req: Request, res: Response): Promise<void> {
    const captcha = config.captcha;
    if (!captcha || res.locals.intakeKey === 'valid') return;
    const field = CAPTCHA_FIELDS[captcha.provider];
    const sent = (req.body as Record<string, unknown>)[field] ?? req.get('x-captcha-token');
    const token = typeof sent === 'string' ? sent.trim() : '';
    const refuse = (message: string) => {
      metrics.refusals.inc({ rule: 'captcha' });
      return new HttpError(403, 'captcha not passed: solve the captcha on the form and send the lead again', {
        details: [{ field, message }],
      });
    };
    if (!token) throw refuse('is required: the token the captcha widget puts into the form');
    if (token.length > 8192) throw refuse('is not a captcha token');
    const verdict = await verifyCaptcha(captcha, token, req.ip);
    if (verdict.outcome === 'refused') throw refuse(`was refused by ${captcha.provider}: ${verdict.reason}`);
    if (verdict.outcome === 'unverified') {
      metrics.captchaUnverified.inc();
      logger.error(
        { provider: captcha.provider, reason: verdict.reason },
        'captcha provider gave no verdict: the lead is let through',
      );
    }
  }

  return { beforeBody: [intakeKey, intakeLimiter, refuseWrongKey], requireCaptcha };
}
