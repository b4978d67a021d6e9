// The table of malformed requests that tests/badInput.test.ts fires at the real service. Every case
// names the exact answer the contract (/work/shared/CONTRACT.md) calls for; none of them may start a
// lead. Cases are plain data built from a small context (the Corezoid key, the result-token secret,
// a source of distinct phones), so the test file only loops over them.
import { signResultToken } from '../../domain/resultToken';

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestSpec {
  method: Method;
  path: string;
  headers?: Record<string, string>;
  /** a string is sent as it is; bytes are sent without any content type added by fetch */
  body?: string | Uint8Array;
}

export interface Expectation {
  status: number;
  /** validation 400s: `details` must hold an entry naming this field */
  field?: string;
  /** the `error` message must match */
  error?: RegExp;
  /** Corezoid answers 200 with a per-op `proc`; these are the expected procs, in order */
  procs?: string[];
}

export interface BadCase {
  name: string;
  request: RequestSpec;
  expect: Expectation;
}

export interface CaseContext {
  corezoidKey: string;
  resultSecret: string;
  /** OPERATOR_TOKEN of the service under test */
  operatorToken: string;
  /** a distinct, valid mobile number per call */
  phone(): string;
}

const JSON_TYPE = { 'content-type': 'application/json' };
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };
const MB = 1024 * 1024;

function postJson(path: string, value: unknown, headers: Record<string, string> = {}): RequestSpec {
  return { method: 'POST', path, headers: { ...JSON_TYPE, ...headers }, body: JSON.stringify(value) };
}

function postRaw(path: string, body: string | Uint8Array, contentType?: string): RequestSpec {
  return { method: 'POST', path, headers: contentType ? { 'content-type': contentType } : {}, body };
}

function form(fields: Array<[string, string]>): string {
  return new URLSearchParams(fields).toString();
}

function get(path: string): RequestSpec {
  return { method: 'GET', path };
}

const LEADS = '/api/leads';
const RESULT = '/api/voximplant/result';

