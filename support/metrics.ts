// Prometheus metrics of the service (prom-client); the Temporal SDK's own worker metrics are
// exported by the Runtime and appended at /metrics.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    leadsReceived: new Counter({
      name: 'stl_leads_received_total',
      help: 'Leads accepted and started, by intake source',
      labelNames: ['source'] as const,
      registers: [registry],
    }),
    leadsDeduplicated: new Counter({
      name: 'stl_leads_deduplicated_total',
      help: 'Leads refused because a lead with the same ref is in progress',
      registers: [registry],
    }),
    leadsRejected: new Counter({
      name: 'stl_leads_rejected_total',
      help: 'Leads rejected as invalid, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    leadsUnavailable: new Counter({
      name: 'stl_leads_unavailable_total',
      help: 'Leads answered 503 because Temporal could not durably start them',
      registers: [registry],
    }),
    refusals: new Counter({
      name: 'stl_refusals_total',
      help: 'Requests refused, and leads accepted but not called, by the protection rule that decided it',
      labelNames: ['rule'] as const,
      registers: [registry],
    }),
    captchaUnverified: new Counter({
      name: 'stl_captcha_unverified_total',
      help: 'Browser leads let through because the captcha provider could not give a verdict',
      registers: [registry],
    }),
    callResults: new Counter({
      name: 'stl_call_results_total',
      help: 'Call reports accepted from the VoxImplant scenario, by result',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    callsPlaced: new Counter({
      name: 'stl_calls_placed_total',
      help: 'StartScenarios requests that started a call',
      registers: [registry],
    }),
    callClaimsGranted: new Counter({
      name: 'stl_call_claims_granted_total',
      help: 'Claims granted to the call scenario, which dials only after one (a session asking again counts again)',
      registers: [registry],
    }),
    smsSent: new Counter({
      name: 'stl_sms_sent_total',
      help: 'SMS accepted by the gateway',
      registers: [registry],
    }),
    smsAccountErrors: new Counter({
      name: 'stl_sms_account_errors_total',
      help: 'SMS not sent because of the SMS account (auth, no_money, sender_not_approved, daily_limit)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    manualHandling: new Counter({
      name: 'stl_manual_handling_total',
      help: 'Seller alerts for leads that need a person, by reason',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    intakeToCall: new Histogram({
      name: 'stl_intake_to_call_request_seconds',
      help: 'Time from accepting a lead to its first StartScenarios request',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 3600, 43200],
      registers: [registry],
    }),
    crmLeadsWaiting: new Gauge({
      name: 'stl_crm_leads_waiting',
      help: 'Leads in this process waiting for their CRM lead to be added (queued for a Bitrix24 batch)',
      registers: [registry],
    }),
    alertsWaiting: new Gauge({
      name: 'stl_alerts_waiting',
      help: 'Seller alerts in this process waiting to be delivered to Telegram',
      registers: [registry],
    }),
    intakeToCrmLead: new Histogram({
      name: 'stl_intake_to_crm_lead_seconds',
      help: 'Time from accepting a lead to its CRM lead existing in Bitrix24',
      buckets: PROVIDER_LAG_BUCKETS,
      registers: [registry],
    }),
    intakeToAlert: new Histogram({
      name: 'stl_intake_to_alert_seconds',
      help: "Time from accepting a lead to the sellers' new-lead alert being delivered",
      buckets: PROVIDER_LAG_BUCKETS,
      registers: [registry],
    }),
  };
}

// From "at once" to "the portal was down for an hour".
const PROVIDER_LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The rules of `stl_refusals_total`: answers of 401, 403 and 429, Telegram button presses not taken,
 * and leads accepted but neither called nor texted.
 */
export type RefusalRule =
  | 'operator_auth'
  | 'operator_login'
  | 'intake_key'
  | 'ip_rate_limit'
  | 'captcha'
  | 'cross_origin'
  | 'not_a_personal_number'
  | 'telegram_chat'
  | 'telegram_operator'
  | 'telegram_signature'
  | 'country_not_allowed'
  | 'daily_limit_reached';
