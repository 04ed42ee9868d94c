// The OpenID Foundation conformance suite's OP test plans, module by module, against the
// hub, as a confidential client registered WITHOUT PKCE (as the certification runs them).
//
// Plans (module lists from the suite's test plan classes, openid-certification/
// conformance-suite, src/main/java/net/openid/conformance/openid/):
//   Config OP          OIDCCConfigTestPlan                          (discovery)
//   Basic OP           OIDCCBasicTestPlan                           (code flow, static client,
//                                                                    client_secret_basic, one
//                                                                    module with client_secret_post)
//   RP-Initiated OP    OIDCCRpInitiatedLogoutTestPlan
//   Back-Channel OP    OIDCCBackchannelRpInitiatedLogoutTestPlan
// Each module below is named by the suite's testName and checks what that module's
// conditions check; where the suite only raises a WARNING for a SHOULD the hub means to
// meet (code reuse answered invalid_grant, the access token of a replayed code revoked,
// UserInfo by form body, an essential claim released, no unexpected parameters on error
// redirects, the acr asked for), it is a failure here. The suite's placeholder steps (a
// screenshot a person looks at) become checks of the page: an error page, not a redirect.
//
// Peer: panva's openid-client 6 (discovery, authorization URLs, the code grant with its
// iss/state/nonce/ID-token-signature checks, refresh, UserInfo, end-session URLs). The
// browser is a small form driver over fetch with a cookie jar (one fresh jar per module
// where the suite asks for cookies to be removed).
//
// Usage: node conformance.mjs CONFIG_JSON
//   { issuer, username, password, rp_port, holds: [scopes the person has data for],
//     clients: { basic, post, second, bcl }: { client_id, client_secret, redirect_uri,
//                post_logout_redirect_uri?, backchannel_logout_uri? } }
// The RP's URIs are all on http://127.0.0.1:rp_port, where this script listens (the
// back-channel logout endpoint and the request_uri document live there).
//
// Prints one JSON line per module: {"module", "result": "passed"|"failed"|"skipped",
// "detail"}, then `conformance done`. Exits 0 when every module ran (whatever its
// result); the Rust test decides.

import http from 'node:http';
import { createHash, createHmac, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import * as client from 'openid-client';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const { issuer, username, password } = cfg;
// The scopes for whose claims the directory holds data about this person.
const holds = cfg.holds ?? ['profile', 'email'];
const HTTP_TIMEOUT_MS = 15_000;
const rpOrigin = `http://127.0.0.1:${cfg.rp_port}`;

// ---------------------------------------------------------------------------------------
// Reporting

class CheckFailed extends Error {}
class Skip extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

function describe(err) {
  if (err instanceof CheckFailed || err instanceof Skip) return err.message;
  const parts = [`${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`];
  if (err?.code) parts.push(`code=${err.code}`);
  if (err?.status) parts.push(`status=${err.status}`);
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  if (err?.cause && !(err.cause instanceof Error)) {
    try {
      parts.push(`cause: ${JSON.stringify(err.cause).slice(0, 400)}`);
    } catch {
      /* unprintable */
    }
  } else if (err?.cause) {
    parts.push(`cause: ${err.cause.message}`);
  }
  return parts.join('; ');
}

const results = [];

async function module_(name, fn) {
  let line;
  try {
    const detail = await fn();
    line = { module: name, result: 'passed', detail: detail ?? '' };
  } catch (err) {
    line = { module: name, result: err instanceof Skip ? 'skipped' : 'failed', detail: describe(err) };
  }
  results.push(line);
  console.log(JSON.stringify(line));
}

// ---------------------------------------------------------------------------------------
// The relying party's own endpoint: back-channel logout receiver, request_uri host

const backchannel = []; // { body (URLSearchParams), contentType }
let requestUriDocument = null;

const server = http.createServer((req, res) => {
  const url = new URL(req.url, rpOrigin);
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (req.method === 'POST' && url.pathname === '/backchannel_logout') {
      backchannel.push({ body: new URLSearchParams(body), contentType: req.headers['content-type'] ?? '' });
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/request_uri' && requestUriDocument) {
      res.writeHead(200, { 'content-type': 'application/oauth-authz-req+jwt' });
      res.end(requestUriDocument);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('relying party');
  });
});
await new Promise((resolve) => server.listen(cfg.rp_port, '127.0.0.1', resolve));

// ---------------------------------------------------------------------------------------
// A browser without JavaScript: cookie jar, manual redirects, HTML forms

class CookieJar {
  #cookies = new Map();
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

class Browser {
  jar = new CookieJar();

  async go(url, { method = 'GET', form } = {}) {
    const headers = { accept: 'text/html,application/xhtml+xml' };
    const cookie = this.jar.header();
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers.origin = new URL(url).origin;
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(url, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    this.jar.store(response);
    const location = response.headers.get('location');
    return {
      url: new URL(url),
      status: response.status,
      headers: response.headers,
      location: location === null ? null : new URL(location, url),
      text: await response.text(),
    };
  }
}

function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|quot|apos|lt|gt);/gi, (_, ent) => {
    const e = ent.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>' }[e];
  });
}

function attributes(tagBody) {
  const attrs = {};
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
  for (const m of tagBody.matchAll(re)) {
    attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// The POST form on `page` whose action resolves to `path`: { action, hidden, buttons }.
function findForm(page, path) {
  for (const m of page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi)) {
    const attrs = attributes(m[1]);
    const action = new URL(attrs.action ?? '', page.url);
    if (action.pathname !== path || (attrs.method ?? 'get').toLowerCase() !== 'post') continue;
    const hidden = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if ((a.type ?? '').toLowerCase() === 'hidden' && a.name) hidden[a.name] = a.value ?? '';
    }
    const buttons = [];
    for (const b of m[2].matchAll(/<button\b([^>]*)>/gi)) {
      const a = attributes(b[1]);
      if (a.name) buttons.push({ name: a.name, value: a.value ?? '' });
    }
    return { action, hidden, buttons };
  }
  return null;
}

