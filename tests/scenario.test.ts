// Runs voximplant/scenario.js against a stand-in for the VoxEngine globals and checks the report
// it posts for each call outcome. The fakes follow the event names and shapes of VoxEngine's
// own type declarations (CallEvents.*, AMD.*, Net.httpRequestAsync, ...).
import fs from 'node:fs';
import path from 'node:path';

const SCENARIO_SOURCE = fs.readFileSync(path.join(__dirname, '..', 'voximplant', 'scenario.js'), 'utf8');

const CallEvents = {
  Connected: 'Call.Connected',
  Disconnected: 'Call.Disconnected',
  Failed: 'Call.Failed',
  PlaybackFinished: 'Call.PlaybackFinished',
} as const;

const AppEvents = {
  Started: 'Application.Started',
  Terminating: 'Application.Terminating',
  Terminated: 'Application.Terminated',
} as const;

const Modules = { AI: 'ai', ASR: 'asr', Recorder: 'recorder' } as const;

const AMD_EVENTS = {
  DetectionComplete: 'AMD.Events.DetectionComplete',
  DetectionError: 'AMD.Events.DetectionError',
} as const;

type ResultClass = 'HUMAN' | 'VOICEMAIL' | 'TIMEOUT' | 'CALL_ENDED';

/**
 * VoiceList as current VoxEngine declares it (the namespaces the scenario may use; the values are
 * opaque Voice objects there, strings here).
 */
const VOICE_LIST = {
  YandexV3: { ru_RU_alena: 'yandexv3:ru_RU_alena', ru_RU_filipp: 'yandexv3:ru_RU_filipp' },
  Yandex: {
    Neural: { ru_RU_alena: 'yandex-neural:ru_RU_alena', ru_RU_filipp: 'yandex-neural:ru_RU_filipp' },
  },
  Default: { en_US_Female: 'default:en_US_Female', ru_RU_Female: 'default:ru_RU_Female' },
  Amazon: { en_US_Joanna: 'amazon:en_US_Joanna', ru_RU_Tatyana: 'amazon:ru_RU_Tatyana' },
};
const VOICE = VOICE_LIST.YandexV3.ru_RU_alena;

type Listener = (event: object) => void;

class Emitter {
  private readonly listeners = new Map<string, Listener[]>();

  addEventListener(name: string, callback: Listener): void {
    if (typeof callback !== 'function') throw new Error(`listener for ${name} is not a function`);
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), callback]);
  }

  removeEventListener(name: string, callback?: Listener): void {
    const kept = callback ? (this.listeners.get(name) ?? []).filter((l) => l !== callback) : [];
    this.listeners.set(name, kept);
  }

  emit(name: string, event: object): void {
    for (const listener of this.listeners.get(name) ?? []) listener(event);
  }

  listenerCount(name: string): number {
    return this.listeners.get(name)?.length ?? 0;
  }
}

interface AmdParameters {
  model: string;
  timeout?: number;
}

class FakeDetector extends Emitter {
  constructor(readonly parameters: AmdParameters) {
    super();
  }
}

interface CallPstnParameters {
  amd?: FakeDetector;
}

interface SayParameters {
  voice?: string;
}

class FakeCall extends Emitter {
  state: 'progressing' | 'connected' | 'ended' = 'progressing';
  readonly said: Array<{ text: string; parameters?: SayParameters }> = [];
  readonly played: string[] = [];
  hangups = 0;

  constructor(
    readonly number: string,
    readonly callerId: string,
    readonly parameters?: CallPstnParameters,
  ) {
    super();
  }

  id(): string {
    return 'call-1';
  }

  say(text: string, parameters?: SayParameters): void {
    this.said.push({ text, parameters });
  }

  startPlayback(url: string): void {
    this.played.push(url);
  }

  hangup(): void {
    this.hangups += 1;
    if (this.state === 'ended') return;
    this.state = 'ended';
    // VoxEngine fires Disconnected for our own hangup too, after the call returns.
    void Promise.resolve().then(() => this.emit(CallEvents.Disconnected, { call: this, reason: 'Normal' }));
  }
}

interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  postData?: string;
  timeout?: number;
}

interface HttpRequestResult {
  code: number;
  text?: string;
  error?: string;
}

interface Report {
  token: string;
  result: string;
  code: number | null;
  duration: number;
}

interface Post<Body = Report> {
  url: string;
  options: HttpRequestOptions;
  at: number;
  body: Body;
}

interface ClaimBody {
  token: string;
  sessionId: number | string | null;
}

