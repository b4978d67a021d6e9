/*
 * Speed-to-lead robot call: a VoxEngine scenario (VoxImplant cloud JavaScript).
 *
 * Started by the service through the Management API `StartScenarios` (the rule in
 * VOXIMPLANT_RULE_ID). It claims the call attempt from the service, calls the customer, lets
 * answering-machine detection decide who picked up, plays the shop's message to a person, and
 * reports the outcome to the service exactly once.
 *
 * Custom data (`script_custom_data`, read with VoxEngine.customData()) is a JSON string:
 *   phone        digits in international format, e.g. "79161234567"          (required)
 *   token        opaque signed token, echoed back in the claim and the report (required)
 *   resultUrl    where the report is POSTed: ${PUBLIC_URL}/api/voximplant/result (required)
 *   claimUrl     where the claim is POSTed before dialling                    (required to dial)
 *   claimUntil   optional: epoch ms until which the claim is asked again (else about a minute)
 *   ref, name    the lead's ref (logged) and the customer's name (used in the default text);
 *                the service sends only a plausible name (letters, spaces, hyphens, apostrophes),
 *                else ''
 *   attempt      call attempt number (logged)
 *   callKey      optional: what the session's custom data is reduced to, for the call history
 *   recordingUrl optional: mp3/ogg/flac/wav played to a person (takes precedence over the text)
 *   ttsText      optional: text said in Russian when there is no recording
 *   callerId     optional: caller ID for this call; else DEFAULT_CALLER_ID below
 *   leaveVoicemail optional boolean: also play the message to an answering machine (default false)
 *
 * Claim: POST claimUrl, Content-Type application/json, body {token, sessionId}
 *   sessionId is the AppEvents.Started event's sessionId (a number; null if the platform gave none).
 *   Only an HTTP 200 lets the scenario dial: a retried StartScenarios may start a second session
 *   for the same attempt, and the service grants the first claim only, so only one session rings
 *   the customer. 409 (already claimed, or the attempt is no longer awaited), 401 and any other
 *   answer are final. Network errors, 5xx, 408 and 429 are tried again until claimUntil (at most
 *   15 minutes), or seven times over about a minute without it. A session that did not get its
 *   200 ends without dialling and without a report: the other session, or the service's result
 *   timeout, settles the attempt. Without a claimUrl the scenario cannot prove it
 *   is the only session, so it does not dial either, and logs why.
 *
 * Report: POST resultUrl, Content-Type application/json, body {token, result, code, duration}
 *   result   answered | voicemail | busy | no_answer | unavailable | wrong_number | failed
 *   code     SIP-style code: the Failed event's code, 200 for a connected call, null when none
 *   duration seconds the call was connected (0 when it never connected)
 *   A phone that is not 10-15 digits, or no caller ID, is reported without a claim: nothing is
 *   dialled, and a repeated report of it is harmless.
 *
 * Voice: VoiceList.YandexV3.ru_RU_alena, as listed in VoxImplant's VoxEngine reference
 * (voximplant.com/docs/references/voxengine/voicelist/yandexv3) and in the VoxEngine typings that
 * VoxImplant ships with voxengine-ci (typings/voxengine.d.ts, version 28). A runtime that lacks it
 * (an older VoxEngine, or a provider the account cannot use, which ends the speech with an error)
 * gets the next Russian voice that exists: VoiceList.Yandex.Neural.ru_RU_alena, then
 * VoiceList.Default.ru_RU_Female, then any ru_RU voice in VoiceList. A recording, when given, is
 * played before any voice is needed. The callee never hears silence for want of a constant.
 *
 * Plain ES2017 for the VoxEngine runtime: no modules or imports; everything used here
 * (VoxEngine, CallEvents, AppEvents, AMD, VoiceList, Net, Logger, setTimeout) is a global there.
 */

// ---------------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------------

// A number rented in (or verified by) your VoxImplant account. Test numbers are refused as caller
// ID. The `callerId` custom-data field overrides it per call.
var DEFAULT_CALLER_ID = '';

// Said when neither a recording nor a text comes in the custom data. "{name}" becomes ", Имя".
var DEFAULT_TTS_TEXT =
  'Здравствуйте{name}! Ваш заказ принят. Наш менеджер свяжется с вами в ближайшее время. ' +
  'Спасибо, что выбрали наш магазин!';

// How many Russian voices to try when speech ends with an error (an unknown voice, a provider the
// account cannot use) before the call is finished as it is.
var MAX_VOICES_TRIED = 4;