function snippet(page) {
  return page.text
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

const hubOrigin = new URL(issuer).origin;

// Drives the browser from `start` through the hub's sign-in and consent pages until the
// hub sends it anywhere off the hub (returned as { url }), or shows a page that is none
// of those (returned as { page } when `allowPage`, else a failure).
//   login: 'forbid' | 'allow' | 'require'    consent: 'allow' | 'forbid'
async function frontChannel(b, start, opts = {}) {
  const { login = 'allow', consent = 'allow', allowPage = false } = opts;
  let sawLogin = 0;
  let page = start.form ? await b.go(start.url, { method: 'POST', form: start.form }) : await b.go(start);
  for (let hop = 0; hop < 30; hop++) {
    if ([301, 302, 303, 307, 308].includes(page.status)) {
      check(page.location, `redirect ${page.status} from ${page.url} without Location`);
      if (page.location.origin !== hubOrigin) {
        check(login !== 'require' || sawLogin > 0, 'the hub did not ask the person to sign in again');
        return { url: page.location, sawLogin };
      }
      page = await b.go(page.location);
      continue;
    }
    const loginForm = findForm(page, '/login');
    if (loginForm) {
      check(login !== 'forbid', `the hub asked for a sign-in although the session should have been reused (${page.url.pathname})`);
      sawLogin++;
      check(sawLogin <= 2, `the sign-in page came back after a correct password: ${snippet(page)}`);
      page = await b.go(loginForm.action, {
        method: 'POST',
        form: { ...loginForm.hidden, username, password },
      });
      continue;
    }
    const consentForm = findForm(page, '/consent');
    if (consentForm) {
      check(consent === 'allow', `unexpected consent page at ${page.url}`);
      page = await b.go(consentForm.action, {
        method: 'POST',
        form: { ...consentForm.hidden, decision: 'allow' },
      });
      continue;
    }
    if (allowPage) return { page, sawLogin };
    throw new CheckFailed(`the hub showed a page instead of redirecting (${page.status} at ${page.url.pathname}): ${snippet(page)}`);
  }
  throw new CheckFailed(`more than 30 hops from ${start.url ?? start}`);
}

// ---------------------------------------------------------------------------------------
// Library configurations, one per registered client

async function discover(c, auth = 'basic') {
  const method = auth === 'post' ? client.ClientSecretPost(c.client_secret) : client.ClientSecretBasic(c.client_secret);
  const config = await client.discovery(new URL(issuer), c.client_id, { id_token_signed_response_alg: 'RS256' }, method, {
    execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
    timeout: HTTP_TIMEOUT_MS / 1000,
  });
  // Keep the last token endpoint response's headers (the library does not expose them).
  config.lastTokenHeaders = null;
  config[client.customFetch] = async (url, init) => {
    const r = await fetch(url, init);
    if (url.toString() === config.serverMetadata().token_endpoint) config.lastTokenHeaders = r.headers;
    return r;
  };
  return config;
}

const C = cfg.clients;
const basic = await discover(C.basic);
const md = basic.serverMetadata();
const post = await discover(C.post, 'post');
const second = await discover(C.second);
const bcl = await discover(C.bcl);
const jwks = await (await fetch(md.jwks_uri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) })).json();

// ---------------------------------------------------------------------------------------
// Checks shared by the modules (the suite's conditions, named where they come from)

// RFC 6749 §5.2 / §4.1.2.1: error_description = 1*( %x20-21 / %x23-5B / %x5D-7E ); the
// suite also allows TAB, CR and LF but warns on them.
const ERROR_DESCRIPTION = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
// RFC 6749 §5.2: error_uri = 1*( %x21 / %x23-5B / %x5D-7E ) and a URI.
const ERROR_URI = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

function checkErrorFields(o, where) {
  if (o.error_description !== undefined && o.error_description !== null) {
    check(ERROR_DESCRIPTION.test(o.error_description), `${where}: error_description has characters RFC 6749 §5.2 forbids: ${JSON.stringify(o.error_description)}`);
  }
  if (o.error_uri !== undefined && o.error_uri !== null) {
    check(ERROR_URI.test(o.error_uri), `${where}: error_uri has characters RFC 6749 §5.2 forbids`);
  }
}

// performGenericAuthorizationEndpointErrorResponseValidation: state echoed, iss right,
// an error, no code, only error/error_description/error_uri/state/iss, RFC 6749 charset.
function checkAuthorizationError(url, state, allowed) {
  const q = url.searchParams;
  const error = q.get('error');
  check(error, `expected an error at the redirect URI, got ${url}`);
  if (allowed) check(allowed.includes(error), `error=${error}, expected one of ${allowed.join(', ')}`);
  check(q.get('state') === state, `state not echoed on the error response (got ${q.get('state')})`);
  check(q.get('iss') === issuer, `iss on the error response is ${q.get('iss')}, expected ${issuer} (RFC 9207)`);
  check(!q.has('code'), 'the error response carries a code');
  const unexpected = [...q.keys()].filter((k) => !['error', 'error_description', 'error_uri', 'state', 'session_state', 'iss'].includes(k));
  check(unexpected.length === 0, `unexpected parameters on the error response: ${unexpected.join(', ')}`);
  checkErrorFields(Object.fromEntries(q), 'authorization error');
  return error;
}

function shannonBits(s) {
  const counts = new Map();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let e = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    e -= p * Math.log2(p);
  }
  return e * s.length;
}

function b64json(seg) {
  return JSON.parse(Buffer.from(seg, 'base64url').toString('utf8'));
}

function leftHalfHash(value) {
  const d = createHash('sha256').update(value, 'ascii').digest();
  return d.subarray(0, d.length / 2).toString('base64url');
}

const STANDARD_STRING_CLAIMS = ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'profile', 'picture', 'website', 'email', 'gender', 'birthdate', 'zoneinfo', 'locale', 'phone_number'];
const SCOPE_CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'profile', 'picture', 'website', 'gender', 'birthdate', 'zoneinfo', 'locale', 'updated_at', 'preferred_username'],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
  offline_access: [],
};

// ValidateIdTokenStandardClaims / ValidateUserInfoStandardClaims: OIDC Core §5.1 types.
function checkStandardClaimTypes(claims, where) {
  for (const k of STANDARD_STRING_CLAIMS) {
    if (k in claims) check(typeof claims[k] === 'string', `${where}: ${k} must be a string, got ${JSON.stringify(claims[k])}`);
  }
  for (const k of ['email_verified', 'phone_number_verified']) {
    if (k in claims) check(typeof claims[k] === 'boolean', `${where}: ${k} must be a boolean, got ${JSON.stringify(claims[k])}`);
  }
  if ('updated_at' in claims) {
    check(Number.isInteger(claims.updated_at) && claims.updated_at > 0, `${where}: updated_at must be a number of seconds`);
    check(claims.updated_at < Date.now() / 1000 + 300, `${where}: updated_at is in the future (milliseconds?)`);
  }
  if ('address' in claims) {
    check(claims.address && typeof claims.address === 'object' && !Array.isArray(claims.address), `${where}: address must be a JSON object`);
    for (const [k, v] of Object.entries(claims.address)) {
      check(typeof v === 'string', `${where}: address.${k} must be a string`);
    }
  }
}

const ID_TOKEN_PROTOCOL_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'azp', 'at_hash', 'c_hash', 'nbf', 'jti', 'sid', 's_hash'];

