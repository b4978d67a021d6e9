// The optional captcha on browser leads: the form shows the provider's widget, the widget puts a
// one-time token into the form, and the intake asks the provider whether that token is good before
// it starts the lead. Each provider has its own field name, request and answer; all three answer
// "no" to a forged, expired or already used token.
//
// When the provider cannot give a verdict (unreachable, 5xx, our own secret refused), the lead is
// let through and counted: a lost customer costs more than one unverified post, and Yandex's own
// example does the same. A verdict of "no" is always a 403.
import axios from 'axios';
import { z } from 'zod';
import type { AppConfig, CaptchaProvider } from '../config';

export type CaptchaConfig = NonNullable<AppConfig['captcha']>;

/** Where each provider's widget puts its token in the form. */
export const CAPTCHA_FIELDS: Record<CaptchaProvider, string> = {
  smartcaptcha: 'smart-token',
  hcaptcha: 'h-captcha-response',
  turnstile: 'cf-turnstile-response',
};

/** The widget's container class: each provider's script renders into it. */
export const CAPTCHA_WIDGET_CLASSES: Record<CaptchaProvider, string> = {
  smartcaptcha: 'smart-captcha',
  hcaptcha: 'h-captcha',
  turnstile: 'cf-turnstile',
};

/** Origins the page must allow scripts, frames and requests from (Content-Security-Policy). */
export function captchaOrigins(captcha: CaptchaConfig): string[] {
  const own = new URL(captcha.scriptUrl).origin;
  if (captcha.mode === 'emulator') return [own];
  if (captcha.provider === 'hcaptcha') return ['https://hcaptcha.com', 'https://*.hcaptcha.com'];
  return [own];
}

export type CaptchaVerdict =
  { outcome: 'passed' } | { outcome: 'refused'; reason: string } | { outcome: 'unverified'; reason: string };

const smartCaptchaAnswer = z.object({
  status: z.string(),
  message: z.string().optional(),
  host: z.string().optional(),
});
const siteverifyAnswer = z.object({
  success: z.boolean(),
  'error-codes': z.array(z.string()).optional(),
});
/** Error codes that are about our request or secret, not about the visitor's token. */
const OUR_FAULT = new Set(['missing-input-secret', 'invalid-input-secret', 'bad-request', 'internal-error']);

export async function verifyCaptcha(
  captcha: CaptchaConfig,
  token: string,
  clientIp: string | undefined,
  timeoutMs = 5000,
): Promise<CaptchaVerdict> {
  const form = new URLSearchParams({ secret: captcha.secret });
  if (captcha.provider === 'smartcaptcha') {
    form.set('token', token);
    if (clientIp) form.set('ip', clientIp);
  } else {
    form.set('response', token);
    if (clientIp) form.set('remoteip', clientIp);
    if (captcha.provider === 'hcaptcha') form.set('sitekey', captcha.siteKey);
  }
  let status: number, data: unknown;
  try {
    const res = await axios.post(captcha.verifyUrl, form.toString(), {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      timeout: timeoutMs,
      validateStatus: () => true,
      responseType: 'json',
    });
    status = res.status;
    data = res.data;
  } catch (err) {
    return { outcome: 'unverified', reason: axios.isAxiosError(err) ? err.message : String(err) };
  }
  if (status !== 200) return { outcome: 'unverified', reason: `HTTP ${status}: ${JSON.stringify(data)}` };

  if (captcha.provider === 'smartcaptcha') {
    const answer = smartCaptchaAnswer.safeParse(data);
    if (!answer.success) return { outcome: 'unverified', reason: 'not a SmartCaptcha answer' };
    return answer.data.status === 'ok'
      ? { outcome: 'passed' }
      : { outcome: 'refused', reason: answer.data.message || answer.data.status };
  }
  const answer = siteverifyAnswer.safeParse(data);
  if (!answer.success) return { outcome: 'unverified', reason: `not a ${captcha.provider} answer` };
  if (answer.data.success) return { outcome: 'passed' };
  const codes = answer.data['error-codes'] ?? [];
  if (codes.some((c) => OUR_FAULT.has(c))) return { outcome: 'unverified', reason: codes.join(', ') };
  return { outcome: 'refused', reason: codes.join(', ') || 'not valid' };
}

/** The widget markup the lead form shows, or nothing when the captcha is off. */
export function captchaWidgetHtml(captcha: CaptchaConfig | undefined): string {
  if (!captcha) return '';
  const attr = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const script =
    captcha.mode === 'emulator' ? `${captcha.scriptUrl}?provider=${captcha.provider}` : captcha.scriptUrl;
  return [
    `<div class="${CAPTCHA_WIDGET_CLASSES[captcha.provider]}" data-sitekey="${attr(captcha.siteKey)}"` +
      ` data-field="${CAPTCHA_FIELDS[captcha.provider]}"></div>`,
    `<script src="${attr(script)}" async defer></script>`,
  ].join('\n      ');
}