// Detection timeout in ms; it only starts counting at CallEvents.Connected (VoxEngine allows 0..20000).
var AMD_TIMEOUT_MS = 6500;
// If the detector has said nothing this long after its own timeout, treat the callee as a person
// rather than leave them listening to silence.
var AMD_GRACE_MS = 3000;

// Nothing the scenario does takes this long (a PSTN call fails after 60 s of ringing, the message
// is at most a couple of minutes); past it, report what is known and stop the session.
var SESSION_TIMEOUT_MS = 5 * 60 * 1000;

// The claim: the waits between tries (ms; the last one repeats) and each request's timeout (s).
// The scenario asks until `claimUntil` (epoch ms in the custom data): the service sets it from its
// result timeout, leaving room for the call and its report, because a service short of CPU (a
// morning queue, a burst) may take minutes to answer, and a late call is better than none. A
// service that granted the claim and crashed before answering is asked again meanwhile and grants
// it again to this session. Without `claimUntil`, seven tries over about a minute.
var CLAIM_MAX_ATTEMPTS = 7;
var CLAIM_BACKOFF_MS = [1000, 2000, 4000, 8000, 15000, 30000];
var CLAIM_HTTP_TIMEOUT_S = 5;
// However far away `claimUntil` is, the session never waits longer for its claim.
var CLAIM_PATIENCE_MAX_MS = 15 * 60 * 1000;

// Report delivery: attempts and the waits between them (ms).
var REPORT_MAX_ATTEMPTS = 5;
var REPORT_BACKOFF_MS = [1000, 2000, 4000, 8000];
var REPORT_HTTP_TIMEOUT_S = 10;
// After the outcome is known the session is ended at the latest this long after, delivered or not.
var REPORT_DEADLINE_MS = 90 * 1000;

// ---------------------------------------------------------------------------------------------
// SIP code of CallEvents.Failed -> result
// ---------------------------------------------------------------------------------------------

function resultForFailedCode(code) {
  switch (code) {
    case 486: // Busy Here
    case 600: // Busy Everywhere
      return 'busy';
    case 408: // not answered within 60 s
    case 487: // Request Terminated: the ringing was cut off
    case 603: // Decline: the callee rejected the call; try again later like a missed call
      return 'no_answer';
    case 404: // Not Found: no such number
    case 484: // Address Incomplete
    case 604: // Does Not Exist Anywhere
      return 'wrong_number';
    case 480: // Temporarily Unavailable: phone off or out of coverage
    case 503: // Service Unavailable: the network cannot reach the subscriber now
      return 'unavailable';
    default: // 402 (no funds on the account), 403, 5xx of the carrier, ...
      return 'failed';
  }
}

// ---------------------------------------------------------------------------------------------
// Session state
// ---------------------------------------------------------------------------------------------

var data = null; // parsed custom data
var call = null; // the outbound Call
var connectedAt = null; // Date.now() at CallEvents.Connected
var disconnected = false;
var amdVerdict = null; // 'human' | 'voicemail' once the detector (or the fallback) decided
var playing = null; // null | 'recording' | 'tts' while the message plays
var amdFallbackTimer = null;
var report = null; // {payload, state: 'sending' | 'delivered' | 'rejected' | 'failed'}, set once
var claim = 'none'; // 'none' | 'pending' | 'granted' | 'refused': only 'granted' may dial or report a call
var sessionId = null; // AppEvents.Started's sessionId, sent with the claim
var voices = null; // the Russian voices to try, best first (see russianVoices)
var voiceIndex = 0; // the one being used
var terminated = false;

function log(message) {
  Logger.write('[speed-to-lead] ' + message);
}

function secondsConnected() {
  return connectedAt === null ? 0 : Math.max(0, Math.round((Date.now() - connectedAt) / 1000));
}

function terminate() {
  if (terminated) return;
  terminated = true;
  VoxEngine.terminate();
}

// What a connected call counts as when it ends. A call that was answered but hung up before the
// detector decided counts as answered: someone picked up.
function connectedOutcome() {
  return amdVerdict === 'voicemail' ? 'voicemail' : 'answered';
}

// ---------------------------------------------------------------------------------------------
// The report: decided once, then delivered with retries
// ---------------------------------------------------------------------------------------------

function httpOptions(payload, timeoutSeconds) {
  return {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    postData: JSON.stringify(payload),
    timeout: timeoutSeconds || REPORT_HTTP_TIMEOUT_S,
  };
}

// Network errors (VoxEngine reports them as codes <= 0), 5xx, 408 and 429 may pass on a retry.
// Any other 4xx is the service's definite answer (malformed, bad token, attempt not awaited):
// sending the same body again cannot change it.
function isRetryable(code) {
  return !(code >= 400 && code < 500) || code === 408 || code === 429;
}

