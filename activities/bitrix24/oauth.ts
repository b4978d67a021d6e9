// The Bitrix24 OAuth token holder. Bitrix24 rotates both tokens on every refresh and a refresh
// token is single-use, so there is one holder per token file in the process, concurrent callers
// share one refresh, and the rotated tokens are persisted (atomically, 0600) before they are
// relied on. Processes sharing DATA_DIR refresh one at a time under a lock file beside the token
// file, and the one that waited adopts the access token the other just stored instead of spending
// the refresh token again. Processes that do not share DATA_DIR cannot coordinate: an
// `invalid_grant` then re-reads the file and retries once only if the token there changed.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AppConfig } from '../../config';
import { logger } from '../../support/logger';
import type { Clock } from '../../support/clock';
import { acquireFileLock, safeJson } from '../../support/fileLock';
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
  /** The access token issued with it, so another process need not refresh to get one. */
  accessToken: z.string().optional(),
  accessExpiresAt: z.number().optional(),
});
type StoredOAuth = z.output<typeof StoredOAuth>;
type Access = { token: string; expiresAt: number };

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
  let fileToken = readStored(file, source)?.refreshToken;
  let refreshToken = fileToken ?? auth.refreshToken;
  let access: Access | undefined;
  let inFlight: Promise<string> | undefined;

  const usable = (a: Access | undefined, rejected?: string): a is Access =>
    !!a && a.token !== rejected && a.expiresAt - EXPIRY_MARGIN_MS > clock.now();

  const refresh = (rejected?: string): Promise<string> =>
    (inFlight ??= lockedRefresh(rejected).finally(() => {
      inFlight = undefined;
    }));

  /** The access token another process stored, if it is newer than `rejected` and still valid. */
  function adoptStored(rejected?: string): string | undefined {
    const stored = readStored(file, source);
    if (stored && stored.refreshToken !== fileToken) refreshToken = fileToken = stored.refreshToken;
    const theirs = stored?.accessToken
      ? { token: stored.accessToken, expiresAt: stored.accessExpiresAt ?? 0 }
      : undefined;
    if (!usable(theirs, rejected)) return undefined;
    access = theirs;
    return theirs.token;
  }

  async function lockedRefresh(rejected?: string): Promise<string> {
    const adopted = adoptStored(rejected);
    if (adopted) return adopted;
    const release = await acquireFileLock(`${file}.lock`, TOKEN_LOCK);
    try {
      // Whoever held the lock before us may have just refreshed.
      return adoptStored(rejected) ?? (await doRefresh(rejected));
    } finally {
      await release();
    }
  }

  async function doRefresh(rejected: string | undefined, retried = false): Promise<string> {
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
      access = { token: tokens.access_token, expiresAt: clock.now() + tokens.expires_in * 1000 };
      const stored: StoredOAuth = {
        refreshToken,
        source,
        updatedAt: new Date(clock.now()).toISOString(),
        accessToken: access.token,
        accessExpiresAt: access.expiresAt,
      };
      if (await persistToken(file, stored)) fileToken = refreshToken;
      log.info({ expiresIn: tokens.expires_in }, 'bitrix24 access token refreshed');
      return access.token;
    }
    const code = readAs(OAuthError, res.data)?.error ?? 'unexpected answer';
    const msg = `Bitrix24 OAuth refresh: ${code} [HTTP ${res.status}]`;
    if (res.status >= 500 || res.status === 429)
      throw ApplicationFailure.retryable(msg, 'Bitrix24Unavailable');
    if (code === 'invalid_grant' && !retried) {
      // Spent by a process that does not share our lock (another host, another DATA_DIR): if it
      // stored its rotation where we can read it, that token is the live one.
      const spent = refreshToken;
      const adopted = adoptStored(rejected);
      if (adopted) return adopted;
      if (refreshToken !== spent) {
        log.warn('bitrix24 refresh token was rotated by another process; retrying with the stored one');
        return doRefresh(rejected, true);
      }
    }
    log.error(
      { status: res.status, error: code },
      'bitrix24 OAuth refresh refused; a new refresh token is needed',
    );
    throw ApplicationFailure.nonRetryable(msg, 'Bitrix24AuthError');
  }

  return {
    async accessToken() {
      if (usable(access)) return access.token;
      return refresh();
    },
    async renew(rejected) {
      if (access && access.token !== rejected) return access.token;
      return refresh(rejected);
    },
  };
}

// A refresh is one HTTP request with a 10 s timeout and one file write; a lock older than this
// was left by a process that died holding it. Waiting gives up (retryably) within the CRM
// activities' 30 s start-to-close timeout.
const TOKEN_LOCK = {
  staleMs: 15_000,
  waitMs: 20_000,
  onTimeout: () =>
    ApplicationFailure.retryable(
      'Bitrix24 OAuth: another process holds the token lock',
      'Bitrix24Unavailable',
    ),
};

function readStored(file: string, source: string): StoredOAuth | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const stored = readAs(StoredOAuth, safeJson(text));
  if (!stored) {
    log.warn({ file }, 'bitrix24 OAuth state file is unreadable; using the configured refresh token');
    return undefined;
  }
  if (stored.source && stored.source !== source) return undefined;
  return stored;
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
