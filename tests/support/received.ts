// What the emulators received for one customer: the outcomes tests assert on.
import type { RunningEmulators } from '../../emulators';

export function received(emulators: () => RunningEmulators) {
  return {
    /** Calls that rang the customer: sessions whose claim was granted. */
    callsTo: (phone: string) =>
      emulators().voximplant.state.calls.filter((c) => c.customData?.phone === phone && c.dialledAt),
    /** Every scenario started for the customer, dialled or not. */
    sessionsFor: (phone: string) =>
      emulators().voximplant.state.calls.filter((c) => c.customData?.phone === phone),
    smsTo: (phone: string) => emulators().smsru.state.sms.filter((s) => s.to === phone),
    crmLeadsFor: (phone: string) =>
      emulators().bitrix24.state.leads.filter((l) => JSON.stringify(l.PHONE ?? '').includes(phone)),
    alertsAbout: (phone: string) => emulators().telegram.state.messages.filter((m) => m.text.includes(phone)),
  };
}