function delay(ms) {
  return new Promise(function (resolve) {
    setTimeout(resolve, ms);
  });
}

async function deliver() {
  for (var attempt = 1; attempt <= REPORT_MAX_ATTEMPTS; attempt++) {
    var res;
    try {
      res = await Net.httpRequestAsync(data.resultUrl, httpOptions(report.payload));
    } catch (err) {
      res = { code: -1, error: String(err) };
    }
    if (terminated) return;
    if (res && res.code >= 200 && res.code < 300) {
      report.state = 'delivered';
      log('report delivered (attempt ' + attempt + ', HTTP ' + res.code + ')');
      return;
    }
    var code = res ? res.code : -1;
    log('report attempt ' + attempt + ' failed: ' + code + ' ' + ((res && (res.error || res.text)) || ''));
    if (!isRetryable(code)) {
      report.state = 'rejected';
      return;
    }
    if (attempt < REPORT_MAX_ATTEMPTS) await delay(REPORT_BACKOFF_MS[attempt - 1] || 8000);
  }
  report.state = 'failed';
}

// The single exit of every path. The guard makes the first outcome win: e.g. our own hangup()
// later fires CallEvents.Disconnected, which must not produce a second report.
function finish(result, code) {
  if (report) return;
  if (amdFallbackTimer !== null) clearTimeout(amdFallbackTimer);
  report = {
    payload: { token: data.token, result: result, code: code, duration: secondsConnected() },
    state: 'sending',
  };
  log('outcome ' + result + ' code=' + code + ' duration=' + report.payload.duration + ' ref=' + data.ref);
  if (call && connectedAt !== null && !disconnected) call.hangup();
  // Whatever happens to delivery, the session must not outlive it by much.
  setTimeout(terminate, REPORT_DEADLINE_MS);
  deliver().then(terminate, function (err) {
    log('report delivery crashed: ' + err);
    terminate();
  });
}

// ---------------------------------------------------------------------------------------------
// The claim: this session dials only once the service grants it the attempt
// ---------------------------------------------------------------------------------------------

// Worth another try: the service may not have seen the request at all. Every other answer (409
// claimed by another session or no longer awaited, 401 bad token, 400, a 2xx other than 200) is
// final: asking again cannot turn it into a grant.
function isClaimRetryable(code) {
  return code <= 0 || code >= 500 || code === 408 || code === 429;
}

// When the last claim try may start (epoch ms), or null: seven tries then.
function claimDeadline(now) {
  var until = Number(data.claimUntil);
  if (!data.claimUntil || !isFinite(until)) return null;
  return Math.min(until, now + CLAIM_PATIENCE_MAX_MS);
}

