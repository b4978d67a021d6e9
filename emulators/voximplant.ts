// A local VoxImplant: the Management API's StartScenarios and GetCallHistory with the real wire
// format and auth (account_id + api_key, or a service-account RS256 JWT), plus the robot-call
// scenario itself, which claims its attempt at the claimUrl, dials only after a 200, and posts the
// call's result to the resultUrl from script_custom_data. Like the real call history (see
// PROVIDER-LIMITS), GetCallHistory lists a session only once it has ended, unless told otherwise.
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import axios, { type AxiosInstance } from 'axios';
import { EMULATOR_CREDENTIALS } from './credentials';
import { FaultMode, type EmulatorMode } from './faultMode';

export type { EmulatorMode };
export type CallResult =
  'answered' | 'voicemail' | 'busy' | 'no_answer' | 'unavailable' | 'wrong_number' | 'failed';

export interface ScriptedOutcome {
  result: CallResult;
  /** SIP-style code; null when the scenario has none (not dialled, timed out) */
  code?: number | null;
  duration?: number;
  /** how long the call lasts after it is dialled */
  delayMs?: number;
  report?: 'once' | 'twice' | 'none';
  /** the call goes on until `control.release()`, whatever delayMs says */
  hold?: boolean;
  /**
   * The session ends before it claims its attempt (the scenario crashed, VoxImplant stopped it):
   * nothing is dialled and nothing reported, as a claim that never gets through ends it.
   */
  endsBeforeClaim?: boolean;
}

export interface EmulatedCall {
  callSessionHistoryId: number;
  ruleId: string;
  rawCustomData: string;
  /** script_custom_data parsed as JSON; null when it was not a JSON object */
  customData: Record<string, unknown> | null;
  /** the session's custom data as GetCallHistory shows and filters it */
  sessionCustomData: string;
  outcome: ScriptedOutcome;
  startedAt: Date;
  /** the claim's answer: 'granted' (then dialled), 'refused' with its status, or 'unreachable' */
  claim?: { outcome: 'granted' | 'refused' | 'unreachable' | 'no_claim_url'; status?: number };
  /** when the customer's phone rang: only after a granted claim */
  dialledAt?: Date;
  finishedAt?: Date;
}

export interface ResultReport {
  callSessionHistoryId: number;
  url: string;
  body: { token: unknown; result: CallResult; code: number | null; duration: number };
  ok: boolean;
  status?: number;
  error?: string;
  at: Date;
}

export interface VoximplantEmulatorState {
  calls: EmulatedCall[];
  /** every result POST the scenario made, failed ones included (ok: false) */
  reports: ResultReport[];
  /** every claim POST the scenario made */
  claims: Array<{ callSessionHistoryId: number; status?: number; error?: string; at: Date }>;
  /** every Management API request, by command, including rejected ones */
  requests: Array<{ cmd: string; at: Date }>;
}

export interface VoximplantServiceAccount {
  accountId: string | number;
  keyId: string;
  publicKey: crypto.KeyObject | string;
}

export interface VoximplantEmulatorOptions {
  accountId?: string;
  apiKey?: string;
  ruleIds?: string[];
  serviceAccounts?: VoximplantServiceAccount[];
  /**
   * Emulate a scenario that calls `VoxEngine.customData(callKey)`, so the session's custom data is
   * the callKey. Default false: the session keeps the whole script_custom_data, as scenario.js does.
   */
  scenarioSetsCallKey?: boolean;
  /** client for the scenario's result POSTs */
  http?: AxiosInstance;
  /** first wait between report and claim retries (scenario.js: 1 s, doubling); tests may shorten it */
  reportBackoffMs?: number;
  /** list sessions still in progress in GetCallHistory (default false, as VoxImplant may not) */
  historyShowsRunning?: boolean;
}

