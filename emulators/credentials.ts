// What the emulators accept: a provider with no credentials configured is given these, and is
// pointed at its emulator's URL once the emulators listen (withEmulatorUrls).
export const EMULATOR_CREDENTIALS = {
  bitrix24WebhookPath: 'rest/1/emulatorwebhookcode/',
  voximplantAccountId: '1',
  voximplantApiKey: 'emulator-api-key',
  voximplantRuleId: '1',
  smsruApiId: 'EMULATOR-API-ID',
  telegramBotToken: '123456:EMULATOR-TOKEN',
  telegramChatId: '-1000000000001',
} as const;

/** Where an emulated provider points until its emulator's real address is known: nowhere. */
export const EMULATOR_PLACEHOLDER_URL = 'http://emulator.invalid';
