// One worker of tests/bitrix24.test.ts's token-refresh race, in a process of its own: a Bitrix24
// client on the OAuth emulator at argv[2] with the token file in DATA_DIR argv[3]. It says
// "ready", makes one CRM call when the test writes a line to its stdin, prints the result as one
// JSON line and exits.
import readline from 'node:readline';
import { createBitrix24Client, Rows } from '../../activities/bitrix24/client';
import { BITRIX24_EMULATOR_DEFAULTS } from '../../emulators/bitrix24';

const [baseUrl, dataDir] = process.argv.slice(2) as [string, string];
const crm = createBitrix24Client(
  {
    mode: 'emulator',
    auth: {
      kind: 'oauth',
      portalUrl: `${baseUrl}/`,
      oauthUrl: `${baseUrl}/`,
      clientId: BITRIX24_EMULATOR_DEFAULTS.clientId,
      clientSecret: BITRIX24_EMULATOR_DEFAULTS.clientSecret,
      refreshToken: BITRIX24_EMULATOR_DEFAULTS.refreshToken,
    },
    partnerEntity: 'company',
    partnerField: 'UF_CRM_PARTNER_CODE',
    requestsPerSecond: 50,
    burst: 50,
    partnerCacheTtlMs: 0,
  },
  { dataDir },
);

process.stdout.write('ready\n');
readline.createInterface({ input: process.stdin }).once('line', () => {
  crm.call('crm.lead.list', {}, Rows).then(
    (rows) => {
      process.stdout.write(`${JSON.stringify({ ok: true, rows: rows.length })}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ ok: false, error: String(err) })}\n`);
      process.exit(0);
    },
  );
});
