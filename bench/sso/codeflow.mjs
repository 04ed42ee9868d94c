// Code-flow driver for bench/sso/run.sh: plays a browser plus a relying party
// through the OpenID Connect authorization code flow with PKCE S256, against
// the hub or oidc-provider (the same code for both; only URLs differ):
//
//   1. GET  authorize?response_type=code&…&code_challenge=…   → 302/303 Location
//   2. GET  the sign-in page it points to; read its <form> action and hidden
//      inputs (the hub's csrf/request, oidc-provider's uid) and keep cookies
//   3. POST the form with username and password (and an Origin header, as a
//      browser sends) → redirects, followed until the redirect_uri, whose
//      query must carry code, the same state, and iss when given
//   4. POST token: grant_type=authorization_code, code, redirect_uri,
//      code_verifier, client_secret_basic → 200 with access_token, id_token
//      and refresh_token
//
// Every flow is a new browser (empty cookie jar), so every flow signs in with
// the password: one argon2id verification per flow on the server.
//
// Modes:
//   node codeflow.mjs mint   COUNT=N, CONCURRENCY=C: N flows; writes the
//                            refresh tokens, one a line, to REFRESH_OUT and the
//                            last access token to ACCESS_OUT (when set); prints
//                            the JWT headers of the first response.
//   node codeflow.mjs load   CONCURRENCY=C loops for DURATION seconds; prints
//                            RESULT flows=… flows_per_s=… p50_ms=… p99_ms=…
//                            errors=… (flows that started in the window and
//                            ended after it are waited for and counted).
//
// Environment (set by run.sh): AUTHORIZE_URL, TOKEN_URL, ORIGIN (the server's
// origin, sent as Origin on the form POST), CLIENT_ID, CLIENT_SECRET,
// REDIRECT_URI, SCOPE, BENCH_USERNAME (one or more, space-separated; loop i
// signs in as the i-th, round robin), BENCH_PASSWORD, plus the mode's knobs above.
// Plain node:http with a keep-alive agent: no dependencies.

import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';

const mode = process.argv[2];
const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') {
    console.error(`codeflow.mjs: ${name} is not set`);
    process.exit(2);
  }
  return v;
};

const authorizeUrl = env('AUTHORIZE_URL');
const tokenUrl = env('TOKEN_URL');
const origin = env('ORIGIN');
const clientId = env('CLIENT_ID');
const basic = Buffer.from(`${clientId}:${env('CLIENT_SECRET')}`).toString('base64');
const redirectUri = env('REDIRECT_URI');
const scope = env('SCOPE', 'openid profile email offline_access');
// Several accounts, dealt out to the concurrent loops: the hub refuses more than
// auth.max_failures (5) sign-ins to one name at once, as a guard against bursts
// of guesses, so eight loops on one account would measure that guard.
const usernames = env('BENCH_USERNAME').split(/[\s,]+/).filter(Boolean);
const password = env('BENCH_PASSWORD');
const concurrency = Number(env('CONCURRENCY', '8'));

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency + 2 });

// One HTTP exchange; the body is read whole (pages and token responses are small).
function request(method, url, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({
      agent, method, hostname: u.hostname, port: u.port, path: u.pathname + u.search,
      headers: body === undefined ? headers : { ...headers, 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.on('error', reject);
    req.end(body);
  });
}

// A browser's cookie jar for one host: name → value (paths and expiry do not
// matter for a flow that lasts a second; an expired/cleared cookie is dropped).
class Jar {
  cookies = new Map();

  store(res) {
    for (const line of res.headers['set-cookie'] || []) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') this.cookies.delete(name); else this.cookies.set(name, value);
    }
  }

  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const fail = (step, res, extra = '') => {
  const snippet = (res?.body || '').replace(/\s+/g, ' ').slice(0, 200);
  return new Error(`${step}: HTTP ${res?.status}${extra ? ` ${extra}` : ''} ${snippet}`);
};

const decodeHtml = (s) => s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
  .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCharCode(parseInt(n, 16)))
  .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
  .replace(/&amp;/g, '&');

// The sign-in form: its action and its hidden inputs (attribute order varies).
function parseForm(html) {
  const form = html.match(/<form\b[^>]*\bmethod="post"[^>]*>[\s\S]*?<\/form>/i)?.[0];
  if (!form) return null;
  const action = decodeHtml(form.match(/\baction="([^"]*)"/i)?.[1] ?? '');
  const fields = new URLSearchParams();
  for (const input of form.match(/<input\b[^>]*>/gi) || []) {
    if (!/\btype="hidden"/i.test(input)) continue;
    const name = input.match(/\bname="([^"]*)"/i)?.[1];
    const value = input.match(/\bvalue="([^"]*)"/i)?.[1] ?? '';
    if (name) fields.append(decodeHtml(name), decodeHtml(value));
  }
  return { action, fields };
}

