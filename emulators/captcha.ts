// A local captcha provider, speaking each provider's verify wire format on its own path:
//   Yandex SmartCaptcha  POST or GET /validate              secret, token, ip
//                        → 200 {status:"ok"|"failed", message, host?}; a wrong secret → 403
//   hCaptcha             POST /siteverify                   secret, response, remoteip, sitekey
//                        → 200 {success, challenge_ts?, hostname?, "error-codes"?}
//   Cloudflare Turnstile POST /turnstile/v0/siteverify      secret, response, remoteip (form or JSON)
//                        → 200 {success, challenge_ts?, hostname?, "error-codes"?}
// Tokens are valid only if this emulator issued them (signed), within the provider's lifetime
// (SmartCaptcha and Turnstile 5 minutes, hCaptcha 2 minutes), and once, as on the real services.
// It also serves a stand-in widget (/captcha.js) whose "I am not a robot" button gets a token from
// /issue, so the lead form works end to end in a browser without the real provider.
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { CaptchaProvider } from '../config';
import { EMULATOR_CREDENTIALS } from './credentials';
import { FaultMode, type EmulatorMode } from './faultMode';

export interface CaptchaEmulatorOptions {
  siteKey?: string;
  secret?: string;
  /** the emulator's clock (tests age tokens without waiting) */
  now?: () => number;
  /** the hostname verify answers report */
  hostname?: string;
}

export interface CaptchaVerification {
  provider: CaptchaProvider;
  token: string;
  ip?: string;
  ok: boolean;
  at: Date;
}

export interface CaptchaEmulator {
  app: express.Express;
  state: { issued: number; verifications: CaptchaVerification[] };
  control: {
    /** A token as the widget would hand it to the page, issued `ageMs` ago. */
    issueToken(provider: CaptchaProvider, opts?: { ageMs?: number; siteKey?: string }): string;
    setMode(mode: EmulatorMode, opts?: { times?: number }): void;
    reset(): void;
  };
}

const LIFETIME_MS: Record<CaptchaProvider, number> = {
  smartcaptcha: 5 * 60_000,
  hcaptcha: 2 * 60_000,
  turnstile: 5 * 60_000,
};
/** What real tokens start with, so a token in a log says whose it is. */
const PREFIX: Record<CaptchaProvider, string> = { smartcaptcha: 'dD0', hcaptcha: 'P1_', turnstile: '0.' };

interface Claims {
  p: CaptchaProvider;
  sk: string;
  iat: number;
  n: string;
}

type Check = { ok: true; claims: Claims } | { ok: false; reason: 'invalid' | 'expired' | 'used' };