// PerformStandardIdTokenChecks + OIDCCServerTest's extras, on a token response the
// library has validated (signature, iss, aud, exp, iat, nonce, state).
function checkIdToken(config, tokens, { scope = 'openid', requested = [] } = {}) {
  check(typeof tokens.id_token === 'string', 'the token response has no id_token');
  check(typeof tokens.access_token === 'string' && tokens.access_token, 'the token response has no access_token');
  check(tokens.token_type === 'bearer', `token_type should be Bearer, got ${tokens.token_type}`);
  check(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, `expires_in should be a positive integer, got ${tokens.expires_in}`);
  const [h] = tokens.id_token.split('.');
  const header = b64json(h);
  const claims = tokens.claims();
  const now = Date.now() / 1000;
  check(header.alg === 'RS256', `the ID token is signed ${header.alg}; RS256 is the default (OIDC Core §3.1.3.7)`);
  check(typeof header.kid === 'string' && header.kid, 'the ID token header has no kid (OIDC Core §10.1)');
  check(claims.iss === issuer, `iss ${claims.iss} != ${issuer}`);
  check(claims.aud === config.clientMetadata().client_id || (Array.isArray(claims.aud) && claims.aud.includes(config.clientMetadata().client_id)), 'aud is not the client');
  check(claims.exp > now - 300 && claims.exp < now + 50 * 365 * 86400, `exp ${claims.exp} is not a sensible time in seconds`);
  check(claims.iat > now - 300 && claims.iat < now + 300, `iat ${claims.iat} is more than 5 minutes away`);
  if (claims.auth_time !== undefined) {
    check(Number.isInteger(claims.auth_time), 'auth_time must be a number of seconds');
    check(claims.auth_time > now - 365 * 86400 && claims.auth_time < now + 300, `auth_time ${claims.auth_time} is not sensible`);
  }
  if (claims.acr !== undefined) check(typeof claims.acr === 'string' && claims.acr !== '', 'acr is an empty string');
  check(typeof claims.sub === 'string' && claims.sub && claims.sub.length <= 255, 'sub must be a string of at most 255 ASCII characters');
  if (claims.at_hash !== undefined) check(claims.at_hash === leftHalfHash(tokens.access_token), 'at_hash does not match the access token');
  check(claims.c_hash === undefined, 'c_hash in an ID token from the token endpoint');
  checkStandardClaimTypes(claims, 'ID token');
  // EnsureIdTokenDoesNotContainNonRequestedClaims: only protocol claims and the
  // requested scopes' claims (plus claims asked for by name).
  const allowed = new Set([...ID_TOKEN_PROTOCOL_CLAIMS, ...requested]);
  for (const s of scope.split(' ')) for (const c of SCOPE_CLAIMS[s] ?? []) allowed.add(c);
  const extra = Object.keys(claims).filter((k) => !allowed.has(k));
  check(extra.length === 0, `the ID token carries claims nobody asked for: ${extra.join(', ')}`);
  return { claims, header };
}

function checkCode(url) {
  const code = url.searchParams.get('code');
  check(code, `no code at the redirect URI: ${url}`);
  // EnsureMinimumAuthorizationCodeLength / Entropy (RFC 6749 §10.10, RFC 6819 §5.1.4.2.2)
  check(Buffer.byteLength(code) * 8 >= 128, `the code is shorter than 128 bits: ${code.length} characters`);
  check(shannonBits(code) > 96, `the code's Shannon entropy is ${shannonBits(code).toFixed(1)} bits, at most 96`);
  return code;
}

function checkNoStore(config, what) {
  const cc = config.lastTokenHeaders?.get('cache-control') ?? '';
  check(cc.split(',').some((p) => p.trim() === 'no-store'), `${what}: Cache-Control is ${JSON.stringify(cc)}, must contain no-store (RFC 6749 §5.1)`);
}

// One authorization: builds the request (parameter order as given), drives the browser,
// redeems the code through the library and runs the standard ID token checks.
async function authorize(b, config, c, opts = {}) {
  const {
    scope = 'openid',
    nonce = true,
    extra = {},
    login = 'allow',
    method = 'GET',
    order = null,
    pkce = false,
    requested = [],
  } = opts;
  const state = client.randomState();
  const n = nonce ? client.randomNonce() : undefined;
  let verifier;
  let params = { response_type: 'code', client_id: c.client_id, scope, redirect_uri: c.redirect_uri, state, ...(n ? { nonce: n } : {}), ...extra };
  if (pkce) {
    verifier = client.randomPKCECodeVerifier();
    params.code_challenge = await client.calculatePKCECodeChallenge(verifier);
    params.code_challenge_method = 'S256';
  }
  if (order) params = Object.fromEntries(order(Object.entries(params)));
  const start =
    method === 'POST'
      ? { url: md.authorization_endpoint, form: params }
      : `${md.authorization_endpoint}?${new URLSearchParams(params)}`;
  const cb = await frontChannel(b, start, { login });
  check(cb.url.origin + cb.url.pathname === c.redirect_uri, `sent to ${cb.url.origin}${cb.url.pathname}, not the redirect_uri`);
  check(!cb.url.searchParams.has('error'), `the hub answered error=${cb.url.searchParams.get('error')} (${cb.url.searchParams.get('error_description')})`);
  const code = checkCode(cb.url);
  const tokens = await client.authorizationCodeGrant(config, cb.url, {
    expectedState: state,
    expectedNonce: n,
    pkceCodeVerifier: verifier,
    idTokenExpected: true,
    maxAge: extra.max_age !== undefined ? Number(extra.max_age) : undefined,
  });
  checkNoStore(config, 'token response');
  const { claims, header } = checkIdToken(config, tokens, { scope, requested });
  return { tokens, claims, header, code, sawLogin: cb.sawLogin, state };
}

// CallUserInfoEndpoint (GET, POST with header, POST with form body), raw, so that the
// status, the content type and the JSON are checked as sent.
async function userinfo(accessToken, how = 'get') {
  const init = { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) };
  if (how === 'get') init.headers.authorization = `Bearer ${accessToken}`;
  if (how === 'post-header') {
    init.method = 'POST';
    init.headers.authorization = `Bearer ${accessToken}`;
  }
  if (how === 'post-body') {
    init.method = 'POST';
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
    init.body = new URLSearchParams({ access_token: accessToken }).toString();
  }
  const r = await fetch(md.userinfo_endpoint, init);
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

function checkUserInfo(r, sub, what) {
  check(r.status === 200, `${what}: UserInfo answered ${r.status}: ${r.text.slice(0, 200)}`);
  check(/^application\/json\b/i.test(r.headers.get('content-type') ?? ''), `${what}: UserInfo content-type is ${r.headers.get('content-type')} (OIDC Core §5.3.2)`);
  const info = JSON.parse(r.text);
  check(info.sub === sub, `${what}: UserInfo sub ${info.sub} != the ID token's ${sub} (OIDC Core §5.3.2)`);
  checkStandardClaimTypes(info, 'UserInfo');
  return info;
}

// A token endpoint request sent raw (to see exactly what comes back).
async function tokenRequest(c, form, auth = 'basic') {
  const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  const body = new URLSearchParams(form);
  if (auth === 'basic') {
    const enc = (s) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(c.client_id)}:${enc(c.client_secret)}`).toString('base64')}`;
  } else {
    body.set('client_id', c.client_id);
    body.set('client_secret', c.client_secret);
  }
  const r = await fetch(md.token_endpoint, { method: 'POST', headers, body: body.toString(), signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* checked by the caller */
  }
  return { status: r.status, headers: r.headers, json, text };
}

