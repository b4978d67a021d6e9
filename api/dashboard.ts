// The seed's dashboard process: leads per partner and per site, by status, with order totals, for a
// period. Numbers come from Temporal's visibility (the search attributes the workflows keep), so a
// retried activity or a replayed workflow can never count a lead twice.
import { Router } from 'express';
import { z } from 'zod';
import type { Client } from '@temporalio/client';
import { HttpError, parseOr400, type AppDeps } from './http';
import { LeadPartnerKey, LeadSiteKey, LeadStatusKey, OrderAmountKey } from '../workflows/searchAttributes';

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
}

const MAX_LEADS = 50_000;
const query = z.object({
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
});

function bump(groups: Map<string, DashboardGroup>, key: string, status: string, amount: number): void {
  const g = groups.get(key) ?? { key, leads: 0, orderTotal: 0, byStatus: {} };
  g.leads += 1;
  g.orderTotal = Math.round((g.orderTotal + amount) * 100) / 100;
  g.byStatus[status] = (g.byStatus[status] ?? 0) + 1;
  groups.set(key, g);
}

export async function buildDashboard(client: Client, from: Date, to: Date): Promise<Dashboard> {
  const partners = new Map<string, DashboardGroup>();
  const sites = new Map<string, DashboardGroup>();
  const total = { leads: 0, orderTotal: 0, byStatus: {} as Record<string, number> };
  let truncated = false;
  const q = `WorkflowType = 'processLead' AND StartTime >= '${from.toISOString()}' AND StartTime < '${to.toISOString()}'`;
  for await (const wf of client.workflow.list({ query: q })) {
    if (total.leads >= MAX_LEADS) {
      truncated = true;
      break;
    }
    const attrs = wf.typedSearchAttributes;
    const status = attrs.get(LeadStatusKey) ?? 'New';
    const amount = attrs.get(OrderAmountKey) ?? 0;
    total.leads += 1;
    total.orderTotal = Math.round((total.orderTotal + amount) * 100) / 100;
    total.byStatus[status] = (total.byStatus[status] ?? 0) + 1;
    bump(partners, attrs.get(LeadPartnerKey) ?? '(без партнёра)', status, amount);
    bump(sites, attrs.get(LeadSiteKey) ?? '(не указан)', status, amount);
  }
  const sorted = (m: Map<string, DashboardGroup>) =>
    [...m.values()].sort((a, b) => b.leads - a.leads || a.key.localeCompare(b.key));
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    total,
    partners: sorted(partners),
    sites: sorted(sites),
    truncated,
  };
}

export function dashboardRoutes({ client }: AppDeps): Router {
  const router = Router();
  router.get('/api/dashboard', async (req, res) => {
    const period = parseOr400(query, req.query, 'invalid period', () => 'must be an ISO date or date-time');
    const to = period.to ? new Date(period.to) : new Date(Date.now() + 60_000);
    const from = period.from ? new Date(period.from) : new Date(to.getTime() - 30 * 86_400_000);
    if (from >= to) throw new HttpError(400, '"from" must be before "to"');
    res.json(await buildDashboard(client, from, to));
  });
  return router;
}
