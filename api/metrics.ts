// /metrics: our counters and the Temporal SDK's, as Prometheus text. They tell a stranger how many
// leads the shop takes and which guards fire, so they are not on the internet-facing API port: a
// loopback port of their own (METRICS_PORT), or the API port only for METRICS_TOKEN's bearer.
import express, { type Request, type Response } from 'express';
import { bearerToken } from './operatorAuth';
import { safeEqual } from '../domain/safeEqual';
import type { AppDeps } from './http';

type MetricsDeps = Pick<AppDeps, 'metrics' | 'extraMetrics'>;

function serveMetrics({ metrics, extraMetrics }: MetricsDeps) {
  return async (_req: Request, res: Response): Promise<void> => {
    const own = await metrics.registry.metrics();
    const sdk = extraMetrics ? await extraMetrics().catch(() => '') : '';
    res.type(metrics.registry.contentType).send(`${own}\n${sdk}`);
  };
}

/** GET /metrics on the API's app, for `Authorization: Bearer <token>` only. */
export function metricsRoute(app: express.Express, deps: MetricsDeps, token: string): void {
  const serve = serveMetrics(deps);
  app.get('/metrics', async (req, res) => {
    if (!safeEqual(bearerToken(req) ?? '', token)) {
      res.set('www-authenticate', 'Bearer realm="metrics"');
      res.status(401).json({ error: '/metrics needs "Authorization: Bearer <METRICS_TOKEN>"' });
      return;
    }
    await serve(req, res);
  });
}

/** The app of the metrics port: GET /metrics, nothing else. */
export function metricsApp(deps: MetricsDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', serveMetrics(deps));
  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });
  return app;
}
