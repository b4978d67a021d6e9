// What the emulators received for one customer: the outcomes tests assert on.
import type { RunningEmulators } from '../../emulators';

export function received(emulators: () => RunningEmulators) {
  return {
    callsTo: (phone: string) =>
      emulators().voximplant.state.calls.filter((c) => c.customData?.phone === phone),
    smsTo: (phone: string) => emulators().smsru.state.sms.filter((s) => s.to === phone),
    crmLeadsFor: (phone: string) =>
      emulators().bitrix24.state.leads.filter((l) => JSON.stringify(l.PHONE ?? '').includes(phone)),
    alertsAbout: (phone: string) => emulators().telegram.state.messages.filter((m) => m.text.includes(phone)),
  };
}