// CheckTokenEndpointHttpStatus400 + ReturnedJsonContentType + ErrorInvalidGrant + the
// RFC 6749 §5.2 character sets.
function checkInvalidGrant(r, what) {
  check(r.status === 400, `${what}: expected 400, got ${r.status}: ${r.text.slice(0, 200)}`);
  check(/^application\/json\b/i.test(r.headers.get('content-type') ?? ''), `${what}: content-type ${r.headers.get('content-type')}`);
  check(r.json?.error === 'invalid_grant', `${what}: expected invalid_grant, got ${r.json?.error}`);
  checkErrorFields(r.json, what);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function scopeListed(s) {
  return Array.isArray(md.scopes_supported) && md.scopes_supported.includes(s);
}

// A JWS verified with the hub's JWKS (RS256/ES256), for tokens the library does not read.
function verifyHubJws(jwt) {
  const [h, p, s] = jwt.split('.');
  const header = b64json(h);
  const jwk = (jwks.keys ?? []).find((k) => k.kid === header.kid);
  check(jwk, `no key ${header.kid} in the hub's JWKS`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  let ok;
  if (header.alg === 'RS256') ok = cryptoVerify('sha256', data, key, sig);
  else if (header.alg === 'ES256') ok = cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  else throw new CheckFailed(`unexpected alg ${header.alg}`);
  check(ok, 'the signature does not verify with the hub JWKS');
  return { header, claims: b64json(p) };
}

// prompt=none in `b` must come back with an error that needs a user interface.
async function expectInteractionRequired(b, config, c) {
  const state = randomBytes(96).toString('base64url'); // the suite's 128-character state
  const url = client.buildAuthorizationUrl(config, { redirect_uri: c.redirect_uri, scope: 'openid', state, nonce: client.randomNonce(), prompt: 'none' });
  const cb = await frontChannel(b, url.href, { login: 'forbid', consent: 'forbid' });
  check(cb.url.origin + cb.url.pathname === c.redirect_uri, `prompt=none went to ${cb.url.origin}${cb.url.pathname}`);
  return checkAuthorizationError(cb.url, state, ['interaction_required', 'login_required', 'account_selection_required', 'consent_required']);
}

// ---------------------------------------------------------------------------------------
// The modules. The one that waits 30 seconds runs alongside the others.

const codeReuse30 = (async () => {
  const b = new Browser();
  try {
    const first = await authorize(b, basic, C.basic);
    await sleep(30_000);
    const r = await tokenRequest(C.basic, { grant_type: 'authorization_code', code: first.code, redirect_uri: C.basic.redirect_uri });
    checkInvalidGrant(r, 'the code redeemed again 30 s later');
    const u = await userinfo(first.tokens.access_token);
    check(u.status >= 400 && u.status < 500, `the access token issued for the replayed code still works at UserInfo (${u.status}); RFC 6749 §4.1.2 says it SHOULD be revoked`);
    return { ok: 'replay refused with invalid_grant; the first access token is revoked' };
  } catch (err) {
    return { err };
  }
})();

// ---- Config OP

await module_('oidcc-discovery-endpoint-verification', async () => {
  const url = `${issuer}/.well-known/openid-configuration`;
  const r = await fetch(url, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  check(r.status === 200, `discovery answered ${r.status}`);
  check(/^application\/json\b/i.test(r.headers.get('content-type') ?? ''), `discovery content-type ${r.headers.get('content-type')}`);
  const d = await r.json();
  const isArr = (k) => Array.isArray(d[k]);
  check(d.issuer === issuer, `issuer ${d.issuer} != ${issuer} (OIDC Discovery §4.3)`);
  const iu = new URL(d.issuer);
  check(!iu.search && !iu.hash, 'the issuer has a query or fragment');
  // CheckDiscEndpointAllEndpointsAreHttps: an https issuer makes every endpoint https;
  // this hub runs on loopback http, so the check is that every endpoint is on the
  // issuer's origin (and hence https in any deployment the hub accepts).
  for (const k of Object.keys(d).filter((k) => k.endsWith('_endpoint') || k === 'jwks_uri')) {
    check(new URL(d[k]).origin === iu.origin, `${k} ${d[k]} is not on the issuer's origin`);
  }
  check(isArr('response_types_supported') && d.response_types_supported.includes('code'), 'response_types_supported lacks code');
  check(isArr('subject_types_supported') && d.subject_types_supported.some((s) => ['public', 'pairwise'].includes(s)), 'subject_types_supported lacks public/pairwise');
  check(isArr('id_token_signing_alg_values_supported') && d.id_token_signing_alg_values_supported.includes('RS256'), 'id_token_signing_alg_values_supported lacks RS256');
  if ('userinfo_signing_alg_values_supported' in d) check(isArr('userinfo_signing_alg_values_supported'), 'userinfo_signing_alg_values_supported is not an array');
  for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri']) check(typeof d[k] === 'string', `${k} missing`);
  if ('grant_types_supported' in d) check(isArr('grant_types_supported') && d.grant_types_supported.length > 0, 'grant_types_supported must be a non-empty array');
  check(isArr('scopes_supported') && d.scopes_supported.includes('openid'), 'scopes_supported lacks openid');
  check(d.scopes_supported.every((s) => /^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s)), 'a scope in scopes_supported breaks RFC 6749 §3.3 syntax');
  check(isArr('claims_supported'), 'claims_supported is missing (RECOMMENDED)');
  for (const k of ['ui_locales_supported', 'claims_locales_supported']) {
    if (k in d) check(isArr(k) && d[k].every((l) => /^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(l)), `${k} holds something that is not a BCP 47 tag`);
  }
  if ('code_challenge_methods_supported' in d) check(isArr('code_challenge_methods_supported'), 'code_challenge_methods_supported is not an array');
  for (const k of ['claims_parameter_supported', 'request_parameter_supported', 'request_uri_parameter_supported', 'require_request_uri_registration']) {
    if (k in d) check(typeof d[k] === 'boolean', `${k} must be a boolean`);
  }
  // CheckJwksUri + FetchServerKeys + CheckServerKeysIsValid + kid checks
  const k = await fetch(d.jwks_uri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  check(k.status === 200, `jwks_uri answered ${k.status}`);
  const set = await k.json();
  check(Array.isArray(set.keys) && set.keys.length > 0, 'the JWKS has no keys');
  const kids = set.keys.map((x) => x.kid);
  check(kids.every((x) => typeof x === 'string' && x), 'a key in the JWKS has no kid (OIDC Core §10.1)');
  check(new Set(kids).size === kids.length, 'two keys share a kid (RFC 7517 §4.5)');
  for (const key of set.keys) {
    check(!('d' in key) && !('p' in key) && !('q' in key) && !('k' in key), `key ${key.kid} publishes private material`);
    createPublicKey({ key, format: 'jwk' }); // throws on a malformed key
  }
  return `issuer, endpoints, ${d.scopes_supported.length} scopes, ${set.keys.length} keys checked`;
});

// ---- Basic OP

let shared = null; // the oidcc-server result, for later modules that need an ID token

await module_('oidcc-server', async () => {
  const b = new Browser();
  const r = await authorize(b, basic, C.basic, { login: 'require' });
  check(r.claims.name === undefined, 'the ID token carries name although only openid was asked (OIDC Core §5.4)');
  shared = r;
  return `code flow without PKCE; sub ${r.claims.sub}`;
});

await module_('oidcc-response-type-missing', async () => {
  const b = new Browser();
  const state = client.randomState();
  const q = new URLSearchParams({ client_id: C.basic.client_id, scope: 'openid', redirect_uri: C.basic.redirect_uri, state, nonce: client.randomNonce() });
  const out = await frontChannel(b, `${md.authorization_endpoint}?${q}`, { allowPage: true });
  if (out.url) {
    check(out.url.origin + out.url.pathname === C.basic.redirect_uri, `redirected to ${out.url}`);
    const e = checkAuthorizationError(out.url, state, ['invalid_request', 'unsupported_response_type']);
    return `redirected with error=${e}`;
  }
  check(out.page.status >= 400 && out.page.status < 500, `the error page answered ${out.page.status}`);
  return `error page ${out.page.status}: ${snippet(out.page).slice(0, 120)}`;
});

await module_('oidcc-idtoken-signature', async () => {
  const r = await authorize(new Browser(), basic, C.basic);
  return `RS256, kid ${r.header.kid}, verified with the JWKS`;
});

await module_('oidcc-idtoken-unsigned', async () => {
  check(!md.id_token_signing_alg_values_supported.includes('none'), 'the hub lists alg none: this module must then run');
  throw new Skip("the suite skips it: id_token_signing_alg_values_supported does not list 'none' (not required for certification)");
});

for (const [name, how] of [
  ['oidcc-userinfo-get', 'get'],
  ['oidcc-userinfo-post-header', 'post-header'],
  ['oidcc-userinfo-post-body', 'post-body'],
]) {
  await module_(name, async () => {
    const r = await authorize(new Browser(), basic, C.basic);
    const u = await userinfo(r.tokens.access_token, how);
    checkUserInfo(u, r.claims.sub, how);
    if (how === 'get') {
      // the library's own UserInfo call, which also insists on the sub
      await client.fetchUserInfo(basic, r.tokens.access_token, r.claims.sub);
    }
    return `UserInfo ${how} 200 with sub`;
  });
}

await module_('oidcc-ensure-request-without-nonce-succeeds-for-code-flow', async () => {
  const r = await authorize(new Browser(), basic, C.basic, { nonce: false });
  check(r.claims.nonce === undefined, 'the ID token has a nonce although none was sent');
  return 'code issued without nonce';
});

// AbstractOIDCCReturnedClaimsServerTest: skipped when scopes_supported lacks a scope.
// UserInfo must answer 200 with the sub; the suite warns unless every standard claim of
// every scope is there. Here: at least one claim of each asked scope must come back (a
// hub releases what the directory holds; nobody holds a website, a picture, a gender...).
async function scopeModule(scopes, { reverse = false, reorder = false } = {}) {
  const missing = scopes.filter((s) => !scopeListed(s));
  if (missing.length) {
    throw new Skip(`the suite skips it: scopes_supported does not list ${missing.join(', ')}`);
  }
  let scope = ['openid', ...scopes];
  if (reverse) scope = scope.reverse();
  const r = await authorize(new Browser(), basic, C.basic, {
    scope: scope.join(' '),
    order: reorder ? (entries) => entries.reverse() : null,
  });
  const info = checkUserInfo(await userinfo(r.tokens.access_token), r.claims.sub, 'scope');
  for (const s of scopes.filter((x) => holds.includes(x))) {
    const got = SCOPE_CLAIMS[s].filter((c) => c in info);
    check(got.length > 0, `scope ${s} was asked and granted, the directory holds such data for this person, but UserInfo has none of ${SCOPE_CLAIMS[s].join(', ')}`);
  }
  return `UserInfo: ${Object.keys(info).join(' ')}`;
}

await module_('oidcc-scope-profile', () => scopeModule(['profile']));
await module_('oidcc-scope-email', () => scopeModule(['email']));
await module_('oidcc-scope-address', () => scopeModule(['address']));
await module_('oidcc-scope-phone', () => scopeModule(['phone']));
await module_('oidcc-scope-all', () => scopeModule(['address', 'email', 'phone', 'profile']));
await module_('oidcc-alternate-happy-flow', () => scopeModule(['email'], { reverse: true, reorder: true }));

for (const [name, extra] of [
  ['oidcc-display-page', { display: 'page' }],
  ['oidcc-display-popup', { display: 'popup' }],
]) {
  await module_(name, async () => {
    const r = await authorize(new Browser(), basic, C.basic, { extra, login: 'require' });
    return `signed in with ${JSON.stringify(extra)}; sub ${r.claims.sub}`;
  });
}

await module_('oidcc-prompt-login', async () => {
  const b = new Browser();
  const first = await authorize(b, basic, C.basic);
  await sleep(1000); // WaitForOneSecond: auth_time has a one-second resolution
  const again = await authorize(b, basic, C.basic, { extra: { prompt: 'login' }, login: 'require' });
  check(again.claims.sub === first.claims.sub, 'another sub after prompt=login');
  if (first.claims.auth_time !== undefined && again.claims.auth_time !== undefined) {
    check(again.claims.auth_time > first.claims.auth_time, `auth_time ${again.claims.auth_time} is not later than ${first.claims.auth_time} after prompt=login`);
  }
  return 'sign-in asked again; auth_time later';
});

await module_('oidcc-prompt-none-not-logged-in', async () => {
  const e = await expectInteractionRequired(new Browser(), basic, C.basic);
  return `error=${e}`;
});

// AbstractOIDCCSameAuthTwiceServerTest: the second authorization (no sign-in allowed)
// keeps sub and auth_time.
async function sameAuthTwice(firstExtra, secondExtra) {
  const b = new Browser();
  const first = await authorize(b, basic, C.basic, { extra: firstExtra });
  const extra = typeof secondExtra === 'function' ? secondExtra(first) : secondExtra;
  const again = await authorize(b, basic, C.basic, { extra, login: 'forbid' });
  check(again.claims.sub === first.claims.sub, `sub changed: ${first.claims.sub} -> ${again.claims.sub}`);
  if (first.claims.auth_time !== undefined || again.claims.auth_time !== undefined) {
    check(again.claims.auth_time === first.claims.auth_time, `auth_time changed without a sign-in: ${first.claims.auth_time} -> ${again.claims.auth_time}`);
  }
  return { first, again };
}

await module_('oidcc-prompt-none-logged-in', async () => {
  await sameAuthTwice({}, { prompt: 'none' });
  return 'prompt=none answered with a code, same sub and auth_time';
});

await module_('oidcc-max-age-1', async () => {
  const b = new Browser();
  const first = await authorize(b, basic, C.basic);
  await sleep(2000); // WaitFor2Seconds
  const again = await authorize(b, basic, C.basic, { extra: { max_age: '1' }, login: 'require' });
  check(again.claims.auth_time !== undefined, 'no auth_time although max_age was sent (OIDC Core §3.1.2.1)');
  if (first.claims.auth_time !== undefined) {
    check(again.claims.auth_time > first.claims.auth_time, 'auth_time not later after max_age=1');
  }
  check(again.claims.auth_time >= Date.now() / 1000 - 60, 'auth_time is not recent after a fresh sign-in');
  return 'sign-in asked again; auth_time fresh';
});

await module_('oidcc-max-age-10000', async () => {
  const { first, again } = await sameAuthTwice({ max_age: '15000' }, { max_age: '10000' });
  check(first.claims.auth_time !== undefined && again.claims.auth_time !== undefined, 'auth_time missing although max_age was sent');
  return 'no sign-in; same auth_time';
});

await module_('oidcc-ensure-request-with-unknown-parameter-succeeds', async () => {
  await authorize(new Browser(), basic, C.basic, { extra: { extra: 'foobar' } });
  return 'extra=foobar ignored (RFC 6749 §3.1)';
});

await module_('oidcc-id-token-hint', async () => {
  await sameAuthTwice({}, (first) => ({ prompt: 'none', id_token_hint: first.tokens.id_token }));
  return 'prompt=none with the first ID token as hint: a code, same sub and auth_time';
});

for (const [name, extra] of [
  ['oidcc-login-hint', { login_hint: username }],
  ['oidcc-ui-locales', { ui_locales: 'se' }],
  ['oidcc-claims-locales', { claims_locales: 'se' }],
]) {
  await module_(name, async () => {
    await authorize(new Browser(), basic, C.basic, { extra, login: 'require' });
    return `signed in with ${JSON.stringify(extra)}`;
  });
}

await module_('oidcc-ensure-request-with-acr-values-succeeds', async () => {
  const values = Array.isArray(md.acr_values_supported) && md.acr_values_supported.length ? md.acr_values_supported : ['1', '2'];
  const r = await authorize(new Browser(), basic, C.basic, { extra: { acr_values: values.join(' ') } });
  check(values.includes(r.claims.acr), `acr ${r.claims.acr} is none of the requested ${values.join(' ')}`);
  return `acr ${r.claims.acr}`;
});

await module_('oidcc-codereuse', async () => {
  const r = await authorize(new Browser(), basic, C.basic);
  const again = await tokenRequest(C.basic, { grant_type: 'authorization_code', code: r.code, redirect_uri: C.basic.redirect_uri });
  checkInvalidGrant(again, 'the code redeemed twice');
  return 'invalid_grant';
});

await module_('oidcc-ensure-registered-redirect-uri', async () => {
  const b = new Browser();
  const bad = `${rpOrigin}/callback/${randomBytes(8).toString('hex')}`;
  const state = client.randomState();
  const q = new URLSearchParams({ response_type: 'code', client_id: C.basic.client_id, scope: 'openid', redirect_uri: bad, state, nonce: client.randomNonce() });
  const out = await frontChannel(b, `${md.authorization_endpoint}?${q}`, { allowPage: true, consent: 'forbid' });
  check(!out.url, `the hub redirected to ${out.url} for an unregistered redirect_uri`);
  check(out.page.status >= 400 && out.page.status < 500, `the error page answered ${out.page.status}`);
  return `error page ${out.page.status}`;
});

await module_('oidcc-ensure-post-request-succeeds', async () => {
  await authorize(new Browser(), basic, C.basic, { method: 'POST' });
  return 'authorization request by POST';
});

await module_('oidcc-server-client-secret-post', async () => {
  const r = await authorize(new Browser(), post, C.post);
  return `client_secret_post; sub ${r.claims.sub}`;
});

// Unsigned request objects: the hub does not take `request`/`request_uri` (other than
// from PAR), so the suite accepts only request_not_supported / request_uri_not_supported
// at the redirect URI (then marks the module skipped), or a correct authorization.
function unsignedRequestObject(params) {
  const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(params)).toString('base64url');
  return `${header}.${payload}.`;
}

await module_('oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported', async () => {
  const b = new Browser();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const inner = { response_type: 'code', client_id: C.basic.client_id, scope: 'openid', redirect_uri: C.basic.redirect_uri, state, nonce };
  requestUriDocument = unsignedRequestObject(inner);
  const q = new URLSearchParams({ client_id: C.basic.client_id, response_type: 'code', scope: 'openid', redirect_uri: C.basic.redirect_uri, request_uri: `${rpOrigin}/request_uri#${randomBytes(8).toString('hex')}` });
  const out = await frontChannel(b, `${md.authorization_endpoint}?${q}`, { allowPage: true });
  check(out.url, `no redirect: the hub showed ${out.page?.status}: ${out.page ? snippet(out.page) : ''}`);
  check(out.url.origin + out.url.pathname === C.basic.redirect_uri, `sent to ${out.url}`);
  const error = out.url.searchParams.get('error');
  if (error === 'request_uri_not_supported') {
    check(out.url.searchParams.get('iss') === issuer, 'iss missing on the error response');
    throw new Skip('the suite skips it: the hub answered request_uri_not_supported at the redirect URI (permitted)');
  }
  check(!error, `error=${error} (${out.url.searchParams.get('error_description')}); only request_uri_not_supported or success is allowed`);
  check(out.url.searchParams.get('state') === state, 'the request object was not used (state)');
  const tokens = await client.authorizationCodeGrant(basic, out.url, { expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  checkIdToken(basic, tokens);
  return 'request_uri processed';
});

await module_('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported', async () => {
  const b = new Browser();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const inner = { response_type: 'code', client_id: C.basic.client_id, scope: 'openid', redirect_uri: C.basic.redirect_uri, state, nonce };
  const q = new URLSearchParams({ client_id: C.basic.client_id, response_type: 'code', scope: 'openid', redirect_uri: C.basic.redirect_uri, request: unsignedRequestObject(inner) });
  const out = await frontChannel(b, `${md.authorization_endpoint}?${q}`, { allowPage: true });
  check(out.url, `no redirect: the hub showed ${out.page?.status}: ${out.page ? snippet(out.page) : ''}`);
  check(out.url.origin + out.url.pathname === C.basic.redirect_uri, `sent to ${out.url}`);
  const error = out.url.searchParams.get('error');
  if (error === 'request_not_supported') {
    check(out.url.searchParams.get('iss') === issuer, 'iss missing on the error response');
    throw new Skip('the suite skips it: the hub answered request_not_supported at the redirect URI (permitted)');
  }
  check(!error, `error=${error} (${out.url.searchParams.get('error_description')}); only request_not_supported or success is allowed`);
  check(out.url.searchParams.get('state') === state, 'the request object was not used (state)');
  const tokens = await client.authorizationCodeGrant(basic, out.url, { expectedState: state, expectedNonce: nonce, idTokenExpected: true });
  checkIdToken(basic, tokens);
  return 'request object processed';
});

await module_('oidcc-claims-essential', async () => {
  const claims = JSON.stringify({ userinfo: { name: { essential: true } } });
  const r = await authorize(new Browser(), basic, C.basic, { extra: { claims } });
  const info = checkUserInfo(await userinfo(r.tokens.access_token), r.claims.sub, 'claims');
  check(typeof info.name === 'string' && info.name, 'UserInfo has no name although it was asked as essential (OIDC Core §5.5)');
  check(r.claims.name === undefined, 'the ID token carries name although it was asked for UserInfo only');
  return `name ${JSON.stringify(info.name)} in UserInfo only`;
});

await module_('oidcc-ensure-request-object-with-redirect-uri', async () => {
  const b = new Browser();
  const state = client.randomState();
  const inner = { response_type: 'code', client_id: C.basic.client_id, scope: 'openid', redirect_uri: C.basic.redirect_uri, state, nonce: client.randomNonce() };
  const outerRedirect = `${C.basic.redirect_uri}/_invalid`;
  const q = new URLSearchParams({ client_id: C.basic.client_id, response_type: 'code', scope: 'openid', redirect_uri: outerRedirect, request: unsignedRequestObject(inner) });
  const out = await frontChannel(b, `${md.authorization_endpoint}?${q}`, { allowPage: true });
  if (out.url) {
    check(out.url.origin + out.url.pathname !== outerRedirect, 'the hub redirected to the unregistered redirect_uri');
    check(out.url.searchParams.get('error') !== 'request_not_supported', 'request_not_supported sent to a redirect URI although the request\'s redirect_uri was not registered (EnsureOPDoesNotUseDefaultRedirectUriInCaseOfInvalidRedirectUri)');
    check(!out.url.searchParams.has('error'), `error=${out.url.searchParams.get('error')}`);
    check(out.url.searchParams.get('state') === state, 'state not from the request object');
    return 'the request object\'s redirect_uri was used';
  }
  check(out.page.status >= 400 && out.page.status < 500, `the error page answered ${out.page.status}`);
  return `error page ${out.page.status} for the unregistered redirect_uri`;
});

await module_('oidcc-refresh-token', async () => {
  const scope = scopeListed('offline_access') ? 'openid offline_access' : 'openid';
  const b = new Browser();
  const extra = scope.includes('offline_access') ? { prompt: 'consent' } : {};
  const first = await authorize(b, basic, C.basic, { scope, extra });
  const rt = first.tokens.refresh_token;
  if (!rt) {
    check(!(md.grant_types_supported ?? []).includes('refresh_token'), 'no refresh token although discovery lists the refresh_token grant');
    throw new Skip('the suite skips it: no refresh token was issued');
  }
  check((md.grant_types_supported ?? []).includes('refresh_token'), 'refresh tokens are issued but grant_types_supported does not list refresh_token');
  check(/^[\x20-\x7E]+$/.test(rt), 'the refresh token has characters outside VSCHAR (RFC 6749 §A.17)');
  // RefreshTokenRequestSteps, with the scope sent again (RFC 6749 §6)
  const refreshed = await tokenRequest(C.basic, { grant_type: 'refresh_token', refresh_token: rt, scope });
  check(refreshed.status === 200, `refresh answered ${refreshed.status}: ${refreshed.text.slice(0, 200)}`);
  check(/^application\/json\b/i.test(refreshed.headers.get('content-type') ?? ''), 'refresh content-type is not JSON');
  check((refreshed.headers.get('cache-control') ?? '').split(',').some((p) => p.trim() === 'no-store'), 'refresh response lacks Cache-Control: no-store');
  const t = refreshed.json;
  check(typeof t.token_type === 'string' && t.token_type.toLowerCase() === 'bearer', `token_type ${t.token_type}`);
  check(typeof t.access_token === 'string' && shannonBits(t.access_token) > 128, 'the new access token is missing or has too little entropy');
  check(/^[\x20-\x7E]+$/.test(t.access_token), 'the access token has characters outside VSCHAR (RFC 6749 §A.12)');
  check(t.access_token !== first.tokens.access_token, 'the same access token again');
  if (t.refresh_token) check(shannonBits(t.refresh_token) > 128 && t.refresh_token.length * 8 >= 128, 'the new refresh token has too little entropy');
  if (t.id_token) {
    // CompareIdTokenClaims (OIDC Core §12.2)
    const { claims } = verifyHubJws(t.id_token);
    for (const k of ['iss', 'sub', 'azp']) check(claims[k] === first.claims[k], `${k} differs in the refreshed ID token`);
    check(JSON.stringify(claims.aud) === JSON.stringify(first.claims.aud), 'aud differs in the refreshed ID token');
    if (claims.auth_time !== undefined) check(claims.auth_time === first.claims.auth_time, 'auth_time differs in the refreshed ID token');
    check(claims.iat >= first.claims.iat, 'the refreshed ID token is older');
  }
  checkUserInfo(await userinfo(t.access_token), first.claims.sub, 'refreshed access token');
  // The second client: its own flow and refresh, then the FIRST client presents the
  // second client's refresh token and must get invalid_grant (RFC 6749 §6: bound to
  // the client).
  const other = await authorize(new Browser(), second, C.second, { scope, extra });
  check(other.tokens.refresh_token, 'the second client got no refresh token');
  const own = await tokenRequest(C.second, { grant_type: 'refresh_token', refresh_token: other.tokens.refresh_token, scope });
  check(own.status === 200 && own.json?.refresh_token, `the second client's own refresh answered ${own.status}`);
  const stolen = await tokenRequest(C.basic, { grant_type: 'refresh_token', refresh_token: own.json.refresh_token });
  checkInvalidGrant(stolen, "another client's refresh token");
  return 'refresh works and is bound to its client';
});

await module_('oidcc-ensure-request-with-valid-pkce-succeeds', async () => {
  await authorize(new Browser(), basic, C.basic, { pkce: true });
  return 'S256 challenge and verifier accepted by a client that does not require PKCE';
});

{
  const r = await codeReuse30;
  const line = r.err
    ? { module: 'oidcc-codereuse-30seconds', result: 'failed', detail: describe(r.err) }
    : { module: 'oidcc-codereuse-30seconds', result: 'passed', detail: r.ok };
  results.push(line);
  console.log(JSON.stringify(line));
}

// ---- RP-Initiated Logout OP

await module_('oidcc-rp-initiated-logout-discovery-endpoint-verification', async () => {
  check(typeof md.end_session_endpoint === 'string', 'no end_session_endpoint');
  check(new URL(md.end_session_endpoint).origin === new URL(issuer).origin, 'end_session_endpoint is not on the issuer origin');
  return md.end_session_endpoint;
});

// AbstractOIDCCRpInitiatedLogout: sign in, then send the browser to the end-session
// endpoint with (by default) id_token_hint, post_logout_redirect_uri and a state.
async function signedIn(config, c) {
  const b = new Browser();
  const r = await authorize(b, config, c);
  return { b, r };
}

function endSessionUrl(params) {
  const u = new URL(md.end_session_endpoint);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

// The post_logout_redirect_uri must not be called: an error page, or a confirmation
// that (here) nobody accepts.
async function expectNoLogoutRedirect(b, url) {
  const out = await frontChannel(b, url, { allowPage: true, login: 'forbid', consent: 'forbid' });
  check(!out.url, `the hub redirected to ${out.url}`);
  const confirm = findForm(out.page, '/oauth2/logout');
  check(confirm || (out.page.status >= 400 && out.page.status < 500), `neither an error page nor a confirmation: ${out.page.status} ${snippet(out.page)}`);
  return confirm ? `asks to confirm (${out.page.status})` : `error page ${out.page.status}`;
}

// The person must end up signed out, with the "signed out" page, not sent anywhere:
// a confirmation page is accepted and confirmed.
async function expectLoggedOutPage(b, url, c) {
  let out = await frontChannel(b, url, { allowPage: true, login: 'forbid', consent: 'forbid' });
  check(!out.url, `the hub redirected to ${out.url}`);
  let confirmed = false;
  const confirm = findForm(out.page, '/oauth2/logout');
  if (confirm) {
    const button = confirm.buttons.find((x) => x.name === 'confirm') ?? { name: 'confirm', value: 'yes' };
    const page = await b.go(confirm.action, { method: 'POST', form: { ...confirm.hidden, [button.name]: button.value } });
    check(!page.location || page.location.origin === hubOrigin, `confirming sent the browser to ${page.location}`);
    out = { page };
    confirmed = true;
  }
  check(out.page.status === 200, `the signed-out page answered ${out.page.status}`);
  check(!findForm(out.page, '/oauth2/logout'), 'still asked to confirm after confirming');
  const e = await expectInteractionRequired(b, basic, c);
  return `${confirmed ? 'confirmed, then ' : ''}signed out (prompt=none: ${e})`;
}

await module_('oidcc-rp-initiated-logout', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  const state = randomBytes(96).toString('base64url');
  const url = client.buildEndSessionUrl(basic, { id_token_hint: r.tokens.id_token, post_logout_redirect_uri: C.basic.post_logout_redirect_uri, state });
  const out = await frontChannel(b, url.href, { login: 'forbid', consent: 'forbid' });
  check(out.url.origin + out.url.pathname === C.basic.post_logout_redirect_uri, `sent to ${out.url}`);
  check(out.url.searchParams.get('state') === state, 'state not echoed to the post_logout_redirect_uri');
  const extra = [...out.url.searchParams.keys()].filter((k) => k !== 'state');
  check(extra.length === 0, `unexpected parameters on the post-logout redirect: ${extra.join(', ')}`);
  const e = await expectInteractionRequired(b, basic, C.basic);
  return `redirected with state; prompt=none then: ${e}`;
});

await module_('oidcc-rp-initiated-logout-bad-post-logout-redirect-uri', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  return expectNoLogoutRedirect(b, endSessionUrl({ id_token_hint: r.tokens.id_token, post_logout_redirect_uri: `${rpOrigin}/not_registered_post_logout`, state: client.randomState() }));
});

await module_('oidcc-rp-initiated-logout-modified-id-token-hint', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  const [, payload] = r.tokens.id_token.split('.');
  const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
  return expectNoLogoutRedirect(b, endSessionUrl({ id_token_hint: none, post_logout_redirect_uri: C.basic.post_logout_redirect_uri, state: client.randomState() }));
});

await module_('oidcc-rp-initiated-logout-no-id-token-hint', async () => {
  const { b } = await signedIn(basic, C.basic);
  return expectNoLogoutRedirect(b, endSessionUrl({ post_logout_redirect_uri: C.basic.post_logout_redirect_uri, state: client.randomState() }));
});

await module_('oidcc-rp-initiated-logout-no-params', async () => {
  const { b } = await signedIn(basic, C.basic);
  return expectLoggedOutPage(b, endSessionUrl({}), C.basic);
});

await module_('oidcc-rp-initiated-logout-no-post-logout-redirect-uri', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  return expectLoggedOutPage(b, endSessionUrl({ id_token_hint: r.tokens.id_token, state: client.randomState() }), C.basic);
});

await module_('oidcc-rp-initiated-logout-no-state', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  const out = await frontChannel(b, endSessionUrl({ id_token_hint: r.tokens.id_token, post_logout_redirect_uri: C.basic.post_logout_redirect_uri }), { login: 'forbid', consent: 'forbid' });
  check(out.url.origin + out.url.pathname === C.basic.post_logout_redirect_uri, `sent to ${out.url}`);
  check([...out.url.searchParams.keys()].length === 0, `parameters on the post-logout redirect although no state was sent: ${out.url.search}`);
  const e = await expectInteractionRequired(b, basic, C.basic);
  return `redirected without state; prompt=none then: ${e}`;
});