/** A result resolves the request; a promise settles it when the test says; see Harness.answers. */
type Answer = HttpRequestResult | Promise<HttpRequestResult> | string;

interface HarnessOptions {
  /** The VoiceList global; default VOICE_LIST. */
  voiceList?: object;
  /** The Started event's sessionId; default 4242. */
  sessionId?: number;
}

/** A VoxEngine session: the globals the scenario sees, and handles to drive and inspect it. */
class Harness {
  readonly engine = new Emitter();
  readonly logs: string[] = [];
  readonly required: string[] = [];
  readonly detectors: FakeDetector[] = [];
  readonly calls: FakeCall[] = [];
  /** The reports: requests to RESULT_URL. */
  readonly posts: Post[] = [];
  /** The claims: requests to CLAIM_URL. */
  readonly claims: Array<Post<ClaimBody>> = [];
  /** What happened, in order: 'claim', 'dial', 'report'. */
  readonly timeline: string[] = [];
  /**
   * Answers to the next reports, in order, then 200: a result resolves the request, 'hang' never
   * settles it, any other string rejects it with that message.
   */
  readonly answers: Answer[] = [];
  /** Answers to the next claims, the same way; then 200. */
  readonly claimAnswers: Answer[] = [];
  terminateCalls = 0;
  terminated = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly customData: string,
    private readonly options: HarnessOptions = {},
  ) {}

  get call(): FakeCall {
    const call = this.calls[0];
    if (!call) throw new Error('the scenario placed no call');
    return call;
  }

  get detector(): FakeDetector {
    const detector = this.detectors[0];
    if (!detector) throw new Error('the scenario created no detector');
    return detector;
  }

  get reports(): Report[] {
    return this.posts.map((p) => p.body);
  }

  /**
   * Loads the scenario as VoxEngine would, fires AppEvents.Started, and lets the requests answered
   * at once (the claim, by default) settle.
   */
  async start(): Promise<this> {
    const globals: Record<string, unknown> = {
      VoxEngine: {
        addEventListener: (name: string, cb: Listener) => this.engine.addEventListener(name, cb),
        removeEventListener: (name: string, cb?: Listener) => this.engine.removeEventListener(name, cb),
        customData: () => this.customData,
        callPSTN: (number: string, callerId: string, parameters?: CallPstnParameters) => {
          const call = new FakeCall(number, callerId, parameters);
          this.calls.push(call);
          this.timeline.push('dial');
          return call;
        },
        terminate: () => this.terminate(),
      },
      CallEvents,
      AppEvents,
      Modules,
      AMD: {
        create: (parameters: AmdParameters) => {
          const detector = new FakeDetector(parameters);
          this.detectors.push(detector);
          return detector;
        },
        Events: AMD_EVENTS,
        Model: { BR: 'br', KZ: 'kz', RU: 'ru', US: 'us' },
        ResultClass: { HUMAN: 'HUMAN', VOICEMAIL: 'VOICEMAIL', TIMEOUT: 'TIMEOUT', CALL_ENDED: 'CALL_ENDED' },
      },
      VoiceList: this.options.voiceList ?? VOICE_LIST,
      Net: { httpRequestAsync: (url: string, options: HttpRequestOptions) => this.request(url, options) },
      Logger: { write: (message: string) => this.logs.push(String(message)) },
      require: (module: string) => {
        this.required.push(module);
      },
      // Timers stop with the session, as in VoxEngine after AppEvents.Terminating.
      setTimeout: (fn: () => void, ms: number) => setTimeout(() => !this.terminated && fn(), ms),
      clearTimeout: (id: ReturnType<typeof setTimeout>) => clearTimeout(id),
    };
    const names = Object.keys(globals);
    const run = new Function(...names, SCENARIO_SOURCE) as (...args: unknown[]) => void;
    run(...names.map((n) => globals[n]));
    this.engine.emit(AppEvents.Started, {
      accessURL: 'http://media/1',
      accessSecureURL: 'https://media/1',
      accountId: 1,
      applicationId: 2,
      logURL: 'https://logs/1',
      sessionId: this.options.sessionId ?? 4242,
    });
    await wait(0);
    return this;
  }

  private request(url: string, options: HttpRequestOptions): Promise<HttpRequestResult> {
    const at = Date.now() - this.startedAt;
    const body: unknown = JSON.parse(options.postData ?? 'null');
    let answer: Answer | undefined;
    if (url === CLAIM_URL) {
      this.claims.push({ url, options, at, body: body as ClaimBody });
      this.timeline.push('claim');
      answer = this.claimAnswers.shift();
    } else {
      this.posts.push({ url, options, at, body: body as Report });
      this.timeline.push('report');
      answer = this.answers.shift();
    }
    answer ??= { code: 200, text: '{"ok":true}' };
    if (answer instanceof Promise) return answer;
    if (answer === 'hang') return new Promise<HttpRequestResult>(() => undefined);
    return typeof answer === 'string' ? Promise.reject(new Error(answer)) : Promise.resolve(answer);
  }

  private terminate(): void {
    this.terminateCalls += 1;
    if (this.terminated) return;
    this.engine.emit(AppEvents.Terminating, {});
    this.terminated = true;
    this.engine.emit(AppEvents.Terminated, {});
  }

  // --- what the platform, the network and the callee do ---

  /** VoxImplant ends the session itself (limits, an operator stopping it). */
  platformTerminates(): void {
    this.engine.emit(AppEvents.Terminating, {});
    this.terminated = true;
    this.engine.emit(AppEvents.Terminated, {});
  }

  connect(): void {
    this.call.state = 'connected';
    this.call.emit(CallEvents.Connected, { call: this.call, headers: {} });
  }

  detect(resultClass: ResultClass): void {
    this.detector.emit(AMD_EVENTS.DetectionComplete, {
      amd: this.detector,
      call: this.call,
      callId: this.call.id(),
      resultClass,
      confidence: 90,
    });
  }

  playbackFinished(error?: string): void {
    this.call.emit(CallEvents.PlaybackFinished, error ? { call: this.call, error } : { call: this.call });
  }

  fail(code: number, reason: string): void {
    this.call.state = 'ended';
    this.call.emit(CallEvents.Failed, { call: this.call, code, reason, headers: {} });
  }

  calleeHangsUp(): void {
    this.call.state = 'ended';
    this.call.emit(CallEvents.Disconnected, { call: this.call, reason: 'Normal', duration: 0, cost: 0 });
  }
}