export function buildBadRequests(ctx: CaseContext): BadCase[] {
  const lead = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    name: 'Иван',
    phone: ctx.phone(),
    ...extra,
  });
  const invalid = (name: string, body: Record<string, unknown>, field: string): BadCase => ({
    name,
    request: postJson(LEADS, body),
    expect: { status: 400, field, error: /invalid lead/ },
  });
  const corezoidPath = `/api/1/json/public/31754/${ctx.corezoidKey}`;
  // What the shop's PHP snippet sends: JSON text under the form content type curl --data uses.
  const corezoid = (body: string): RequestSpec => postRaw(corezoidPath, body, FORM_TYPE['content-type']);
  const op = (extra: Record<string, unknown>): Record<string, unknown> => ({
    ref: `cz-${ctx.phone()}`,
    type: 'create',
    obj: 'task',
    conv_id: '31754',
    data: { server: { REMOTE_ADDR: '95.173.1.2' }, post: { name: 'Олег', phone: ctx.phone() } },
    ...extra,
  });
  const hourFromNow = Math.floor(Date.now() / 1000) + 3600;
  const signed = (claims: { wf: string; a: number; exp: number }, secret = ctx.resultSecret) =>
    signResultToken(claims, secret);
  const goodToken = signed({ wf: 'call-no-such-lead', a: 1, exp: hourFromNow });

  /** The same request as an operator would send it. */
  const asOperator = (request: RequestSpec): RequestSpec => ({
    ...request,
    headers: { ...request.headers, authorization: `Bearer ${ctx.operatorToken}` },
  });

  const cases: BadCase[] = [];
  const add = (name: string, request: RequestSpec, expect: Expectation): void => {
    cases.push({ name, request, expect });
  };

  // ── POST /api/leads: bodies that are not a JSON object ──────────────────────────────────────────
  add('leads: broken JSON', postRaw(LEADS, '{"name": "Иван", "phone": ', 'application/json'), {
    status: 400,
    error: /not valid JSON/,
  });
  add('leads: JSON with a trailing comma', postRaw(LEADS, '{"name":"Иван",}', 'application/json'), {
    status: 400,
  });
  add('leads: single-quoted pseudo-JSON', postRaw(LEADS, "{'name':'Иван'}", 'application/json'), {
    status: 400,
  });
  add('leads: JSON array', postJson(LEADS, [lead()]), { status: 400, field: 'body' });
  add('leads: JSON string', postRaw(LEADS, '"Иван 79161234567"', 'application/json'), { status: 400 });
  add('leads: JSON null', postRaw(LEADS, 'null', 'application/json'), { status: 400 });
  add('leads: JSON number', postRaw(LEADS, '42', 'application/json'), { status: 400 });
  add('leads: JSON true', postRaw(LEADS, 'true', 'application/json'), { status: 400 });
  add('leads: empty JSON body', postRaw(LEADS, '', 'application/json'), { status: 400, field: 'name' });
  add(
    'leads: 20 000 nested arrays',
    postRaw(LEADS, `${'['.repeat(20_000)}${']'.repeat(20_000)}`, 'application/json'),
    { status: 400, field: 'body' },
  );
  add(
    'leads: 3 000 nested objects',
    postRaw(LEADS, `${'{"a":'.repeat(3_000)}1${'}'.repeat(3_000)}`, 'application/json'),
    { status: 400, field: 'name' },
  );
  add(
    'leads: fields smuggled through __proto__',
    postRaw(LEADS, `{"__proto__":{"name":"Иван","phone":"${ctx.phone()}"}}`, 'application/json'),
    { status: 400, field: 'name' },
  );
  add(
    'leads: duplicate key, last one an object',
    postRaw(LEADS, `{"name":"Иван","phone":"${ctx.phone()}","name":{"first":"Иван"}}`, 'application/json'),
    { status: 400, field: 'name' },
  );

  // ── wrong types, field by field (the rest of the lead is valid) ─────────────────────────────────
  const wrongValues: Array<[string, unknown]> = [
    ['an object', { value: 'x' }],
    ['an array', ['x']],
    ['a boolean', true],
  ];
  for (const field of [
    'name',
    'phone',
    'ref',
    'city',
    'timezone',
    'partner',
    'site',
    'orderAmount',
    'comment',
  ]) {
    for (const [label, value] of wrongValues) {
      cases.push(invalid(`leads: ${field} is ${label}`, lead({ [field]: value }), field));
    }
  }
  cases.push(invalid('leads: name is a number', lead({ name: 42 }), 'name'));

  // ── missing and empty required fields ───────────────────────────────────────────────────────────
  cases.push(invalid('leads: empty object', {}, 'name'));
  cases.push(invalid('leads: no name', { phone: ctx.phone() }, 'name'));
  cases.push(invalid('leads: no phone', { name: 'Иван' }, 'phone'));
  cases.push(invalid('leads: empty name', lead({ name: '' }), 'name'));
  cases.push(invalid('leads: blank name', lead({ name: ' \t\n ' }), 'name'));
  cases.push(invalid('leads: null name', lead({ name: null }), 'name'));
  cases.push(invalid('leads: empty phone', lead({ phone: '' }), 'phone'));
  cases.push(invalid('leads: null phone', lead({ phone: null }), 'phone'));

  // ── phones that are not phones ──────────────────────────────────────────────────────────────────
  cases.push(invalid('leads: phone with letters', lead({ phone: '8916abc4567' }), 'phone'));
  cases.push(invalid('leads: phone too short', lead({ phone: '12345' }), 'phone'));
  cases.push(invalid('leads: phone of 41 characters', lead({ phone: '7'.repeat(41) }), 'phone'));
  cases.push(invalid('leads: phone as a negative number', lead({ phone: -1 }), 'phone'));
  cases.push(invalid('leads: phone as 1e21', lead({ phone: 1e21 }), 'phone'));
  cases.push(
    invalid('leads: phone with SQL', lead({ phone: "+7 916 123-45-67'; DROP TABLE leads;--" }), 'phone'),
  );
  cases.push(
    invalid('leads: phone in full-width digits', lead({ phone: '８９１６１２３４５６７' }), 'phone'),
  );
  cases.push(invalid('leads: phone with two pluses', lead({ phone: '++79161234567' }), 'phone'));

  // ── lengths ─────────────────────────────────────────────────────────────────────────────────────
  cases.push(invalid('leads: name of 201 characters', lead({ name: 'я'.repeat(201) }), 'name'));
  cases.push(invalid('leads: comment of 2001 characters', lead({ comment: 'x'.repeat(2001) }), 'comment'));
  cases.push(invalid('leads: city of 101 characters', lead({ city: 'К'.repeat(101) }), 'city'));
  cases.push(invalid('leads: timezone of 65 characters', lead({ timezone: 'E'.repeat(65) }), 'timezone'));
  cases.push(invalid('leads: partner of 65 characters', lead({ partner: 'p'.repeat(65) }), 'partner'));
  cases.push(invalid('leads: site of 201 characters', lead({ site: 's'.repeat(201) }), 'site'));

  // ── refs ────────────────────────────────────────────────────────────────────────────────────────
  cases.push(invalid('leads: ref with spaces', lead({ ref: 'order 42' }), 'ref'));
  cases.push(invalid('leads: ref with a NUL', lead({ ref: 'order\u000042' }), 'ref'));
  cases.push(invalid('leads: ref with a tab', lead({ ref: 'order\t42' }), 'ref'));
  cases.push(invalid('leads: ref with an escape character', lead({ ref: 'order\u001b[2J' }), 'ref'));
  cases.push(invalid('leads: ref with CR/LF header injection', lead({ ref: 'a\r\nSet-Cookie: x=1' }), 'ref'));
  cases.push(invalid('leads: ref of 129 characters', lead({ ref: 'r'.repeat(129) }), 'ref'));
  cases.push(invalid('leads: blank ref', lead({ ref: '   ' }), 'ref'));
  cases.push(invalid('leads: ref with HTML', lead({ ref: '<script>alert(1)</script>' }), 'ref'));

  // ── sizes ───────────────────────────────────────────────────────────────────────────────────────
  add('leads: 10 MB JSON body', postJson(LEADS, lead({ comment: 'x'.repeat(10 * MB) })), {
    status: 413,
    error: /larger than/,
  });
  add('leads: 100 kB name', postJson(LEADS, lead({ name: 'x'.repeat(100 * 1024) })), { status: 413 });
  add(
    'leads: 10 MB form body',
    postRaw(
      LEADS,
      form([
        ['name', 'Иван'],
        ['phone', ctx.phone()],
        ['comment', 'x'.repeat(10 * MB)],
      ]),
      FORM_TYPE['content-type'],
    ),
    { status: 413 },
  );
  add(
    'leads: form with 60 parameters',
    postRaw(
      LEADS,
      form(Array.from({ length: 60 }, (_, i): [string, string] => [`f${i}`, 'x'])),
      FORM_TYPE['content-type'],
    ),
    { status: 413 },
  );

  // ── content types ───────────────────────────────────────────────────────────────────────────────
  const leadText = JSON.stringify(lead());
  add('leads: text/plain', postRaw(LEADS, leadText, 'text/plain'), { status: 415, error: /content type/ });
  add('leads: application/xml', postRaw(LEADS, '<lead><name>Иван</name></lead>', 'application/xml'), {
    status: 415,
  });
  add(
    'leads: multipart/form-data',
    postRaw(
      LEADS,
      '--xyz\r\nContent-Disposition: form-data; name="name"\r\n\r\nИван\r\n--xyz--\r\n',
      'multipart/form-data; boundary=xyz',
    ),
    { status: 415 },
  );
  add('leads: no content type', postRaw(LEADS, new TextEncoder().encode(leadText)), { status: 415 });
  add('leads: text/html', postRaw(LEADS, '<form></form>', 'text/html'), { status: 415 });
  add('leads: JSON in latin1', postRaw(LEADS, leadText, 'application/json; charset=latin1'), { status: 415 });
  add(
    'leads: form in utf-7',
    postRaw(LEADS, 'name=a&phone=b', 'application/x-www-form-urlencoded; charset=utf-7'),
    {
      status: 415,
    },
  );
  add(
    'leads: unknown content encoding',
    {
      method: 'POST',
      path: LEADS,
      headers: { ...JSON_TYPE, 'content-encoding': 'x-unknown' },
      body: leadText,
    },
    { status: 415 },
  );
  add(
    'leads: gzip encoding that is not gzip',
    { method: 'POST', path: LEADS, headers: { ...JSON_TYPE, 'content-encoding': 'gzip' }, body: leadText },
    { status: 400 },
  );

  // ── form-encoded with bad fields ────────────────────────────────────────────────────────────────
  const postForm = (fields: Array<[string, string]>) =>
    postRaw(LEADS, form(fields), FORM_TYPE['content-type']);
  add(
    'form: empty name and phone',
    postForm([
      ['name', ''],
      ['phone', ''],
    ]),
    { status: 400, field: 'name' },
  );
  add(
    'form: phone with letters',
    postForm([
      ['name', 'Иван'],
      ['phone', 'abc'],
    ]),
    { status: 400, field: 'phone' },
  );
  add('form: no phone', postForm([['name', 'Иван']]), { status: 400, field: 'phone' });
  add(
    'form: name given twice',
    postForm([
      ['name', 'a'],
      ['name', 'b'],
      ['phone', ctx.phone()],
    ]),
    {
      status: 400,
      field: 'name',
    },
  );
  add(
    'form: ref with a space',
    postForm([
      ['name', 'Иван'],
      ['phone', ctx.phone()],
      ['ref', 'a b'],
    ]),
    {
      status: 400,
      field: 'ref',
    },
  );
  add('form: JSON text under the form type', postRaw(LEADS, leadText, FORM_TYPE['content-type']), {
    status: 400,
    field: 'name',
  });

  // ── the Corezoid-compatible path ────────────────────────────────────────────────────────────────
  const envelope = JSON.stringify({ ops: [op({})] });
  add('corezoid: wrong key', postRaw('/api/1/json/public/31754/wrong', envelope, FORM_TYPE['content-type']), {
    status: 404,
  });
  add(
    'corezoid: key in the wrong case',
    postRaw(`/api/1/json/public/31754/${ctx.corezoidKey.toUpperCase()}`, envelope, FORM_TYPE['content-type']),
    { status: 404 },
  );
  add('corezoid: GET instead of POST', get(corezoidPath), { status: 404 });
  add('corezoid: broken JSON', corezoid('{"ops":'), { status: 400 });
  add('corezoid: empty body', corezoid(''), { status: 400 });
  add('corezoid: JSON null', corezoid('null'), { status: 400 });
  add('corezoid: JSON array', corezoid('[]'), { status: 400 });
  add('corezoid: ops missing', corezoid('{}'), { status: 400, error: /ops/ });
  add('corezoid: ops is an object', corezoid('{"ops":{}}'), { status: 400, error: /ops/ });
  add('corezoid: ops is a string', corezoid('{"ops":"create"}'), { status: 400, error: /ops/ });
  add('corezoid: ops is empty', corezoid('{"ops":[]}'), { status: 400, error: /ops/ });
  add(
    'corezoid: 21 ops (all valid)',
    corezoid(JSON.stringify({ ops: Array.from({ length: 21 }, () => op({})) })),
    { status: 400, error: /ops/ },
  );
  add('corezoid: 10 MB body', corezoid(JSON.stringify({ ops: [op({ pad: 'x'.repeat(10 * MB) })] })), {
    status: 413,
  });
  add('corezoid: op of type delete', corezoid(JSON.stringify({ ops: [op({ type: 'delete' })] })), {
    status: 200,
    procs: ['error'],
  });
  add('corezoid: op on obj user', corezoid(JSON.stringify({ ops: [op({ obj: 'user' })] })), {
    status: 200,
    procs: ['error'],
  });
  add('corezoid: op without data', corezoid(JSON.stringify({ ops: [op({ data: undefined })] })), {
    status: 200,
    procs: ['error'],
  });
  add('corezoid: op whose data is a string', corezoid(JSON.stringify({ ops: [op({ data: 'name=Олег' })] })), {
    status: 200,
    procs: ['error'],
  });
  add('corezoid: op that is null or a string', corezoid('{"ops":[null,"create"]}'), {
    status: 200,
    procs: ['error', 'error'],
  });
  add(
    'corezoid: op whose post lacks the phone',
    corezoid(JSON.stringify({ ops: [op({ data: { post: { name: 'Олег' } } })] })),
    { status: 200, procs: ['error'] },
  );
  add(
    'corezoid: op whose name is an object',
    corezoid(JSON.stringify({ ops: [op({ data: { post: { name: { x: 1 }, phone: ctx.phone() } } })] })),
    { status: 200, procs: ['error'] },
  );
  add('corezoid: op whose ref has spaces', corezoid(JSON.stringify({ ops: [op({ ref: 'a b c' })] })), {
    status: 200,
    procs: ['error'],
  });
  add(
    'corezoid: two bad ops in one envelope',
    corezoid(JSON.stringify({ ops: [op({ type: 'modify' }), op({ data: { post: [] } })] })),
    { status: 200, procs: ['error', 'error'] },
  );

  // ── the VoxImplant result endpoint: the token is checked first ──────────────────────────────────
  const unsigned = `${Buffer.from(JSON.stringify({ wf: 'call-x', a: 1, exp: hourFromNow })).toString('base64url')}.${Buffer.from('not a signature').toString('base64url')}`;
  add('result: no token', postJson(RESULT, { result: 'answered', code: 200, duration: 5 }), { status: 401 });
  add('result: empty token', postJson(RESULT, { token: '', result: 'answered' }), { status: 401 });
  add('result: garbage token', postJson(RESULT, { token: 'garbage', result: 'answered' }), { status: 401 });
  add('result: token of three parts', postJson(RESULT, { token: 'a.b.c', result: 'answered' }), {
    status: 401,
  });
  add('result: valid-looking unsigned token', postJson(RESULT, { token: unsigned, result: 'answered' }), {
    status: 401,
  });
  add(
    'result: token signed with another secret',
    postJson(RESULT, {
      token: signed({ wf: 'call-x', a: 1, exp: hourFromNow }, 'not-the-secret'),
      result: 'answered',
    }),
    { status: 401 },
  );
  add(
    'result: expired token',
    postJson(RESULT, { token: signed({ wf: 'call-x', a: 1, exp: 1_000_000 }), result: 'answered' }),
    { status: 401, error: /expired/ },
  );
  add('result: token is a number', postJson(RESULT, { token: 12345, result: 'answered' }), { status: 401 });
  add(
    'result: token of 3000 characters',
    postJson(RESULT, { token: `${'a'.repeat(1500)}.${'b'.repeat(1500)}` }),
    {
      status: 401,
    },
  );
  add(
    'result: garbage bearer token',
    postJson(RESULT, { result: 'answered' }, { authorization: 'Bearer garbage' }),
    { status: 401 },
  );
  add('result: no token and no result', postJson(RESULT, { code: 200 }), { status: 401 });
  add('result: empty body', postRaw(RESULT, '', 'application/json'), { status: 401 });
  add('result: JSON array', postJson(RESULT, [goodToken, 'answered']), { status: 401 });
  add('result: broken JSON', postRaw(RESULT, '{"token":', 'application/json'), { status: 400 });
  add(
    'result: body over 8 kB',
    postJson(RESULT, { token: goodToken, result: 'answered', pad: 'x'.repeat(9000) }),
    {
      status: 413,
    },
  );
  add('result: signed token, no result', postJson(RESULT, { token: goodToken, code: 200 }), {
    status: 400,
    field: 'result',
  });
  add('result: signed token, unknown result', postJson(RESULT, { token: goodToken, result: 'exploded' }), {
    status: 400,
    field: 'result',
  });
  add(
    'result: signed token, code not a number',
    postJson(RESULT, { token: goodToken, result: 'busy', code: 'abc' }),
    {
      status: 400,
      field: 'code',
    },
  );
  add(
    'result: signed token, negative duration',
    postJson(RESULT, { token: goodToken, result: 'answered', duration: -5 }),
    { status: 400, field: 'duration' },
  );
  add(
    'result: signed token for a call nobody awaits',
    postJson(RESULT, { token: goodToken, result: 'answered', code: 200, duration: 3 }),
    { status: 409 },
  );

  // Tokens only the service can sign, but a bug elsewhere could still mint them: a run id that is
  // not one, or no workflow at all, makes the token malformed (401).
  add(
    'result: signed token naming a run id that is not one',
    postJson(RESULT, {
      token: signResultToken({ wf: 'call-x', run: 'garbage', a: 1, exp: hourFromNow }, ctx.resultSecret),
      result: 'answered',
    }),
    { status: 401 },
  );
  add(
    'result: signed token with an empty workflow id',
    postJson(RESULT, { token: signed({ wf: '', a: 1, exp: hourFromNow }), result: 'answered' }),
    { status: 401 },
  );

  // ── lead status and operator actions on refs that do not exist ─────────────────────────────────
  add(
    'actions: call-now on an unknown ref',
    asOperator({ method: 'POST', path: '/api/leads/no-such-ref/call-now' }),
    {
      status: 404,
    },
  );
  add(
    'actions: handled on an unknown ref',
    asOperator(postJson('/api/leads/no-such-ref/handled', { by: 'Ольга', note: 'ok' })),
    {
      status: 404,
    },
  );
  add('actions: cancel on an unknown ref', asOperator(postJson('/api/leads/no-such-ref/cancel', {})), {
    status: 404,
  });
  add(
    'actions: cancel on an unknown phone ref',
    asOperator({ method: 'POST', path: `/api/leads/${ctx.phone()}/cancel` }),
    {
      status: 404,
    },
  );
  add(
    'actions: handled with a numeric by',
    asOperator(postJson('/api/leads/no-such-ref/handled', { by: 5 })),
    {
      status: 400,
      field: 'by',
    },
  );
  add(
    'actions: handled with an unknown key',
    asOperator(postJson('/api/leads/no-such-ref/handled', { who: 'x' })),
    {
      status: 400,
    },
  );
  add(
    'actions: handled with broken JSON',
    asOperator(postRaw('/api/leads/no-such-ref/handled', '{"by":', 'application/json')),
    {
      status: 400,
    },
  );
  add(
    'actions: handled as text/plain',
    asOperator(postRaw('/api/leads/no-such-ref/handled', 'by=me', 'text/plain')),
    {
      status: 415,
    },
  );
  add('status: unknown ref', asOperator(get('/api/leads/no-such-ref')), { status: 404 });
  add('status: unknown phone ref', asOperator(get(`/api/leads/${ctx.phone()}`)), { status: 404 });
  add('status: ref with CR/LF header injection', asOperator(get('/api/leads/a%0D%0ASet-Cookie:%20x=1')), {
    status: 404,
  });
  add('status: ref that is not valid percent-encoding', asOperator(get('/api/leads/%E0%A4%A')), {
    status: 400,
  });
  add('status: ref of 2000 characters', asOperator(get(`/api/leads/${'r'.repeat(2000)}`)), { status: 404 });
  // No lead can have a ref over 128 characters (phone refs are at most 40), so these are unknown refs.
  add('status: ref of 8000 characters', asOperator(get(`/api/leads/${'r'.repeat(8000)}`)), { status: 404 });
  add(
    'actions: cancel on a ref of 8000 characters',
    asOperator({ method: 'POST', path: `/api/leads/${'r'.repeat(8000)}/cancel` }),
    {
      status: 404,
    },
  );
  add(
    'actions: cancel on a ref of 2000 characters',
    asOperator({ method: 'POST', path: `/api/leads/${'r'.repeat(2000)}/cancel` }),
    {
      status: 404,
    },
  );

  // ── dashboard periods ───────────────────────────────────────────────────────────────────────────
  add('dashboard: from=yesterday', asOperator(get('/api/dashboard?from=yesterday')), {
    status: 400,
    field: 'from',
  });
  add('dashboard: to=2024-02-30', asOperator(get('/api/dashboard?to=2024-02-30')), {
    status: 400,
    field: 'to',
  });
  add('dashboard: date-time without an offset', asOperator(get('/api/dashboard?from=2024-01-01T00:00:00')), {
    status: 400,
    field: 'from',
  });
  add('dashboard: from after to', asOperator(get('/api/dashboard?from=2024-03-01&to=2024-02-01')), {
    status: 400,
  });
  add('dashboard: from equal to to', asOperator(get('/api/dashboard?from=2024-03-01&to=2024-03-01')), {
    status: 400,
  });
  add('dashboard: from given twice', asOperator(get('/api/dashboard?from=2024-01-01&from=2024-02-01')), {
    status: 400,
    field: 'from',
  });
  add('dashboard: epoch milliseconds', asOperator(get('/api/dashboard?to=1700000000000')), {
    status: 400,
    field: 'to',
  });
  add(
    'dashboard: SQL in the date',
    asOperator(get(`/api/dashboard?from=${encodeURIComponent("2024-01-01' OR 1=1 --")}`)),
    {
      status: 400,
      field: 'from',
    },
  );

  // ── operator routes without the operator's token ───────────────────────────────────────────────
  const bearer = (request: RequestSpec, value: string): RequestSpec => ({
    ...request,
    headers: { ...request.headers, authorization: value },
  });
  add('operator: status without a token', get('/api/leads/no-such-ref'), { status: 401 });
  add('operator: status with a wrong token', bearer(get('/api/leads/no-such-ref'), 'Bearer wrong-token'), {
    status: 401,
  });
  add(
    'operator: status with the token but not as a bearer',
    bearer(get('/api/leads/no-such-ref'), `Basic ${ctx.operatorToken}`),
    { status: 401 },
  );
  add(
    'operator: status with the token plus one character',
    bearer(get('/api/leads/no-such-ref'), `Bearer ${ctx.operatorToken}x`),
    { status: 401 },
  );
  add('operator: call-now without a token', postJson('/api/leads/no-such-ref/call-now', {}), { status: 401 });
  add(
    'operator: cancel with a forged session cookie',
    {
      ...postJson('/api/leads/no-such-ref/cancel', {}),
      headers: { ...JSON_TYPE, cookie: `stl_operator=${Date.now() + 3_600_000}.${'A'.repeat(43)}` },
    },
    { status: 401 },
  );
  add('operator: dashboard numbers without a token', get('/api/dashboard'), { status: 401 });

  // ── unknown paths and methods ───────────────────────────────────────────────────────────────────
  add('unknown: GET /nope', get('/nope'), { status: 404, error: /not found/ });
  add('unknown: POST /api/nope', postJson('/api/nope', lead()), { status: 404 });
  add('unknown: GET /api/leads', get('/api/leads'), { status: 404 });
  add('unknown: PUT /api/leads', { ...postJson(LEADS, lead()), method: 'PUT' }, { status: 404 });
  add('unknown: DELETE /api/leads/x', { method: 'DELETE', path: '/api/leads/x' }, { status: 404 });
  add('unknown: PATCH /healthz', { method: 'PATCH', path: '/healthz' }, { status: 404 });
  add('unknown: GET /api/leads/x/call-now', get('/api/leads/x/call-now'), { status: 404 });
  add('unknown: POST /api/leads/x/explode', postJson('/api/leads/x/explode', {}), { status: 404 });
  add('unknown: path traversal', get('/..%2f..%2fetc%2fpasswd'), { status: 404 });
  add('unknown: POST under the result path', postJson(`${RESULT}/extra`, { token: goodToken }), {
    status: 404,
  });

  return cases;
}
