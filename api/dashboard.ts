// The seed's dashboard process: leads per partner and per site, by status, with order totals, for a
// period. Numbers come from Temporal's visibility (the search attributes the workflows keep), so a
// retried activity or a replayed workflow can never count a lead twice; they are read once per
// refresh interval for every open tab (api/leadBoard.ts), and `asOf` says when.
import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import { parseOr400 } from './http';
import type { LeadBoard, LeadRow, PeriodLeads } from './leadBoard';

export interface DashboardGroup {
  key: string;
  leads: number;
  orderTotal: number;
  byStatus: Record<string, number>;
}

export interface Dashboard {
  from: string;
  to: string;
  total: { leads: number; orderTotal: number; byStatus: Record<string, number> };
  partners: DashboardGroup[];
  sites: DashboardGroup[];
  truncated: boolean;
  /** when visibility was read for these numbers */
  asOf: string;
}

const query = z.object({
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
});

function bump(groups: Map<string, DashboardGroup>, key: string, row: LeadRow): void {
  const g = groups.get(key) ?? { key, leads: 0, orderTotal: 0, byStatus: {} };
  g.leads += 1;
  g.orderTotal = Math.round((g.orderTotal + row.orderAmount) * 100) / 100;
  g.byStatus[row.status] = (g.byStatus[row.status] ?? 0) + 1;
  groups.set(key, g);
}

export function summarise({ rows, from, to, asOf, truncated }: PeriodLeads): Dashboard {
  const partners = new Map<string, DashboardGroup>();
  const sites = new Map<string, DashboardGroup>();
  const total = { leads: 0, orderTotal: 0, byStatus: {} as Record<string, number> };
  for (const row of rows) {
    total.leads += 1;
    total.orderTotal = Math.round((total.orderTotal + row.orderAmount) * 100) / 100;
    total.byStatus[row.status] = (total.byStatus[row.status] ?? 0) + 1;
    bump(partners, row.partner ?? '(без партнёра)', row);
    bump(sites, row.site ?? '(не указан)', row);
  }
  const sorted = (m: Map<string, DashboardGroup>) =>
    [...m.values()].sort((a, b) => b.leads - a.leads || a.key.localeCompare(b.key));
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    total,
    partners: sorted(partners),
    sites: sorted(sites),
    truncated,
    asOf: new Date(asOf).toISOString(),
  };
}

export function dashboardRoutes(board: LeadBoard, requireOperator: RequestHandler): Router {
  const router = Router();
  router.get('/api/dashboard', requireOperator, async (req, res) => {
    const p = parseOr400(query, req.query, 'invalid period', () => 'must be an ISO date or date-time');
    const leads = await board.leads({
      ...(p.from ? { from: new Date(p.from) } : {}),
      ...(p.to ? { to: new Date(p.to) } : {}),
    });
    res.json(await board.view(`dashboard|${leads.key}`, () => summarise(leads)));
  });
  return router;
}