const RESULT_URL = 'https://shop.example/api/voximplant/result';
const CLAIM_URL = 'https://shop.example/api/voximplant/claim';
const TOKEN = 'eyJ3ZiI6InJvYm90LWNhbGwtMSIsImEiOjEsImV4cCI6OTk5OTk5OTk5OX0.c2lnbmF0dXJl';

function customData(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    phone: '79161234567',
    ref: '203.0.113.7',
    name: 'Иван',
    token: TOKEN,
    resultUrl: RESULT_URL,
    claimUrl: CLAIM_URL,
    attempt: 1,
    callerId: '74951234567',
    ...extra,
  });
}

/** Lets fake time pass, running the timers and promise callbacks due in it. */
async function wait(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

function expectSingleReport(h: Harness, report: Omit<Report, 'token'>): void {
  expect(h.reports).toEqual([{ token: TOKEN, ...report }]);
  const post = h.posts[0];
  expect(post?.url).toBe(RESULT_URL);
  expect(post?.options.method).toBe('POST');
  expect(post?.options.headers).toEqual({ 'Content-Type': 'application/json' });
  expect(h.terminateCalls).toBeGreaterThanOrEqual(1);
  expect(h.terminated).toBe(true);
}

beforeEach(() => {
  jest.useFakeTimers({ now: new Date('2025-06-02T10:00:00Z') });
});

afterEach(() => {
  jest.useRealTimers();
});

describe('placing the call', () => {
  test('dials the digits with the caller ID and a Russian answering-machine detector attached', async () => {
    const h = await new Harness(customData()).start();

    expect(h.detectors).toHaveLength(1);
    expect(h.detector.parameters).toEqual({ model: 'ru', timeout: 6500 });
    expect(h.detector.listenerCount(AMD_EVENTS.DetectionComplete)).toBe(1);
    expect(h.calls).toHaveLength(1);
    expect(h.call.number).toBe('79161234567');
    expect(h.call.callerId).toBe('74951234567');
    expect(h.call.parameters?.amd).toBe(h.detector);
    // AMD is a global in current VoxEngine: no module needs loading for it.
    expect(h.required).toEqual([]);
    expect(h.timeline).toEqual(['claim', 'dial']);
    expect(h.posts).toEqual([]);
  });
});

describe('the claim before dialling', () => {
  test('posts {token, sessionId} to claimUrl, dials only once the 200 is in, then reports', async () => {
    let grant!: (result: HttpRequestResult) => void;
    const h = new Harness(customData(), { sessionId: 987654 });
    h.claimAnswers.push(new Promise<HttpRequestResult>((resolve) => (grant = resolve)));
    await h.start();
    await wait(3_000);

    expect(h.claims).toHaveLength(1);
    expect(h.claims[0]?.url).toBe(CLAIM_URL);
    expect(h.claims[0]?.options.method).toBe('POST');
    expect(h.claims[0]?.options.headers).toEqual({ 'Content-Type': 'application/json' });
    expect(h.claims[0]?.body).toEqual({ token: TOKEN, sessionId: 987654 });
    expect(h.calls).toEqual([]);
    expect(h.detectors).toEqual([]);

    grant({ code: 200, text: '{"granted":true}' });
    await wait(0);
    expect(h.calls).toHaveLength(1);
    expect(h.call.number).toBe('79161234567');

    h.fail(486, 'Busy Here');
    await wait(0);
    expect(h.timeline).toEqual(['claim', 'dial', 'report']);
    expectSingleReport(h, { result: 'busy', code: 486, duration: 0 });
  });

  test.each([
    [409, '{"error":"already claimed"}'],
    [401, '{"error":"bad token"}'],
    [400, '{"error":"malformed"}'],
    [404, 'Not Found'],
    [204, ''],
  ])('claim answered %i: no call placed, no report, not asked again', async (code, text) => {
    const h = new Harness(customData());
    h.claimAnswers.push({ code, text });
    await h.start();
    // Past the session's safety timeout: nothing reports later either.
    await wait(6 * 60 * 1000);

    expect(h.claims).toHaveLength(1);
    expect(h.calls).toEqual([]);
    expect(h.detectors).toEqual([]);
    expect(h.posts).toEqual([]);
    expect(h.terminated).toBe(true);
    expect(h.terminateCalls).toBe(1);
    expect(h.logs.some((l) => l.includes('claim not granted'))).toBe(true);
  });

  test.each<[string, Answer]>([
    ['a rejected request', 'socket hang up'],
    ['VoxEngine code -4 (connection error)', { code: -4, error: 'Connection error' }],
    ['VoxEngine code -7 (timeout)', { code: -7, error: 'Timeout' }],
    ['503', { code: 503, text: 'unavailable' }],
    ['408', { code: 408, text: 'timeout' }],
    ['429', { code: 429, text: 'slow down' }],
  ])('%s, then 200: the claim is asked again after a back-off, then the call is placed', async (_, first) => {
    const h = new Harness(customData());
    h.claimAnswers.push(first);
    await h.start();
    expect(h.claims).toHaveLength(1);
    expect(h.calls).toEqual([]);

    await wait(999);
    expect(h.claims).toHaveLength(1);
    await wait(1);
    expect(h.claims.map((c) => c.at)).toEqual([0, 1_000]);
    expect(h.claims[1]?.body).toEqual(h.claims[0]?.body);
    expect(h.timeline).toEqual(['claim', 'claim', 'dial']);

    h.connect();
    h.detect('VOICEMAIL');
    await wait(0);
    expectSingleReport(h, { result: 'voicemail', code: 200, duration: 0 });
  });

  test('5xx every time: seven tries over a minute, then the end, with no call and no report', async () => {
    const h = new Harness(customData());
    for (let i = 0; i < 10; i++) h.claimAnswers.push({ code: 502, text: 'bad gateway' });
    await h.start();
    await wait(6 * 60 * 1000);

    expect(h.claims.map((c) => c.at)).toEqual([0, 1_000, 3_000, 7_000, 15_000, 30_000, 60_000]);
    expect(h.calls).toEqual([]);
    expect(h.posts).toEqual([]);
    expect(h.terminated).toBe(true);
  });

  test('with claimUntil: 5xx every time is asked again until then (waits capped at 30 s), the last try at it', async () => {
    const h = new Harness(customData({ claimUntil: Date.now() + 180_000 }));
    for (let i = 0; i < 20; i++) h.claimAnswers.push({ code: 503, text: 'busy' });
    await h.start();
    await wait(20 * 60 * 1000);

    expect(h.claims.map((c) => c.at / 1000)).toEqual([0, 1, 3, 7, 15, 30, 60, 90, 120, 150, 180]);
    expect(h.calls).toEqual([]);
    expect(h.posts).toEqual([]);
    expect(h.terminated).toBe(true);
  });

  test('a claim granted after minutes: the call still gets the whole of its session', async () => {
    const h = new Harness(customData({ claimUntil: Date.now() + 8 * 60_000 }));
    // Tries at 0, 1, 3, 7, 15, 30, 60 … 330 s answered 503; the one at 360 s is granted.
    for (let i = 0; i < 16; i++) h.claimAnswers.push({ code: 503, text: 'busy' });
    await h.start();
    await wait(360_000);
    expect(h.claims).toHaveLength(17);
    expect(h.claims.at(-1)?.at).toBe(360_000);
    expect(h.calls).toHaveLength(1);

    // The safety net counts from the grant, not from the session's start.
    await wait(5 * 60 * 1000 - 1);
    expect(h.terminated).toBe(false);
    expect(h.posts).toEqual([]);
    await wait(1);
    expectSingleReport(h, { result: 'failed', code: null, duration: 0 });
  });

  test('a claimUntil hours away is capped: the claim is asked for 15 minutes at most', async () => {
    const h = new Harness(customData({ claimUntil: Date.now() + 24 * 3_600_000 }));
    for (let i = 0; i < 60; i++) h.claimAnswers.push({ code: 502, text: 'bad gateway' });
    await h.start();
    await wait(60 * 60 * 1000);

    expect(h.claims.at(-1)?.at).toBe(15 * 60 * 1000);
    expect(h.calls).toEqual([]);
    expect(h.terminated).toBe(true);
  });

  test('with claimUntil, a claim that never answers ends the session just after it, not at 5 min', async () => {
    const h = new Harness(customData({ claimUntil: Date.now() + 60_000 }));
    h.claimAnswers.push('hang');
    await h.start();
    // The deadline, the last try's 5 s timeout, and a second of grace.
    await wait(66_000 - 1);
    expect(h.terminated).toBe(false);
    await wait(1);
    expect(h.terminated).toBe(true);
    expect(h.calls).toEqual([]);
    expect(h.posts).toEqual([]);
  });

  test.each([undefined, ''])(
    'claimUrl %p: nothing claimed, dialled or reported, and the log says why',
    async (claimUrl) => {
      const h = await new Harness(customData({ claimUrl })).start();
      await wait(6 * 60 * 1000);

      expect(h.claims).toEqual([]);
      expect(h.calls).toEqual([]);
      expect(h.posts).toEqual([]);
      expect(h.terminated).toBe(true);
      expect(h.logs.some((l) => l.includes('no claimUrl'))).toBe(true);
    },
  );

  test('a claim that never answers: the safety timeout ends the session, with no call and no report', async () => {
    const h = new Harness(customData());
    h.claimAnswers.push('hang');
    await h.start();
    await wait(5 * 60 * 1000 - 1);
    expect(h.terminated).toBe(false);
    await wait(1);

    expect(h.terminated).toBe(true);
    expect(h.calls).toEqual([]);
    // Not even the one request Terminating allows: this session never held the attempt.
    expect(h.posts).toEqual([]);
  });

  test('the platform ends the session during the claim: a 200 that comes after it dials nothing', async () => {
    let grant!: (result: HttpRequestResult) => void;
    const h = new Harness(customData());
    h.claimAnswers.push(new Promise<HttpRequestResult>((resolve) => (grant = resolve)));
    await h.start();
    h.platformTerminates();
    grant({ code: 200 });
    await wait(60_000);

    expect(h.calls).toEqual([]);
    expect(h.posts).toEqual([]);
  });
});

describe('outcomes', () => {
  test('a person answers: the text is said in a Russian voice, then hang-up and "answered"', async () => {
    const h = await new Harness(customData({ ttsText: 'Ваш заказ принят, дарим скидку 10%.' })).start();
    await wait(8_000); // ringing
    h.connect();
    await wait(2_000);
    h.detect('HUMAN');

    expect(h.call.said).toEqual([
      { text: 'Ваш заказ принят, дарим скидку 10%.', parameters: { voice: VOICE } },
    ]);
    expect(h.posts).toEqual([]);

    await wait(13_000);
    h.playbackFinished();
    await wait(0);

    expect(h.call.hangups).toBe(1);
    expectSingleReport(h, { result: 'answered', code: 200, duration: 15 });
  });

  test('a person answers and a recording URL is given: the recording is played, not the text', async () => {
    const h = await new Harness(customData({ recordingUrl: 'https://cdn.shop.example/promo.mp3' })).start();
    h.connect();
    await wait(1_500);
    h.detect('HUMAN');

    expect(h.call.played).toEqual(['https://cdn.shop.example/promo.mp3']);
    expect(h.call.said).toEqual([]);

    await wait(20_000);
    h.playbackFinished();
    await wait(0);

    expectSingleReport(h, { result: 'answered', code: 200, duration: 22 });
  });

  test('without a text, the default greeting uses the customer name', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    h.detect('HUMAN');

    expect(h.call.said[0]?.text).toMatch(/^Здравствуйте, Иван! Ваш заказ принят\./);
    expect(h.call.said[0]?.parameters).toEqual({ voice: VOICE });
  });

  test('a recording that cannot be played falls back to the text', async () => {
    const h = await new Harness(
      customData({ recordingUrl: 'https://cdn.shop.example/gone.mp3', ttsText: 'Заказ принят.' }),
    ).start();
    h.connect();
    h.detect('HUMAN');
    h.playbackFinished('404 Not Found');

    expect(h.call.said.map((s) => s.text)).toEqual(['Заказ принят.']);
    expect(h.posts).toEqual([]);

    await wait(4_000);
    h.playbackFinished();
    await wait(0);
    expectSingleReport(h, { result: 'answered', code: 200, duration: 4 });
  });

  test('the person hangs up during the message: still "answered", with the time connected', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    await wait(3_000);
    h.detect('HUMAN');
    await wait(4_000);
    h.calleeHangsUp();
    await wait(0);

    expect(h.call.hangups).toBe(0);
    expectSingleReport(h, { result: 'answered', code: 200, duration: 7 });
  });

  test('an answering machine: hang up at once and report "voicemail"', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    await wait(4_000);
    h.detect('VOICEMAIL');
    await wait(0);

    expect(h.call.said).toEqual([]);
    expect(h.call.played).toEqual([]);
    expect(h.call.hangups).toBe(1);
    expectSingleReport(h, { result: 'voicemail', code: 200, duration: 4 });
  });

  test('an answering machine with leaveVoicemail: the message is left, then "voicemail"', async () => {
    const h = await new Harness(customData({ leaveVoicemail: true, ttsText: 'Заказ принят.' })).start();
    h.connect();
    await wait(5_000);
    h.detect('VOICEMAIL');
    expect(h.call.said.map((s) => s.text)).toEqual(['Заказ принят.']);
    expect(h.posts).toEqual([]);

    await wait(5_000);
    h.playbackFinished();
    await wait(0);
    expectSingleReport(h, { result: 'voicemail', code: 200, duration: 10 });
  });

  test('the detector times out: the message is played as to a person', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    await wait(6_500);
    h.detect('TIMEOUT');
    expect(h.call.said).toHaveLength(1);
  });

  test('the detector never answers: after its timeout and a grace period the message is played', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    await wait(9_000);
    expect(h.call.said).toHaveLength(0);
    await wait(600);
    expect(h.call.said).toHaveLength(1);
  });

  test.each([
    [486, 'Busy Here', 'busy'],
    [600, 'Busy Everywhere', 'busy'],
    [408, 'Request Timeout', 'no_answer'],
    [487, 'Request Terminated', 'no_answer'],
    [603, 'Decline', 'no_answer'],
    [404, 'Not Found', 'wrong_number'],
    [484, 'Address Incomplete', 'wrong_number'],
    [604, 'Does Not Exist Anywhere', 'wrong_number'],
    [480, 'Temporarily Unavailable', 'unavailable'],
    [503, 'Service Unavailable', 'unavailable'],
    [402, 'Payment Required', 'failed'],
    [500, 'Server Internal Error', 'failed'],
  ])('the call fails with %i %s: "%s"', async (code, reason, result) => {
    const h = await new Harness(customData()).start();
    await wait(12_000);
    h.fail(code, reason);
    await wait(0);

    expect(h.call.hangups).toBe(0);
    expectSingleReport(h, { result, code, duration: 0 });
  });

  test('a phone that is not 10-15 digits is not dialled: "wrong_number" with no code', async () => {
    const h = await new Harness(customData({ phone: '12345' })).start();
    await wait(0);
    expect(h.calls).toEqual([]);
    // Nothing will ring, so there is nothing to claim.
    expect(h.claims).toEqual([]);
    expectSingleReport(h, { result: 'wrong_number', code: null, duration: 0 });
  });

  test('no caller ID anywhere: "failed" with no code, nothing dialled', async () => {
    const h = await new Harness(customData({ callerId: undefined })).start();
    await wait(0);
    expect(h.calls).toEqual([]);
    expectSingleReport(h, { result: 'failed', code: null, duration: 0 });
  });

  test('custom data that is not JSON with token and resultUrl: terminate without posting', async () => {
    for (const bad of ['not json', '', JSON.stringify({ phone: '79161234567' })]) {
      const h = await new Harness(bad).start();
      await wait(0);
      expect(h.calls).toEqual([]);
      expect(h.claims).toEqual([]);
      expect(h.posts).toEqual([]);
      expect(h.terminated).toBe(true);
    }
  });
});

