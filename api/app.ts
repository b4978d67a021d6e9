// The HTTP API, built by a function so tests mount the real app. Every error is a JSON body with
// a 4xx/5xx status; nothing a client sends can crash the process.
import fs from 'node:fs';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import cookieParser from 'cookie-parser';
import cors from 'cors';
import helmet from 'helmet';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { HttpError, requireContentType, type AppDeps } from './http';
import { LeadValidationError, parseLead, startLead, type RawLead, type StartOutcome } from './intake';
import { leadRoutes } from './leads';
import { voximplantRoutes } from './voximplantResult';
import { corezoidRoutes } from './corezoid';
import { dashboardRoutes } from './dashboard';
import { dashboardChartRoutes, chartLibraryRoutes } from './dashboardCharts';
import { operatorRoutes } from './operators';
import { LeadBoard } from './leadBoard';
import { systemClock } from '../support/clock';
import { codecRoutes } from './codec';
import { telegramWebhookRoutes } from './telegramWebhook';
import { operatorAuth } from './operatorAuth';
import { captchaOrigins, captchaWidgetHtml } from './captcha';
import { intakeGuards } from './intakeGuards';
import { legacyLeadGuard } from './leadIds';
import { metricsRoute } from './metrics';

export function buildApp(deps: AppDeps): express.Express {
  const { config, logger, metrics, client } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  // The captcha widget is the provider's script, which loads frames and calls home.
  const widget = config.captcha ? captchaOrigins(config.captcha) : [];
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          'script-src': ["'self'", "'unsafe-inline'", ...widget],
          'form-action': ["'self'"],
          ...(widget.length > 0 ? { 'frame-src': widget, 'connect-src': ["'self'", ...widget] } : {}),
        },
      },
    }),
  );
  app.use(cookieParser());

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, boolean> = { temporal: false, worker: deps.isWorkerReady?.() ?? true };
    try {
      await client.workflowService.getSystemInfo({});
      checks.temporal = true;
    } catch {
      checks.temporal = false;
    }
    const ready = Object.values(checks).every(Boolean);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });
  // Otherwise /metrics is only on its loopback port (service/index.ts): here it is a 404.
  if (config.metrics.token) metricsRoute(app, deps, config.metrics.token);

  const guards = intakeGuards(deps);

  const bodyLimit = config.maxBodySize;
  // Browsers may post leads only from the shop's own origins; server-to-server posts carry none.
  const shopOrigins = new Set([...config.allowedOrigins, new URL(config.publicUrl).origin]);
  const allowCors = cors({
    origin: (origin, done) => done(null, !origin || shopOrigins.has(origin)),
    methods: ['POST'],
    credentials: true,
  });
  // CORS only hides the answer from another site's script: a plain form or a no-cors fetch from
  // any page would still post, each visitor a new address for the per-IP limit. A browser names
  // the page it posts from, so a post from a page that is not the shop's is refused unread. The
  // service's own form (its own host) is the shop's too.
  const refuseForeignOrigin = (req: Request, _res: Response, next: NextFunction) => {
    const origin = req.get('origin');
    if (
      origin === undefined ||
      shopOrigins.has(origin) ||
      origin === `${req.protocol}://${req.get('host')}`
    ) {
      next();
      return;
    }
    metrics.refusals.inc({ rule: 'cross_origin' });
    next(
      new HttpError(403, "leads are accepted only from the shop's own pages", {
        details: [{ field: 'origin', message: `${origin.slice(0, 200)} is not in ALLOWED_ORIGINS` }],
      }),
    );
  };
  const legacyLeads = legacyLeadGuard(client, logger);
  app.options('/api/leads', allowCors);
  app.post(
    '/api/leads',
    allowCors,
    refuseForeignOrigin,
    ...guards.beforeBody,
    requireContentType(['application/json', 'application/x-www-form-urlencoded']),
    express.json({ limit: bodyLimit, strict: true }),
    express.urlencoded({ limit: bodyLimit, extended: false, parameterLimit: 50 }),
    async (req: Request, res: Response) => {
      if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) {
        throw new HttpError(400, 'the body must be a JSON object or a form', {
          details: [{ field: 'body', message: 'expected an object of lead fields' }],
        });
      }
      const raw: RawLead = {
        fields: req.body as Record<string, unknown>,
        cookies: (req.cookies ?? {}) as Record<string, string>,
        clientIp: req.ip,
        source: req.is('application/x-www-form-urlencoded') ? 'form' : 'api',
        ...(res.locals.intakeKey === 'valid' ? { proof: 'intake_key' as const } : {}),
      };
      const outcome = await acceptLead(raw, () => guards.requireCaptcha(req, res));
      if (req.is('application/x-www-form-urlencoded') && req.accepts(['json', 'html']) === 'html') {
        // A plain HTML form posted straight here: show the person a page, not JSON.
        res.redirect(303, `/?sent=${encodeURIComponent(outcome.status)}`);
        return;
      }
      res.status(outcome.status === 'started' ? 202 : 200).json(outcome);
    },
  );

  /** Validates, passes `gate` (the captcha), starts the lead; what the client is told. */
  async function acceptLead(raw: RawLead, gate?: () => Promise<void>): Promise<StartOutcome> {
    let lead;
    try {
      lead = await parseLead(raw, config, Date.now());
    } catch (err) {
      if (err instanceof LeadValidationError) {
        metrics.leadsRejected.inc({ reason: err.details[0]?.field ?? 'body' });
        throw new HttpError(400, 'invalid lead', { details: err.details });
      }
      throw err;
    }
    await gate?.();
    try {
      const { notCalled, ...outcome } = await startLead(client, config, lead, legacyLeads);
      if (outcome.status === 'duplicate') metrics.leadsDeduplicated.inc();
      else metrics.leadsReceived.inc({ source: raw.source });
      if (
        outcome.status === 'started' &&
        (notCalled === 'country_not_allowed' ||
          notCalled === 'daily_limit_reached' ||
          notCalled === 'not_a_personal_number')
      )
        metrics.refusals.inc({ rule: notCalled });
      logger.info(
        { ref: outcome.ref, workflowId: outcome.workflowId, status: outcome.status, notCalled },
        'lead intake',
      );
      return outcome;
    } catch (err) {
      metrics.leadsUnavailable.inc();
      logger.error(
        { err: String(err), cause: String((err as Error).cause ?? ''), ref: lead.ref },
        'could not start the lead workflow',
      );
      throw new HttpError(503, 'the lead could not be stored right now; please retry in a few seconds');
    }
  }

  // The Corezoid path carries its own key and comes from the shop's server: no per-IP limit, no captcha.
  const auth = operatorAuth(deps);
  app.use(auth.routes);
  app.use(leadRoutes(deps, auth.requireOperator));
  app.use(voximplantRoutes(deps));
  app.use(corezoidRoutes(deps, (raw) => acceptLead(raw)));
  // One aggregate for every open dashboard and console of this process.
  const board = new LeadBoard({ client, config, logger, clock: deps.clock ?? systemClock });
  app.use(dashboardRoutes(board, auth.requireOperator));
  app.use(dashboardChartRoutes(board, auth.requireOperator));
  app.use(chartLibraryRoutes());
  app.use(operatorRoutes(deps, board, auth.requireOperator, auth.requireOperatorPage));
  app.use(codecRoutes(deps));
  app.use(telegramWebhookRoutes(deps));

  const pages = path.join(__dirname, 'pages');
  const formPage = fs
    .readFileSync(path.join(pages, 'form.html'), 'utf8')
    .replace('<!--captcha-->', captchaWidgetHtml(config.captcha));
  app.get('/', (_req, res) => res.type('html').send(formPage));
  // The pages' shared stylesheet: public, since the login page needs it before anyone logs in.
  app.get('/assets/page.css', (_req, res) => {
    res.set('cache-control', 'public, max-age=3600').sendFile(path.join(pages, 'page.css'));
  });
  app.get('/dashboard', auth.requireOperatorPage, (_req, res) => {
    res.set('cache-control', 'no-store').sendFile(path.join(pages, 'dashboard.html'));
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  // Express 5 passes rejected async handlers here; body-parser errors carry their own status.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof HttpError) {
      res.status(err.status).json({ error: err.message, ...err.body });
      return;
    }
    const status = httpStatusOf(err);
    if (status && status < 500) {
      const type = (err as { type?: string }).type;
      const message =
        type === 'entity.too.large'
          ? `the body is larger than ${bodyLimit}`
          : type === 'entity.parse.failed'
            ? 'the body is not valid JSON'
            : (err as Error).message;
      res
        .status(status)
        .json(
          type === 'entity.parse.failed'
            ? { error: message, details: [{ field: 'body', message: 'is not valid JSON' }] }
            : { error: message },
        );
      return;
    }
    if (err instanceof ServiceError || err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      // Temporal unreachable or overloaded: a retry later will do, nothing was changed.
      logger.warn({ err: String(err), path: req.path }, 'Temporal unavailable');
      res.status(503).json({ error: 'the lead store is unavailable right now; retry in a few seconds' });
      return;
    }
    logger.error({ err: String(err), path: req.path }, 'unhandled error');
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}

function httpStatusOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null) {
    const s =
      (err as { status?: unknown; statusCode?: unknown }).status ??
      (err as { statusCode?: unknown }).statusCode;
    if (typeof s === 'number') return s;
  }
  return undefined;
}
