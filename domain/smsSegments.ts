// How many SMS segments (each one paid) a text takes. GSM-7 text: 160 septets in one segment,
// 153 in each of several, the extension table's characters (€ [ ] { } | ^ ~ \) counting as two;
// any character outside GSM-7 turns the whole text into UCS-2: 70 UTF-16 code units, 67 each of
// several. Twilio's calculator does the counting (with its encoding tables); kept apart from
// customerText so the workflow bundle does not carry it.
import { SegmentedMessage } from 'sms-segments-calculator';

export interface SmsSize {
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
}

export function smsSize(text: string): SmsSize {
  const message = new SegmentedMessage(text, 'auto');
  return { encoding: message.encodingName, segments: message.segmentsCount };
}