describe('the voice', () => {
  async function spokenTo(h: Harness): Promise<FakeCall> {
    await h.start();
    h.connect();
    h.detect('HUMAN');
    return h.call;
  }

  test('VoiceList.YandexV3.ru_RU_alena, a constant current VoxEngine declares', async () => {
    expect(VOICE).toBeDefined();
    const call = await spokenTo(new Harness(customData({ ttsText: 'Заказ принят.' })));
    expect(call.said).toEqual([
      { text: 'Заказ принят.', parameters: { voice: VOICE_LIST.YandexV3.ru_RU_alena } },
    ]);
  });

  test('a runtime without YandexV3, with a recording given: the recording is played, nothing said', async () => {
    const { YandexV3: _, ...older } = VOICE_LIST;
    const url = 'https://cdn.shop.example/promo.mp3';
    const call = await spokenTo(new Harness(customData({ recordingUrl: url }), { voiceList: older }));
    expect(call.played).toEqual([url]);
    expect(call.said).toEqual([]);
  });

  test('a runtime without YandexV3 and no recording: the Yandex neural Alena', async () => {
    const { YandexV3: _, ...older } = VOICE_LIST;
    const call = await spokenTo(new Harness(customData(), { voiceList: older }));
    expect(call.said.map((s) => s.parameters?.voice)).toEqual(['yandex-neural:ru_RU_alena']);
  });

  test('a recording that fails in a runtime without YandexV3: the text in the Yandex neural Alena', async () => {
    const { YandexV3: _, ...older } = VOICE_LIST;
    const h = new Harness(customData({ recordingUrl: 'https://cdn.shop.example/gone.mp3' }), {
      voiceList: older,
    });
    const call = await spokenTo(h);
    h.playbackFinished('404 Not Found');
    expect(call.said.map((s) => s.parameters?.voice)).toEqual(['yandex-neural:ru_RU_alena']);
  });

  test('no Yandex voice at all: the freemium Russian voice', async () => {
    const call = await spokenTo(
      new Harness(customData(), { voiceList: { Default: VOICE_LIST.Default, Amazon: VOICE_LIST.Amazon } }),
    );
    expect(call.said.map((s) => s.parameters?.voice)).toEqual(['default:ru_RU_Female']);
  });

  test('none of the named voices: any Russian voice the runtime lists', async () => {
    const call = await spokenTo(new Harness(customData(), { voiceList: { Amazon: VOICE_LIST.Amazon } }));
    expect(call.said.map((s) => s.parameters?.voice)).toEqual(['amazon:ru_RU_Tatyana']);
  });

  test('no Russian voice at all: the text is still said, in the platform default voice', async () => {
    const voiceList = { Amazon: { en_US_Joanna: 'amazon:en_US_Joanna' } };
    const call = await spokenTo(new Harness(customData({ ttsText: 'Заказ принят.' }), { voiceList }));
    expect(call.said).toEqual([{ text: 'Заказ принят.', parameters: undefined }]);
  });

  test('speech that ends with an error is said again in the next voice; after the fourth, the call is reported', async () => {
    const h = new Harness(customData({ ttsText: 'Заказ принят.' }));
    const call = await spokenTo(h);
    for (let i = 0; i < 4; i++) h.playbackFinished('400 Bad Request');
    await wait(0);

    expect(call.said.map((s) => s.parameters?.voice)).toEqual([
      'yandexv3:ru_RU_alena',
      'yandex-neural:ru_RU_alena',
      'default:ru_RU_Female',
      'yandexv3:ru_RU_filipp',
    ]);
    expectSingleReport(h, { result: 'answered', code: 200, duration: 0 });
  });
});