// Follow same-server redirects (GET, with cookies) until one leaves for the
// redirect_uri; returns that URL.
async function followToRedirectUri(res, base, jar, step) {
  for (let hops = 0; hops < 10; hops++) {
    if (![301, 302, 303, 307].includes(res.status) || !res.headers.location) {
      throw fail(step, res, '(expected a redirect)');
    }
    const next = new URL(res.headers.location, base).href;
    if (next.startsWith(redirectUri)) return new URL(next);
    res = await request('GET', next, { headers: { Cookie: jar.header() } });
    jar.store(res);
    base = next;
  }
  throw new Error(`${step}: more than 10 redirects`);
}

async function flow(username) {
  const jar = new Jar();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope,
    state, nonce, code_challenge: challenge, code_challenge_method: 'S256',
  });

  // 1. authorize → the sign-in page
  const authUrl = `${authorizeUrl}?${q}`;
  let res = await request('GET', authUrl);
  jar.store(res);
  if (![302, 303].includes(res.status) || !res.headers.location) throw fail('authorize', res, '(expected a redirect to sign-in)');
  const pageUrl = new URL(res.headers.location, authUrl).href;

  // 2. the sign-in page
  res = await request('GET', pageUrl, { headers: { Cookie: jar.header() } });
  jar.store(res);
  if (res.status !== 200) throw fail('sign-in page', res);
  const form = parseForm(res.body);
  if (!form) throw fail('sign-in page', res, '(no POST form)');

  // 3. sign in: one POST with the hidden fields plus username and password
  form.fields.set('username', username);
  form.fields.set('password', password);
  const postUrl = new URL(form.action || pageUrl, pageUrl).href;
  res = await request('POST', postUrl, {
    headers: {
      Cookie: jar.header(), Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: form.fields.toString(),
  });
  jar.store(res);
  const cb = await followToRedirectUri(res, postUrl, jar, 'sign-in');
  if (cb.searchParams.get('error')) throw new Error(`authorize error: ${cb.searchParams.get('error')}: ${cb.searchParams.get('error_description')}`);
  const code = cb.searchParams.get('code');
  if (!code) throw new Error(`no code in ${cb}`);
  if (cb.searchParams.get('state') !== state) throw new Error('state mismatch');
  const iss = cb.searchParams.get('iss');
  if (iss !== null && iss !== origin) throw new Error(`iss ${iss} is not ${origin}`);

  // 4. the relying party redeems the code
  res = await request('POST', tokenUrl, {
    headers: {
      Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json',
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
    }).toString(),
  });
  if (res.status !== 200) throw fail('token', res);
  const tokens = JSON.parse(res.body);
  for (const k of ['access_token', 'id_token', 'refresh_token']) {
    if (!tokens[k]) throw fail('token', res, `(no ${k})`);
  }
  return tokens;
}

const jwtHeader = (t) => {
  const parts = t.split('.');
  if (parts.length !== 3) return { format: 'opaque' };
  return JSON.parse(Buffer.from(parts[0], 'base64url').toString());
};

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : 0);

async function mint() {
  const count = Number(env('COUNT'));
  const refreshOut = env('REFRESH_OUT');
  const accessOut = process.env.ACCESS_OUT;
  const tokens = [];
  let next = 0;
  let first;
  const worker = async (_, i) => {
    while (next < count) {
      next += 1;
      const t = await flow(usernames[i % usernames.length]);
      first ??= t;
      tokens.push(t);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  writeFileSync(refreshOut, tokens.map((t) => t.refresh_token).join('\n') + '\n');
  if (accessOut) writeFileSync(accessOut, `${tokens.at(-1).access_token}\n`);
  const at = jwtHeader(first.access_token);
  const it = jwtHeader(first.id_token);
  console.log(JSON.stringify({
    flows: tokens.length,
    access_token: at.format === 'opaque' ? 'opaque' : `${at.alg} ${at.typ ?? '-'}`,
    id_token: `${it.alg} ${it.typ ?? '-'}`,
    scope: first.scope,
  }));
}

async function load() {
  const duration = Number(env('DURATION', '20')) * 1000;
  const latencies = [];
  const errors = new Map();
  let nerrors = 0;
  const t0 = performance.now();
  const deadline = t0 + duration;
  const worker = async (_, i) => {
    while (performance.now() < deadline) {
      const s = performance.now();
      try {
        await flow(usernames[i % usernames.length]);
        latencies.push(performance.now() - s);
      } catch (e) {
        nerrors += 1;
        const key = String(e.message).slice(0, 160);
        errors.set(key, (errors.get(key) || 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  for (const [msg, n] of errors) console.error(`error x${n}: ${msg}`);
  console.log(`RESULT flows=${latencies.length} duration_s=${elapsed.toFixed(3)} flows_per_s=${(latencies.length / elapsed).toFixed(2)} `
    + `p50_ms=${pct(latencies, 50).toFixed(1)} p99_ms=${pct(latencies, 99).toFixed(1)} max_ms=${(latencies.at(-1) ?? 0).toFixed(1)} `
    + `errors=${nerrors} concurrency=${concurrency}`);
}

try {
  if (mode === 'mint') await mint();
  else if (mode === 'load') await load();
  else {
    console.error('usage: node codeflow.mjs mint|load');
    process.exit(2);
  }
} catch (e) {
  console.error(`codeflow.mjs ${mode}: ${e.message}`);
  process.exit(1);
}
agent.destroy();