export interface VoximplantEmulatorControl {
  /** `times`: how many requests get this mode before it falls back to 'ok' (default: until changed) */
  setMode(mode: EmulatorMode, opts?: { times?: number }): void;
  /** outcomes for the next calls to `phone`, consumed one per call */
  scriptFor(phone: string, outcomes: ScriptedOutcome[]): void;
  setDefaultOutcome(outcome: ScriptedOutcome): void;
  /** StartScenarios answers this long after the scenario started (default 0) */
  setStartAnswerDelay(ms: number): void;
  /** ends the held calls (all, or those to `phone`) with their scripted outcome */
  release(phone?: string): void;
  /** resolves when every scenario started so far has finished reporting */
  settled(): Promise<void>;
  reset(): void;
}

export interface VoximplantEmulator {
  app: express.Express;
  state: VoximplantEmulatorState;
  control: VoximplantEmulatorControl;
}

// The codes scenario.js reports for each outcome by default.
const DEFAULT_CODES: Record<CallResult, number> = {
  answered: 200,
  voicemail: 200,
  busy: 486,
  no_answer: 408,
  unavailable: 480,
  wrong_number: 404,
  failed: 500,
};
const DEFAULT_DURATIONS: Partial<Record<CallResult, number>> = { answered: 12, voicemail: 20 };
const INITIAL_OUTCOME: ScriptedOutcome = { result: 'answered', delayMs: 50 };
const FIRST_SESSION_ID = 1_000_000_001;
// scenario.js retries its report 5 times, waiting 1, 2, 4 and 8 s in between, and its claim until
// the custom data's claimUntil (at most 15 minutes), or seven times over a minute without it (a
// service short of CPU answers late; one restarting after a crash may have granted it and died
// before answering).
const REPORT_TRIES = 5;
const CLAIM_WAITS = [1, 2, 4, 8, 15, 30];
const CLAIM_TRIES_WITHOUT_DEADLINE = CLAIM_WAITS.length + 1;
const CLAIM_PATIENCE_MAX_MS = 15 * 60 * 1000;
const REPORT_BACKOFF_MS = 1000;
const DOWN_PAGE = '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>';

type Params = Record<string, string>;
type ApiAnswer = { status: number; body: unknown };

const apiError = (code: number, msg: string, status = 200): ApiAnswer => ({
  status,
  body: { error: { code, msg } },
});