describe('the report is posted exactly once', () => {
  test('events after the outcome (our own hang-up, late detector results) post nothing more', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    await wait(2_000);
    h.detect('VOICEMAIL');
    h.detect('HUMAN');
    h.playbackFinished();
    h.calleeHangsUp();
    await wait(60_000);

    expect(h.reports).toHaveLength(1);
    expect(h.reports[0]?.result).toBe('voicemail');
  });

  test('Failed followed by Disconnected posts once', async () => {
    const h = await new Harness(customData()).start();
    h.fail(486, 'Busy Here');
    h.call.emit(CallEvents.Disconnected, { call: h.call, reason: 'Busy Here' });
    await wait(60_000);
    expect(h.reports).toEqual([{ token: TOKEN, result: 'busy', code: 486, duration: 0 }]);
  });
});

describe('report delivery', () => {
  test('a first POST answered 503 is retried after a back-off with the same body', async () => {
    const h = await new Harness(customData()).start();
    h.answers.push({ code: 503, text: 'unavailable' });
    h.fail(408, 'Request Timeout');
    await wait(0);

    expect(h.posts).toHaveLength(1);
    expect(h.terminated).toBe(false);

    await wait(999);
    expect(h.posts).toHaveLength(1);
    await wait(1);
    expect(h.posts).toHaveLength(2);
    expect(h.posts[1]?.body).toEqual(h.posts[0]?.body);
    expect(h.reports[1]).toEqual({ token: TOKEN, result: 'no_answer', code: 408, duration: 0 });
    expect(h.terminated).toBe(true);
    expect(h.terminateCalls).toBe(1);
  });

  test('a network error (rejected request or a negative VoxEngine code) is retried', async () => {
    const h = await new Harness(customData()).start();
    h.answers.push('socket hang up', { code: -4, error: 'Connection error' });
    h.fail(486, 'Busy Here');
    await wait(0);
    expect(h.posts).toHaveLength(1);
    await wait(1_000);
    expect(h.posts).toHaveLength(2);
    await wait(2_000);
    expect(h.posts).toHaveLength(3);
    expect(h.terminated).toBe(true);
    expect(new Set(h.posts.map((p) => p.options.postData)).size).toBe(1);
  });

  test('gives up after 5 attempts with growing waits, then terminates', async () => {
    const h = await new Harness(customData()).start();
    for (let i = 0; i < 10; i++) h.answers.push({ code: 502, text: 'bad gateway' });
    h.fail(404, 'Not Found');
    await wait(60_000);

    expect(h.posts.map((p) => p.at)).toEqual([0, 1_000, 3_000, 7_000, 15_000]);
    expect(h.terminated).toBe(true);
  });

  test('a definite 4xx answer (401 bad token) is not retried', async () => {
    const h = await new Harness(customData()).start();
    h.answers.push({ code: 401, text: '{"error":"bad token"}' });
    h.fail(486, 'Busy Here');
    await wait(60_000);
    expect(h.posts).toHaveLength(1);
    expect(h.terminated).toBe(true);
  });

  test('a request that never returns: the session ends at the deadline, Terminating posts once more', async () => {
    const h = await new Harness(customData()).start();
    h.answers.push('hang');
    h.fail(486, 'Busy Here');
    await wait(89_999);
    expect(h.posts).toHaveLength(1);
    expect(h.terminated).toBe(false);
    await wait(1);
    expect(h.terminated).toBe(true);
    expect(h.reports).toEqual([
      { token: TOKEN, result: 'busy', code: 486, duration: 0 },
      { token: TOKEN, result: 'busy', code: 486, duration: 0 },
    ]);
  });
});

describe('safety timeout', () => {
  test('if no call event ever comes, "failed" is reported and the session ends', async () => {
    const h = await new Harness(customData()).start();
    await wait(5 * 60 * 1000 - 1);
    expect(h.posts).toEqual([]);
    await wait(1);
    await wait(0);
    expectSingleReport(h, { result: 'failed', code: null, duration: 0 });
  });

  test('a call stuck connected is hung up and reported as answered with its duration', async () => {
    const h = await new Harness(customData()).start();
    await wait(10_000);
    h.connect();
    h.detect('HUMAN');
    await wait(5 * 60 * 1000);
    expect(h.call.hangups).toBe(1);
    expectSingleReport(h, { result: 'answered', code: 200, duration: 290 });
  });

  test('the platform ending the session before any outcome triggers one POST from Terminating', async () => {
    const h = await new Harness(customData()).start();
    h.connect();
    h.detect('HUMAN');
    // The platform stops the session (e.g. an operator), not the scenario.
    h.engine.emit(AppEvents.Terminating, {});
    expect(h.reports).toEqual([{ token: TOKEN, result: 'answered', code: 200, duration: 0 }]);
  });
});
