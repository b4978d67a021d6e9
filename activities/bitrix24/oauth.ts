// The Bitrix24 OAuth token holder. Bitrix24 rotates both tokens on every refresh and a refresh
// token is single-use, so there is one holder per token file in the process, concurrent callers
// share one refresh, and the rotated refresh token is persisted (atomically, 0600) before it is
// relied on. Another process sharing DATA_DIR may rotate it too: the file is re-read before each
// refresh.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../../config';
import { logger } from '../../support/logger';
import type { Clock } from '../../support/clock';
import { readAs, type ProviderHttp } from '../http';

type OAuthConfig = Extract<AppConfig['bitrix24']['auth'], { kind: 'oauth' }>;

export const OAUTH_STATE_FILE = 'bitrix24-oauth.json';
// Refreshing a minute early means a call rarely pays for an expired_token round trip.
const EXPIRY_MARGIN_MS = 60_000;
const log = logger.child({ component: 'bitrix24' });

/** Raised by one request so the client can refresh and retry; never leaves the client. */
export class ExpiredToken extends Error {}

export interface OAuthSession {
  accessToken(): Promise<string>;
  /** A token valid after `rejected` was refused as expired; refreshes at most once for all callers. */
  renew(rejected: string): Promise<string>;
}

const TokenAnswer = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  expires_in: z.number(),
});
const OAuthError = z.object({ error: z.string() });
const StoredOAuth = z.object({
  refreshToken: z.string(),
  /** Hash of the configured refresh token this one descends from; a new configured token wins. */
  source: z.string().optional(),
  updatedAt: z.string().optional(),
});
type StoredOAuth = z.output<typeof StoredOAuth>;

const sessions = new Map<string, OAuthSession>();
export function sharedOAuthSession(
  auth: OAuthConfig,
  dataDir: string,
  request: ProviderHttp,
  clock: Clock,
): OAuthSession {
  const file = path.resolve(dataDir, OAUTH_STATE_FILE);
  const key = `${file}#${auth.portalUrl}#${auth.clientId}`;
  let session = sessions.get(key);
  if (!session) sessions.set(key, (session = createOAuthSession(auth, file, request, clock)));
  return session;
}

function createOAuthSession(
  auth: OAuthConfig,
  file: string,
  request: ProviderHttp,
  clock: Clock,
): OAuthSession {
  const source = crypto.createHash('sha256').update(auth.refreshToken).digest('hex').slice(0, 16);
  // What the file held when last read or written: a different value there later means another
  // process rotated the token; the same value means ours is at least as new.
  let fileToken = readStoredToken(file, source);
  let refreshToken = fileToken ?? auth.refreshToken;
  let access: { token: string; expiresAt: number } | undefined;
  let inFlight: Promise<string> | undefined;

  const refresh = (): Promise<string> =>
    (inFlight ??= doRefresh().finally(() => {
      inFlight = undefined;
    }));

  async function doRefresh(): Promise<string> {
    const onDisk = readStoredToken(file, source);
    if (onDisk && onDisk !== fileToken) refreshToken = fileToken = onDisk;
    const res = await request({
      method: 'GET',
      url: `${auth.oauthUrl}oauth/token/`,
      what: 'OAuth refresh',
      params: {
        grant_type: 'refresh_token',
        client_id: auth.clientId,
        client_secret: auth.clientSecret,
        refresh_token: refreshToken,
      },
    });
    const tokens = res.status === 200 ? readAs(TokenAnswer, res.data) : undefined;
    if (tokens) {
      refreshToken = tokens.refresh_token;
      if (
        await persistToken(file, { refreshToken, source, updatedAt: new Date(clock.now()).toISOString() })
      ) {
        fileToken = refreshToken;
      }
      access = { token: tokens.access_token, expiresAt: clock.now() + tokens.expires_in * 1000 };
      log.info({ expiresIn: tokens.expires_in }, 'bitrix24 access token refreshed');
      return access.token;
    }
    const code = readAs(OAuthError, res.data)?.error ?? 'unexpected answer';
    const msg = `Bitrix24 OAuth refresh: ${code} [HTTP ${res.status}]`;
    if (res.status >= 500 || res.status === 429)
      throw ApplicationFailure.retryable(msg, 'Bitrix24Unavailable');
    log.error(
      { status: res.status, error: code },
      'bitrix24 OAuth refresh refused; a new refresh token is needed',
    );
    throw ApplicationFailure.nonRetryable(msg, 'Bitrix24AuthError');
  }

  return {
    async accessToken() {
      if (access && access.expiresAt - EXPIRY_MARGIN_MS > clock.now()) return access.token;
      return refresh();
    },
    async renew(rejected) {
      if (access && access.token !== rejected) return access.token;
      return refresh();
    },
  };
}

function readStoredToken(file: string, source: string): string | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  let stored: StoredOAuth | undefined;
  try {
    stored = readAs(StoredOAuth, JSON.parse(text));
  } catch {
    // not JSON: same as a file of another shape
  }
  if (!stored) {
    log.warn({ file }, 'bitrix24 OAuth state file is unreadable; using the configured refresh token');
    return undefined;
  }
  if (stored.source && stored.source !== source) return undefined;
  return stored.refreshToken;
}

async function persistToken(file: string, data: StoredOAuth): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const fh = await fs.promises.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(data));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
    // The rename itself must reach the disk for the token to survive a power cut; best effort,
    // since some file systems refuse to fsync a directory.
    const dir = await fs.promises.open(path.dirname(file), 'r').catch(() => undefined);
    await dir?.sync().catch(() => undefined);
    await dir?.close();
    return true;
  } catch (err) {
    // The old refresh token is already void, so failing the call would lose the new one too; it
    // stays in memory and the next refresh tries to persist again.
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    log.error({ file, err: (err as Error).message }, 'could not persist the rotated Bitrix24 refresh token');
    return false;
  }
}