export function createVoximplantEmulator(opts: VoximplantEmulatorOptions = {}): VoximplantEmulator {
  const reportBackoffMs = opts.reportBackoffMs ?? REPORT_BACKOFF_MS;
  const accountId = opts.accountId ?? EMULATOR_CREDENTIALS.voximplantAccountId;
  const apiKey = opts.apiKey ?? EMULATOR_CREDENTIALS.voximplantApiKey;
  const ruleIds = new Set(opts.ruleIds ?? [EMULATOR_CREDENTIALS.voximplantRuleId]);
  const serviceAccounts = opts.serviceAccounts ?? [];
  const http = opts.http ?? axios.create({ timeout: 5_000 });

  const state: VoximplantEmulatorState = { calls: [], reports: [], claims: [], requests: [] };
  let startAnswerDelayMs = 0;
  const held = new Map<EmulatedCall, () => void>();
  /** Calls released before they were dialled (their claim was still on its way): they do not hold. */
  const released = new Set<EmulatedCall>();
  const faults = new FaultMode();
  let defaultOutcome: ScriptedOutcome = INITIAL_OUTCOME;
  let nextId = FIRST_SESSION_ID;
  let generation = 0;
  const scripts = new Map<string, ScriptedOutcome[]>();
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<void>>();

  function authorized(req: Request, p: Params): boolean {
    const bearer = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
    if (bearer) return verifyJwt(bearer, serviceAccounts);
    return p.account_id === accountId && p.api_key === apiKey;
  }

  async function startScenarios(req: Request, p: Params): Promise<ApiAnswer> {
    if (!p.rule_id) return apiError(101, "Invalid arguments: the 'rule_id' parameter is required");
    if (!ruleIds.has(p.rule_id)) return apiError(147, "The 'rule_id' parameter is invalid");
    const raw = p.script_custom_data ?? '';
    const customData = parseObject(raw);
    const phone = typeof customData?.phone === 'string' ? customData.phone : '';
    const outcome = scripts.get(phone)?.shift() ?? defaultOutcome;
    const call: EmulatedCall = {
      callSessionHistoryId: nextId++,
      ruleId: p.rule_id,
      rawCustomData: raw,
      customData,
      sessionCustomData:
        opts.scenarioSetsCallKey && typeof customData?.callKey === 'string' ? customData.callKey : raw,
      outcome,
      startedAt: new Date(),
    };
    state.calls.push(call);
    playScenario(call);
    if (startAnswerDelayMs > 0) await new Promise((r) => setTimeout(r, startAnswerDelayMs).unref());
    const host = req.get('host') ?? '127.0.0.1';
    const secret = crypto.randomBytes(8).toString('hex');
    return {
      status: 200,
      body: {
        result: 1,
        media_session_access_url: `http://${host}/media/${call.callSessionHistoryId}/${secret}`,
        media_session_access_secure_url: `https://${host}/media/${call.callSessionHistoryId}/${secret}`,
        call_session_history_id: call.callSessionHistoryId,
      },
    };
  }

  function playScenario(call: EmulatedCall): void {
    const startedIn = generation;
    const done = (async () => {
      if (call.outcome.endsBeforeClaim || !(await claim(call)) || startedIn !== generation) return;
      call.dialledAt = new Date();
      await new Promise<void>((resolve) => {
        if (call.outcome.hold && !released.has(call)) {
          held.set(call, resolve);
          return;
        }
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, call.outcome.delayMs ?? INITIAL_OUTCOME.delayMs);
        timer.unref();
        timers.add(timer);
      });
      await report(call);
    })().finally(() => {
      call.finishedAt = new Date();
    });
    running.add(done);
    void done.then(() => running.delete(done));
  }

  /** Like scenario.js: dial only after a 200; retry what a retry may fix, then give up undialled. */
  async function claim(call: EmulatedCall): Promise<boolean> {
    const url = call.customData?.claimUrl;
    if (typeof url !== 'string' || !url) {
      call.claim = { outcome: 'no_claim_url' };
      return false;
    }
    const body = { token: call.customData?.token, sessionId: call.callSessionHistoryId };
    const until = Number(call.customData?.claimUntil);
    const deadline =
      Number.isFinite(until) && until > 0 ? Math.min(until, Date.now() + CLAIM_PATIENCE_MAX_MS) : null;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) {
        let wait = reportBackoffMs * CLAIM_WAITS[Math.min(attempt, CLAIM_WAITS.length) - 1]!;
        if (deadline === null) {
          if (attempt >= CLAIM_TRIES_WITHOUT_DEADLINE) break;
        } else {
          if (Date.now() >= deadline) break;
          wait = Math.min(wait, deadline - Date.now());
        }
        await new Promise((r) => setTimeout(r, wait).unref());
      }
      const entry: VoximplantEmulatorState['claims'][number] = {
        callSessionHistoryId: call.callSessionHistoryId,
        at: new Date(),
      };
      state.claims.push(entry);
      try {
        const res = await http.post(url, body, { validateStatus: () => true });
        entry.status = res.status;
        if (res.status === 200) {
          call.claim = { outcome: 'granted', status: 200 };
          return true;
        }
        if (res.status < 500 && res.status !== 408 && res.status !== 429) {
          call.claim = { outcome: 'refused', status: res.status };
          return false;
        }
      } catch (err) {
        entry.error = (err as Error).message;
      }
    }
    call.claim = { outcome: 'unreachable' };
    return false;
  }

  async function report(call: EmulatedCall): Promise<void> {
    const { outcome } = call;
    const startedIn = generation;
    const times = outcome.report === 'none' ? 0 : outcome.report === 'twice' ? 2 : 1;
    const body = {
      token: call.customData?.token,
      result: outcome.result,
      code: outcome.code === undefined ? DEFAULT_CODES[outcome.result] : outcome.code,
      duration: outcome.duration ?? DEFAULT_DURATIONS[outcome.result] ?? 0,
    };
    const url = call.customData?.resultUrl;
    // Like scenario.js: without a token and a resultUrl there is nowhere to report, so nothing is sent.
    if (typeof url !== 'string' || !url || !body.token) return;
    const id = call.callSessionHistoryId;
    for (let i = 0; i < times; i++) {
      // Like scenario.js: up to REPORT_TRIES posts, backing off, while our endpoint is unreachable,
      // failing (5xx) or asking to slow down (408, 429); any other answer is final.
      for (let attempt = 0; attempt < REPORT_TRIES; attempt++) {
        if (startedIn !== generation) return; // reset() since: this call belongs to an earlier test
        if (attempt > 0)
          await new Promise((r) => setTimeout(r, reportBackoffMs * 2 ** (attempt - 1)).unref());
        const entry: ResultReport = { callSessionHistoryId: id, url, body, ok: false, at: new Date() };
        state.reports.push(entry);
        try {
          const res = await http.post(url, body, { validateStatus: () => true });
          entry.status = res.status;
          entry.ok = res.status >= 200 && res.status < 300;
          if (res.status < 500 && res.status !== 408 && res.status !== 429) break;
        } catch (err) {
          entry.error = (err as Error).message;
        }
      }
    }
  }

  function getCallHistory(p: Params): ApiAnswer {
    if (!p.from_date || !p.to_date)
      return apiError(101, "Invalid arguments: 'from_date' and 'to_date' are required");
    const from = parseApiDate(p.from_date);
    const to = parseApiDate(p.to_date);
    if (from === undefined || to === undefined) return apiError(111, 'Invalid date format');
    const ids = p.call_session_history_id?.split(';').map(Number);
    // The API speaks whole seconds, so compare at that precision.
    const second = (c: EmulatedCall) => Math.floor(c.startedAt.getTime() / 1000) * 1000;
    const rows = state.calls.filter(
      (c) =>
        (opts.historyShowsRunning || c.finishedAt !== undefined) &&
        second(c) >= from &&
        second(c) <= to &&
        (p.call_session_history_custom_data === undefined ||
          c.sessionCustomData === p.call_session_history_custom_data) &&
        (ids === undefined || ids.includes(c.callSessionHistoryId)),
    );
    if (p.desc_order === 'true') rows.reverse();
    const offset = Number(p.offset ?? 0) || 0;
    const count = Math.min(Number(p.count ?? 20) || 20, 1000);
    const page = rows.slice(offset, offset + count).map(historyItem);
    return {
      status: 200,
      body: {
        result: page,
        ...(p.with_total_count === 'false' ? {} : { total_count: rows.length }),
        count: page.length,
        timezone: 'Etc/GMT',
      },
    };
  }

  function historyItem(c: EmulatedCall): Record<string, unknown> {
    const finished = c.finishedAt !== undefined;
    const duration = c.outcome.duration ?? DEFAULT_DURATIONS[c.outcome.result] ?? 0;
    // A session in progress has no duration or finish reason yet.
    return {
      call_session_history_id: c.callSessionHistoryId,
      account_id: Number(accountId),
      application_id: 1,
      application_name: 'speed-to-lead.emulator.voximplant.com',
      rule_name: `rule-${c.ruleId}`,
      user_id: 0,
      start_date: formatApiDate(c.startedAt.getTime()),
      ...(finished ? { duration, finish_reason: 'Normal termination' } : {}),
      initiator_address: '127.0.0.1',
      media_server_address: '127.0.0.1',
      log_file_url: '',
      audio_quality: 'Standard',
      custom_data: c.sessionCustomData,
    };
  }

  async function handle(req: Request, res: Response): Promise<void> {
    const p = collectParams(req);
    const cmd = (typeof req.params.cmd === 'string' ? req.params.cmd : undefined) ?? p.cmd ?? '';
    state.requests.push({ cmd, at: new Date() });
    const answer = await answerFor(req, cmd, p);
    if (typeof answer.body === 'string') res.status(answer.status).type('html').send(answer.body);
    else res.status(answer.status).json(answer.body);
  }

  async function answerFor(req: Request, cmd: string, p: Params): Promise<ApiAnswer> {
    switch (faults.take()) {
      case 'down':
        return { status: 503, body: DOWN_PAGE };
      case 'rate_limit':
        return apiError(429, 'Too Many Requests', 429);
      case 'auth_error':
        return apiError(100, 'Authorization failed');
      case 'ok':
        break;
    }
    if (!cmd) return apiError(102, "Missing 'cmd' parameter");
    if (!authorized(req, p)) return apiError(100, 'Authorization failed');
    if (cmd === 'StartScenarios') return startScenarios(req, p);
    if (cmd === 'GetCallHistory') return getCallHistory(p);
    return apiError(103, 'Unknown command');
  }

  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  // Not VoxImplant's: what the emulated phone network did, for tests that run the emulator in a
  // process of its own (which session rang which customer).
  app.get('/emulator/calls', (_req, res) => {
    res.json(
      state.calls.map((c) => ({
        callSessionHistoryId: c.callSessionHistoryId,
        ref: c.customData?.ref,
        phone: c.customData?.phone,
        claim: c.claim,
        dialled: c.dialledAt !== undefined,
        startedAt: c.startedAt.getTime(),
        finishedAt: c.finishedAt?.getTime(),
      })),
    );
  });
  app.all(['/platform_api/:cmd', '/platform_api', '/:cmd', '/'], handle);

  const control: VoximplantEmulatorControl = {
    setMode(next, o = {}) {
      faults.set(next, o.times);
    },
    scriptFor(phone, outcomes) {
      scripts.set(phone, [...(scripts.get(phone) ?? []), ...outcomes]);
    },
    setDefaultOutcome(outcome) {
      defaultOutcome = outcome;
    },
    setStartAnswerDelay(ms) {
      startAnswerDelayMs = ms;
    },
    release(phone) {
      for (const call of state.calls) {
        if (phone !== undefined && call.customData?.phone !== phone) continue;
        released.add(call);
        held.get(call)?.();
        held.delete(call);
      }
    },
    async settled() {
      while (running.size > 0) await Promise.all([...running]);
    },
    reset() {
      generation += 1;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      running.clear();
      scripts.clear();
      state.calls.length = 0;
      state.reports.length = 0;
      state.claims.length = 0;
      state.requests.length = 0;
      held.clear();
      released.clear();
      startAnswerDelayMs = 0;
      faults.reset();
      defaultOutcome = INITIAL_OUTCOME;
    },
  };

  return { app, state, control };
}

