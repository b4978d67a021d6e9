// The pure parts of the dashboard's charts: the time to the first call read from a lead's history,
// and the per-hour / per-day buckets in the operator's time zone.
import { TypedSearchAttributes } from '@temporalio/common';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { leadsOverTime, reachedShare, secondsToFirstCall } from '../api/dashboardCharts';
import { toLeadRow, type LeadRow } from '../api/leadBoard';
import { LeadPartnerKey, LeadStatusKey } from '../workflows/searchAttributes';
import type { LeadState } from '../workflows/types';

const state = (history: LeadState['history']): LeadState => ({
  ref: 'r',
  status: 'Answered',
  attempts: 1,
  nightSmsSent: false,
  history,
});

test('the time to the first call runs from the intake event to the first claimed attempt', () => {
  const t0 = Date.UTC(2026, 11, 1, 9);
  expect(
    secondsToFirstCall(
      state([
        { at: t0, what: 'заявка принята (api)' },
        { at: t0 + 500, what: 'лид в CRM: 7' },
        { at: t0 + 1500, what: 'звонок, попытка 1 (сессия 5)' },
        { at: t0 + 9000, what: 'звонок, попытка 2' },
      ]),
    ),
  ).toBe(1.5);
  // Not called yet (asleep until morning): no value, rather than a zero that would flatter the median.
  expect(secondsToFirstCall(state([{ at: t0, what: 'заявка принята (api)' }]))).toBeUndefined();
});

/** A lead as visibility lists it, reduced to the row the charts count. */
function lead(start: string, status: string, partner?: string): LeadRow {
  return toLeadRow({
    workflowId: `lead-${start}`,
    runId: 'run',
    status: { name: 'RUNNING' },
    startTime: new Date(start),
    typedSearchAttributes: new TypedSearchAttributes([
      { key: LeadStatusKey, value: status },
      ...(partner ? [{ key: LeadPartnerKey, value: partner }] : []),
    ]),
  } as unknown as WorkflowExecutionInfo);
}

test('days are the operator’s calendar days and hours are whole UTC hours', () => {
  const leads = [
    lead('2026-12-01T13:30:00Z', 'Answered', 'p'), // 1 Dec 23:30 in Vladivostok (UTC+10)
    lead('2026-12-01T14:10:00Z', 'Answered', 'p'), // 2 Dec 00:10 there
    lead('2026-12-01T14:50:00Z', 'ManualHandling'),
  ];
  const p = {
    from: new Date('2026-11-30T14:00:00Z'),
    to: new Date('2026-12-02T14:00:00Z'),
    tz: 'Asia/Vladivostok',
  };
  const { daily, hourly } = leadsOverTime(leads, p);
  expect(daily.buckets).toEqual(['2026-12-01', '2026-12-02']);
  expect(daily.byOutcome).toEqual({ Answered: [1, 1], ManualHandling: [0, 1] });
  const h14 = hourly.buckets.indexOf(Date.parse('2026-12-01T14:00:00Z') / 1000);
  expect(hourly.byOutcome.Answered![h14]).toBe(1);
  expect(hourly.byOutcome.ManualHandling![h14]).toBe(1);
  expect(hourly.byOutcome.Answered![h14 - 1]).toBe(1);

  const reached = reachedShare(leads, p);
  expect(reached.partners).toEqual([
    { key: 'p', leads: 2, reached: 2, share: 1 },
    { key: '(без партнёра)', leads: 1, reached: 0, share: 0 },
  ]);
});