await module_('oidcc-rp-initiated-logout-only-state', async () => {
  const { b } = await signedIn(basic, C.basic);
  return expectLoggedOutPage(b, endSessionUrl({ state: client.randomState() }), C.basic);
});

await module_('oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  return expectNoLogoutRedirect(b, endSessionUrl({ id_token_hint: r.tokens.id_token, post_logout_redirect_uri: `${C.basic.post_logout_redirect_uri}?foo=bar`, state: client.randomState() }));
});

await module_('oidcc-rp-initiated-logout-bad-id-token-hint', async () => {
  const { b, r } = await signedIn(basic, C.basic);
  // The suite signs its own ID token (HS256 with the client secret for secret-based
  // clients), with the real token's claims.
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify({ ...r.claims, iat: Math.floor(Date.now() / 1000) })).toString('base64url');
  const sig = createHmac('sha256', C.basic.client_secret).update(`${header}.${payload}`).digest('base64url');
  return expectNoLogoutRedirect(b, endSessionUrl({ id_token_hint: `${header}.${payload}.${sig}`, post_logout_redirect_uri: C.basic.post_logout_redirect_uri, state: client.randomState() }));
});

// ---- Back-Channel Logout OP

await module_('oidcc-backchannel-logout-discovery-endpoint-verification', async () => {
  check(md.backchannel_logout_supported === true, 'backchannel_logout_supported is not true');
  check(md.backchannel_logout_session_supported === true, 'backchannel_logout_session_supported is not true (certification needs sid)');
  check(typeof md.end_session_endpoint === 'string', 'no end_session_endpoint');
  return 'backchannel_logout_supported, backchannel_logout_session_supported, end_session_endpoint';
});