// Resolves true only after an HTTP 200.
async function requestClaim(deadline) {
  var body = { token: data.token, sessionId: sessionId };
  for (var attempt = 1; ; attempt++) {
    var res;
    try {
      res = await Net.httpRequestAsync(String(data.claimUrl), httpOptions(body, CLAIM_HTTP_TIMEOUT_S));
    } catch (err) {
      res = { code: -1, error: String(err) };
    }
    if (terminated) return false;
    var code = res && typeof res.code === 'number' ? res.code : -1;
    if (code === 200) {
      log('claim granted (attempt ' + attempt + ')');
      return true;
    }
    log('claim attempt ' + attempt + ': ' + code + ' ' + ((res && (res.error || res.text)) || ''));
    if (!isClaimRetryable(code)) return false;
    var wait = CLAIM_BACKOFF_MS[Math.min(attempt, CLAIM_BACKOFF_MS.length) - 1];
    if (deadline === null) {
      if (attempt >= CLAIM_MAX_ATTEMPTS) return false;
    } else {
      var left = deadline - Date.now();
      if (left <= 0) return false;
      // The last try goes at the deadline itself.
      wait = Math.min(wait, left);
    }
    await delay(wait);
    if (terminated) return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The message
// ---------------------------------------------------------------------------------------------

function ttsText() {
  if (data.ttsText) return String(data.ttsText);
  return DEFAULT_TTS_TEXT.replace('{name}', data.name ? ', ' + data.name : '');
}

// The Russian voices this runtime has, best first, each once. VoiceList's namespaces differ
// between VoxEngine versions, so each step checks that its constant exists.
function russianVoices() {
  var list = typeof VoiceList === 'undefined' || !VoiceList ? {} : VoiceList;
  var found = [];
  function add(voice) {
    if (voice && found.indexOf(voice) < 0) found.push(voice);
  }
  add(list.YandexV3 && list.YandexV3.ru_RU_alena);
  add(list.Yandex && list.Yandex.Neural && list.Yandex.Neural.ru_RU_alena);
  add(list.Default && list.Default.ru_RU_Female);
  // Any other Russian voice, however the lists nest. Keys like en_US_Joanna are voices, not lists:
  // their insides are the platform's business.
  function scan(node, depth) {
    if (!node || typeof node !== 'object' || depth > 3) return;
    Object.keys(node).forEach(function (key) {
      if (/^ru_RU_/.test(key)) add(node[key]);
      else if (!/^[a-z]{2,3}_[A-Z]{2}_/.test(key)) scan(node[key], depth + 1);
    });
  }
  try {
    scan(list, 0);
  } catch (err) {
    log('VoiceList scan failed: ' + err);
  }
  return found.slice(0, MAX_VOICES_TRIED);
}

function say() {
  if (voices === null) voices = russianVoices();
  playing = 'tts';
  var voice = voices[voiceIndex];
  if (voice === undefined) {
    // Not one Russian voice in this runtime: the platform's default voice still says something.
    log('no Russian voice in VoiceList; saying the text in the default voice');
    call.say(ttsText());
    return;
  }
  if (voiceIndex > 0) log('saying the text with Russian voice #' + (voiceIndex + 1));
  call.say(ttsText(), { voice: voice });
}

function playMessage() {
  if (data.recordingUrl) {
    playing = 'recording';
    call.startPlayback(String(data.recordingUrl));
  } else {
    say();
  }
}

function onPlaybackFinished(e) {
  if (!playing || report) return;
  // A recording that could not be fetched still ends with PlaybackFinished, with an error: say
  // the text instead so the person hears something.
  if (e && e.error && playing === 'recording') {
    log('recording failed (' + e.error + '), saying the text instead');
    say();
    return;
  }
  // Speech that ends with an error (a voice or provider this account cannot use) is said again in
  // the next Russian voice.
  if (e && e.error && playing === 'tts' && voices !== null && voiceIndex + 1 < voices.length) {
    log('speech failed (' + e.error + '), trying the next voice');
    voiceIndex += 1;
    say();
    return;
  }
  playing = null;
  finish(connectedOutcome(), 200);
}

// ---------------------------------------------------------------------------------------------
// Answering-machine detection
// ---------------------------------------------------------------------------------------------

function onHuman(why) {
  if (amdVerdict || report) return;
  amdVerdict = 'human';
  log('treating the callee as a person: ' + why);
  playMessage();
}

function onDetectionComplete(e) {
  if (amdFallbackTimer !== null) clearTimeout(amdFallbackTimer);
  var resultClass = e && e.resultClass;
  log('AMD: ' + resultClass + (e && e.confidence !== undefined ? ' (' + e.confidence + ')' : ''));
  if (resultClass === AMD.ResultClass.VOICEMAIL) {
    if (amdVerdict || report) return;
    amdVerdict = 'voicemail';
    if (data.leaveVoicemail === true) playMessage();
    else finish('voicemail', 200); // every second on a machine costs money
  } else if (resultClass === AMD.ResultClass.HUMAN) {
    onHuman('detected');
  } else if (resultClass === AMD.ResultClass.TIMEOUT) {
    // A person who picked up and kept silent looks like this too; let them hear the message.
    onHuman('detection timed out');
  }
  // AMD.ResultClass.CALL_ENDED: the call is gone, CallEvents.Disconnected reports it.
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

function start(e) {
  try {
    data = JSON.parse(VoxEngine.customData() || '');
  } catch (err) {
    data = null;
  }
  if (!data || typeof data !== 'object' || !data.token || !data.resultUrl) {
    // Nowhere to report to (or nothing to prove who we are): nothing useful can be done.
    log('custom data is not JSON with token and resultUrl; stopping');
    terminate();
    return;
  }
  sessionId = e && (typeof e.sessionId === 'number' || typeof e.sessionId === 'string') ? e.sessionId : null;
  log('ref=' + data.ref + ' attempt=' + data.attempt + ' session=' + sessionId);
  // The service finds this session again by its custom data (GetCallHistory filters on it exactly)
  // when a retried StartScenarios must not ring the customer twice: keep only the call key there,
  // which also keeps the customer's name, phone and the token out of the call history.
  if (data.callKey) VoxEngine.customData(String(data.callKey));

  var phone = String(data.phone || '');
  if (!/^\d{10,15}$/.test(phone)) {
    log('phone is not 10-15 digits: "' + phone + '"');
    finish('wrong_number', null);
    return;
  }
  var callerId = String(data.callerId || DEFAULT_CALLER_ID);
  if (!callerId) {
    log('no caller ID: set DEFAULT_CALLER_ID in the scenario or send callerId');
    finish('failed', null);
    return;
  }
  if (!data.claimUrl) {
    // Without a grant nothing shows that this is the only session of the attempt: a second ring
    // would be worse than none, and the service's result timeout settles the attempt.
    log('no claimUrl in the custom data: not dialling, no report');
    claim = 'refused';
    terminate();
    return;
  }

  claim = 'pending';
  var deadline = claimDeadline(Date.now());
  // The safety net must not end a patient claim: it waits for the last try's answer too.
  if (deadline !== null) armSafetyNet(deadline - Date.now() + CLAIM_HTTP_TIMEOUT_S * 1000 + 1000);
  requestClaim(deadline).then(
    function (granted) {
      if (terminated) return;
      claim = granted ? 'granted' : 'refused';
      if (!granted) {
        log('claim not granted: ending without dialling, no report');
        terminate();
        return;
      }
      // The call has the whole of its own budget, however long the claim took.
      armSafetyNet(SESSION_TIMEOUT_MS);
      dial(phone, callerId);
    },
    function (err) {
      log('claim crashed: ' + err);
      claim = 'refused';
      terminate();
    },
  );
}

function dial(phone, callerId) {
  // AMD is a global namespace in current VoxEngine; older runtimes only had it after loading the
  // AI module.
  if (typeof AMD === 'undefined') require(Modules.AI);
  var detector = AMD.create({ model: AMD.Model.RU, timeout: AMD_TIMEOUT_MS });
  detector.addEventListener(AMD.Events.DetectionComplete, onDetectionComplete);
  detector.addEventListener(AMD.Events.DetectionError, function (e) {
    log('AMD error: ' + (e && e.message));
    onHuman('detector error');
  });

  // The detector passed in the call parameters listens to the call from the moment it connects.
  call = VoxEngine.callPSTN(phone, callerId, { amd: detector });

  call.addEventListener(CallEvents.Connected, function () {
    connectedAt = Date.now();
    log('connected');
    amdFallbackTimer = setTimeout(function () {
      amdFallbackTimer = null;
      onHuman('no word from the detector');
    }, AMD_TIMEOUT_MS + AMD_GRACE_MS);
  });

  call.addEventListener(CallEvents.Failed, function (e) {
    log('failed: ' + e.code + ' ' + e.reason);
    finish(resultForFailedCode(e.code), typeof e.code === 'number' ? e.code : null);
  });

  call.addEventListener(CallEvents.Disconnected, function () {
    disconnected = true;
    log('disconnected');
    if (connectedAt === null) finish('failed', null);
    else finish(connectedOutcome(), 200);
  });

  call.addEventListener(CallEvents.PlaybackFinished, onPlaybackFinished);
}

VoxEngine.addEventListener(AppEvents.Started, start);

// Safety net: if no call event ever comes, report what is known instead of hanging on. Armed for
// SESSION_TIMEOUT_MS from the start, for longer while a patient claim is being asked, and again
// for SESSION_TIMEOUT_MS once the claim is granted.
var safetyNet = null;
function armSafetyNet(ms) {
  if (safetyNet !== null) clearTimeout(safetyNet);
  safetyNet = setTimeout(onSessionTimeout, Math.max(ms, 0));
}
function onSessionTimeout() {
  if (report) return;
  log('session timeout');
  // Only a session that holds the claim has a call to report.
  if (!data || !data.token || !data.resultUrl || claim !== 'granted') {
    terminate();
    return;
  }
  if (connectedAt !== null) finish(connectedOutcome(), 200);
  else finish('failed', null);
}
armSafetyNet(SESSION_TIMEOUT_MS);

// The platform may end the session itself (limits, an operator stopping it). Timers are gone by
// then but one HTTP request is still allowed: use it if the report has not gone through yet.
VoxEngine.addEventListener(AppEvents.Terminating, function () {
  // Nothing may start after this, least of all a call whose claim answer arrives late.
  terminated = true;
  if (!data || !data.token || !data.resultUrl) return;
  if (report && report.state !== 'sending') return;
  // No outcome yet and no claim: another session (or nobody) has this attempt's call.
  if (!report && claim !== 'granted') return;
  var payload = report
    ? report.payload
    : {
        token: data.token,
        result: connectedAt !== null ? connectedOutcome() : 'failed',
        code: connectedAt !== null ? 200 : null,
        duration: secondsConnected(),
      };
  log('session terminating with the report undelivered; last attempt');
  Net.httpRequestAsync(data.resultUrl, httpOptions(payload));
});