export function createCaptchaEmulator(options: CaptchaEmulatorOptions = {}): CaptchaEmulator {
  const siteKey = options.siteKey ?? EMULATOR_CREDENTIALS.captchaSiteKey;
  const secret = options.secret ?? EMULATOR_CREDENTIALS.captchaSecret;
  const now = options.now ?? Date.now;
  const hostname = options.hostname ?? '127.0.0.1';
  const signingKey = crypto.randomBytes(32);
  const used = new Set<string>();
  const fault = new FaultMode();
  const state: CaptchaEmulator['state'] = { issued: 0, verifications: [] };

  const sign = (body: string) => crypto.createHmac('sha256', signingKey).update(body).digest('base64url');
  function issueToken(provider: CaptchaProvider, opts: { ageMs?: number; siteKey?: string } = {}): string {
    const claims: Claims = {
      p: provider,
      sk: opts.siteKey ?? siteKey,
      iat: now() - (opts.ageMs ?? 0),
      n: crypto.randomBytes(9).toString('base64url'),
    };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    state.issued += 1;
    return `${PREFIX[provider]}${body}.${sign(body)}`;
  }

  function check(provider: CaptchaProvider, token: string): Check {
    if (!token.startsWith(PREFIX[provider])) return { ok: false, reason: 'invalid' };
    const [body, mac, extra] = token.slice(PREFIX[provider].length).split('.');
    if (!body || !mac || extra !== undefined) return { ok: false, reason: 'invalid' };
    const expected = sign(body);
    if (mac.length !== expected.length || !crypto.timingSafeEqual(Buffer.from(mac), Buffer.from(expected)))
      return { ok: false, reason: 'invalid' };
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Claims;
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    if (claims.p !== provider || claims.sk !== siteKey) return { ok: false, reason: 'invalid' };
    if (now() - claims.iat > LIFETIME_MS[provider]) return { ok: false, reason: 'expired' };
    if (used.has(claims.n)) return { ok: false, reason: 'used' };
    used.add(claims.n);
    return { ok: true, claims };
  }

  /** The outage modes every emulator plays, in a shape a verify client can only take as "no verdict". */
  function outage(res: Response): boolean {
    const mode = fault.take();
    if (mode === 'ok') return false;
    if (mode === 'rate_limit') res.status(429).json({ error: 'too many requests' });
    else if (mode === 'auth_error') res.status(403).json({ error: 'forbidden' });
    else res.status(503).type('html').send('<html><body>503 Service Unavailable</body></html>');
    return true;
  }

  const record = (provider: CaptchaProvider, token: string, ip: string | undefined, ok: boolean) =>
    state.verifications.push({ provider, token, ip, ok, at: new Date(now()) });
  const param = (req: Request, name: string): string | undefined => {
    const fromBody = (req.body as Record<string, unknown> | undefined)?.[name];
    const value = fromBody ?? req.query[name];
    return typeof value === 'string' ? value : undefined;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));
  app.use(express.json({ limit: '64kb' }));

  const smartCaptcha = (req: Request, res: Response) => {
    if (outage(res)) return;
    if (param(req, 'secret') !== secret) {
      res.status(403).json({ status: 'failed', message: 'Authentication failed. Secret has not provided.' });
      return;
    }
    const token = param(req, 'token') ?? '';
    const verdict = check('smartcaptcha', token);
    record('smartcaptcha', token, param(req, 'ip'), verdict.ok);
    res.json(
      verdict.ok
        ? { status: 'ok', message: '', host: hostname }
        : { status: 'failed', message: 'Invalid or expired Token.' },
    );
  };
  app.get('/validate', smartCaptcha);
  app.post('/validate', smartCaptcha);

  const siteverify = (provider: 'hcaptcha' | 'turnstile') => (req: Request, res: Response) => {
    if (outage(res)) return;
    const given = param(req, 'secret');
    const token = param(req, 'response');
    const errors: string[] = [];
    if (!given) errors.push('missing-input-secret');
    else if (given !== secret) errors.push('invalid-input-secret');
    if (!token) errors.push('missing-input-response');
    if (errors.length > 0) {
      res.json({ success: false, 'error-codes': errors });
      return;
    }
    const sitekey = param(req, 'sitekey');
    const verdict = check(provider, token!);
    record(provider, token!, param(req, 'remoteip'), verdict.ok);
    if (verdict.ok && provider === 'hcaptcha' && sitekey && sitekey !== siteKey) {
      res.json({ success: false, 'error-codes': ['sitekey-secret-mismatch'] });
      return;
    }
    if (verdict.ok) {
      res.json({
        success: true,
        challenge_ts: new Date(verdict.claims.iat).toISOString(),
        hostname,
        'error-codes': [],
      });
      return;
    }
    const code =
      provider === 'hcaptcha'
        ? 'invalid-or-already-seen-response'
        : verdict.reason === 'invalid'
          ? 'invalid-input-response'
          : 'timeout-or-duplicate';
    res.json({ success: false, 'error-codes': [code] });
  };
  app.post('/siteverify', siteverify('hcaptcha'));
  app.post('/turnstile/v0/siteverify', siteverify('turnstile'));

  // The stand-in widget's "solve": a browser on another origin asks, so CORS is open.
  app.options('/issue', (_req, res) => {
    res.set({ 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type' }).end();
  });
  app.post('/issue', (req, res) => {
    res.set('access-control-allow-origin', '*');
    const provider = param(req, 'provider') as CaptchaProvider | undefined;
    if (!provider || !(provider in LIFETIME_MS) || param(req, 'sitekey') !== siteKey) {
      res.status(400).json({ error: 'unknown provider or site key' });
      return;
    }
    res.json({ token: issueToken(provider) });
  });
  app.get('/captcha.js', (_req, res) => {
    res.type('application/javascript').set('cache-control', 'no-store').send(WIDGET_SCRIPT);
  });

  return {
    app,
    state,
    control: {
      issueToken,
      setMode: (mode, opts) => fault.set(mode, opts?.times),
      reset() {
        used.clear();
        fault.reset();
        state.issued = 0;
        state.verifications.length = 0;
      },
    },
  };
}

// The stand-in widget: renders into the provider's container (data-sitekey, data-field), puts the
// token into a hidden field of the provider's name, and offers the provider's global reset().
const WIDGET_SCRIPT = `(() => {
  const me = document.currentScript;
  const origin = new URL(me.src).origin;
  const provider = new URL(me.src).searchParams.get('provider');
  const boxes = [...document.querySelectorAll('.smart-captcha, .h-captcha, .cf-turnstile')];
  const fields = [];
  for (const box of boxes) {
    const field = document.createElement('input');
    field.type = 'hidden';
    field.name = box.dataset.field;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'captcha-emulator';
    button.textContent = 'Я не робот (эмулятор капчи)';
    button.addEventListener('click', async () => {
      const res = await fetch(origin + '/issue', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ provider, sitekey: box.dataset.sitekey }),
      });
      const data = await res.json();
      field.value = data.token || '';
      button.textContent = field.value ? '✓ Проверка пройдена' : 'Ошибка проверки';
      button.disabled = !!field.value;
    });
    box.append(field, button);
    fields.push({ field, button });
  }
  const reset = () => {
    for (const { field, button } of fields) {
      field.value = '';
      button.disabled = false;
      button.textContent = 'Я не робот (эмулятор капчи)';
    }
  };
  const api = { reset };
  if (provider === 'smartcaptcha') window.smartCaptcha = api;
  if (provider === 'hcaptcha') window.hcaptcha = api;
  if (provider === 'turnstile') window.turnstile = api;
})();
`;