/** Query string and form body together, first value of each, as VoxImplant accepts either. */
function collectParams(req: Request): Params {
  const out: Params = {};
  const add = (source: unknown) => {
    if (typeof source !== 'object' || source === null) return;
    for (const [k, v] of Object.entries(source as Record<string, unknown>)) {
      const first: unknown = Array.isArray(v) ? v[0] : v;
      if (typeof first === 'string' || typeof first === 'number') out[k] = String(first);
    }
  };
  add(req.query);
  add(req.body);
  return out;
}

function verifyJwt(token: string, accounts: VoximplantServiceAccount[]): boolean {
  const [h, p, s] = token.split('.');
  if (!h || !p || !s) return false;
  const header = parseObject(Buffer.from(h, 'base64url').toString('utf8'));
  const payload = parseObject(Buffer.from(p, 'base64url').toString('utf8'));
  if (header?.alg !== 'RS256' || !payload) return false;
  const account = accounts.find((a) => a.keyId === header.kid);
  if (!account || String(payload.iss) !== String(account.accountId)) return false;
  const now = Date.now() / 1000;
  if (typeof payload.exp !== 'number' || payload.exp < now) return false;
  if (typeof payload.iat !== 'number' || payload.iat > now + 60) return false;
  try {
    const signature = Buffer.from(s, 'base64url');
    return crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), account.publicKey, signature);
  } catch {
    return false;
  }
}

function parseObject(text: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** `YYYY-MM-DD HH:mm:ss`, UTC (the emulator's only timezone). */
function parseApiDate(text: string): number | undefined {
  const ms = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(text)
    ? Date.parse(`${text.replace(' ', 'T')}Z`)
    : NaN;
  return Number.isNaN(ms) ? undefined : ms;
}

function formatApiDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
}
