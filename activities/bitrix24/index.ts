// Bitrix24: the REST client (client.ts), the OAuth token holder (oauth.ts) and the CRM activities
// built on them (activities.ts), whose requests the portal's batcher (batcher.ts) sends together.
export * from './activities';
export { createBitrix24Client, type Bitrix24Client, type Bitrix24ClientOptions } from './client';
export { OAUTH_STATE_FILE } from './oauth';
export { createBitrix24Batcher, limitNameOf, type Bitrix24Batcher, type CrmMetrics } from './batcher';