await module_('oidcc-backchannel-rp-initiated-logout', async () => {
  const { b, r } = await signedIn(bcl, C.bcl);
  const seen = backchannel.length;
  const state = client.randomState();
  const url = client.buildEndSessionUrl(bcl, { id_token_hint: r.tokens.id_token, post_logout_redirect_uri: C.bcl.post_logout_redirect_uri, state });
  const out = await frontChannel(b, url.href, { login: 'forbid', consent: 'forbid' });
  check(out.url.origin + out.url.pathname === C.bcl.post_logout_redirect_uri, `sent to ${out.url}`);
  check(out.url.searchParams.get('state') === state, 'state not echoed');
  check([...out.url.searchParams.keys()].every((k) => k === 'state'), 'unexpected parameters on the post-logout redirect');
  // The logout token is posted by the hub's background worker; wait for it (bounded).
  for (let i = 0; i < 200 && backchannel.length === seen; i++) await sleep(100);
  check(backchannel.length > seen, 'no back-channel logout request arrived within 20 s');
  const req = backchannel[seen];
  check(/^application\/x-www-form-urlencoded\b/i.test(req.contentType), `content-type ${req.contentType} (OIDC BCL §2.5)`);
  const extra = [...req.body.keys()].filter((k) => k !== 'logout_token');
  check(extra.length === 0, `unexpected parameters in the logout request: ${extra.join(', ')}`);
  const token = req.body.get('logout_token');
  check(token, 'no logout_token');
  const { header, claims } = verifyHubJws(token);
  check(header.typ === undefined || header.typ === 'logout+jwt', `typ ${header.typ}`);
  const now = Date.now() / 1000;
  check(claims.iss === issuer, `iss ${claims.iss}`);
  check(claims.aud === C.bcl.client_id || (Array.isArray(claims.aud) && claims.aud.includes(C.bcl.client_id)), 'aud is not the client');
  check(Number.isInteger(claims.iat) && claims.iat < now + 300 && claims.iat > now - 86400, `iat ${claims.iat}`);
  check(typeof claims.jti === 'string' && claims.jti, 'no jti');
  const ev = claims.events;
  check(ev && typeof ev === 'object' && Object.keys(ev).length === 1, 'events must have exactly one member');
  const e = ev['http://schemas.openid.net/event/backchannel-logout'];
  check(e && typeof e === 'object' && Object.keys(e).length === 0, 'the back-channel logout event must be an empty object');
  check(claims.nonce === undefined, 'a logout token must not carry a nonce (OIDC BCL §2.4)');
  check(claims.sub !== undefined || claims.sid !== undefined, 'neither sub nor sid');
  if (claims.sub !== undefined) check(claims.sub === r.claims.sub, 'sub differs from the ID token');
  if (claims.sid !== undefined) check(claims.sid === r.claims.sid, 'sid differs from the ID token');
  const err = await expectInteractionRequired(b, bcl, C.bcl);
  return `logout token verified; prompt=none then: ${err}`;
});

console.log('conformance done');
server.close();
process.exit(0);
